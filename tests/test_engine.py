import math

import pytest
import torch
import torch.nn.functional as F

from nca_cli.engine import NCA, NCAConfig, alive_mask, perceive, perception_kernels, render_rgb, seed_state

from . import reference


def random_model(channels=8, hidden=16, seed=0, **kw) -> NCA:
    torch.manual_seed(seed)
    model = NCA(NCAConfig(channels=channels, hidden=hidden, **kw))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    torch.nn.init.normal_(model.w2.bias, std=0.05)
    torch.nn.init.normal_(model.w1.bias, std=0.1)
    return model


def blob_state(B=3, H=20, W=24, C=8, cy=10, cx=12, r=5, seed=1) -> torch.Tensor:
    """Random cells inside a disc (alive), zeros elsewhere."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).float()
    return torch.rand(B, H, W, C, generator=g) * disc[None, :, :, None]


@pytest.mark.parametrize("padding", ["zero", "wrap"])
@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
@pytest.mark.parametrize("where", ["centre", "edge", "corner"])
def test_step_matches_dense_reference(padding, angle, where):
    model = random_model(padding=padding)
    centre = {"centre": (10, 12), "edge": (1, 12), "corner": (0, 23)}[where]
    x = blob_state(cy=centre[0], cx=centre[1])
    fire = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(2)) < 0.5
    with torch.no_grad():
        ours = model.step(x, fire=fire, angle=angle)
        theirs = reference.step(model, x, fire, angle=angle, padding=padding)
    assert ours.shape == x.shape
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert (ours != x).any()  # the step did something


@pytest.mark.parametrize("padding", ["zero", "wrap"])
def test_rollout_gradients_match_reference(padding):
    model = random_model(padding=padding)
    x0 = blob_state(r=4, cy=3)
    fires = [torch.rand(x0.shape[:3], generator=torch.Generator().manual_seed(s)) < 0.5 for s in range(6)]
    weights = torch.rand(x0.shape, generator=torch.Generator().manual_seed(9))

    def grads(step):
        model.zero_grad()
        x = x0
        for fire in fires:
            x = step(x, fire)
        (x * weights).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    ours = grads(lambda x, f: model.step(x, fire=f))
    theirs = grads(lambda x, f: reference.step(model, x, f, padding=padding))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        assert a.abs().sum() > 0


def test_training_works_after_inference_at_the_same_angle():
    """Per-angle constants are cached; one first made under inference mode must still train."""
    model, x = random_model(), blob_state().requires_grad_()
    fire = torch.ones(x.shape[:3], dtype=torch.bool)
    with torch.inference_mode():
        model.step(x, fire=fire, angle=17.0)
    model.step(x, fire=fire, angle=17.0).square().sum().backward()
    expected = reference.step(model, x, fire, angle=17.0).square().sum()
    grad = torch.autograd.grad(expected, x)[0]
    assert torch.allclose(x.grad, grad, rtol=1e-4, atol=1e-6)


def test_dense_perceive_matches_reference():
    x = blob_state()
    ours = perceive(x, "wrap", 45.0)
    theirs = reference.perceive(x.permute(0, 3, 1, 2), 45.0, "wrap").permute(0, 2, 3, 1)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_rotation_by_90_degrees_swaps_gradients():
    k0, k90 = perception_kernels(0.0), perception_kernels(math.pi / 2)
    assert torch.allclose(k90[1], -k0[2], atol=1e-7)
    assert torch.allclose(k90[2], k0[1], atol=1e-7)
    assert torch.equal(k90[0], k0[0])


def test_alive_mask_is_3x3_max_of_alpha():
    x = torch.zeros(1, 6, 6, 4)
    x[0, 0, 0, 3] = 0.5
    x[0, 4, 4, 3] = 0.05  # below the threshold: not a living neighbour
    zero = alive_mask(x, 0.1, "zero")[0]
    assert zero.sum() == 4 and zero[:2, :2].all()
    wrap = alive_mask(x, 0.1, "wrap")[0]
    assert wrap.sum() == 9 and wrap[5, 5] and wrap[0, 5] and wrap[5, 0]


def test_untrained_model_keeps_the_seed_and_dead_grid_stays_dead():
    model = NCA(NCAConfig(channels=8, hidden=16))
    seed = seed_state(model.config, 9, 9)
    assert torch.equal(model.rollout(seed, 5), seed)  # last layer starts at zero
    empty = torch.zeros(2, 9, 9, 8)
    assert torch.equal(random_model().rollout(empty, 3), empty)


def test_seed_and_render():
    cfg = NCAConfig(channels=6)
    x = seed_state(cfg, 5, 7, batch=2)
    assert x.shape == (2, 5, 7, 6)
    assert x[0, 2, 3].tolist() == [0, 0, 0, 1, 1, 1] and x.sum() == 2 * 3
    rgb = render_rgb(x)
    assert rgb.dtype == torch.uint8 and rgb.shape == (2, 5, 7, 3)
    assert rgb[0, 2, 3].tolist() == [0, 0, 0]  # opaque black cell
    assert rgb[0, 0, 0].tolist() == [255, 255, 255]  # empty: white background


def test_config_validation():
    with pytest.raises(ValueError, match="padding"):
        NCAConfig(padding="mirror")
    with pytest.raises(ValueError, match="channels"):
        NCAConfig(channels=3)
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        NCAConfig.from_dict({"colour": 1})
    assert NCAConfig.from_dict(NCAConfig(hidden=32).to_dict()) == NCAConfig(hidden=32)


def dense_learned_step(model, x, fire):
    """Learned perception, no alive mask, written densely: every channel filtered by each learned
    kernel (zero or wrap edges), band-major, the MLP on every cell, the update where it fires."""
    B, H, W, C = x.shape
    kernels = model.perception_weight.reshape(-1, 1, 3, 3)  # (bands, 1, 3, 3)
    xc = x.permute(0, 3, 1, 2).reshape(B * C, 1, H, W)
    xc = F.pad(xc, (1, 1, 1, 1), mode="circular" if model.config.padding == "wrap" else "constant")
    y = F.conv2d(xc, kernels).reshape(B, C, -1, H, W).transpose(1, 2).reshape(B, -1, H, W)
    h = F.relu(F.conv2d(y, model.w1.weight[:, :, None, None], model.w1.bias))
    dx = F.conv2d(h, model.w2.weight[:, :, None, None], model.w2.bias).permute(0, 2, 3, 1)
    return x + dx * fire[..., None].float()


@pytest.mark.parametrize("padding", ["zero", "wrap"])
def test_learned_perception_without_alive_mask_matches_a_dense_formulation(padding):
    torch.manual_seed(0)
    model = NCA(NCAConfig(channels=3, hidden=16, perception="learned", learned_bands=4, alive_masking=False,
                          fire_rate=1.0, padding=padding))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    torch.nn.init.normal_(model.w2.bias, std=0.1)
    x = torch.rand(2, 7, 9, 3)
    fire = torch.rand(2, 7, 9) < 0.7
    ours = model.step(x, fire=fire)
    theirs = dense_learned_step(model, x, fire)
    assert torch.allclose(ours, theirs, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), model.perception_weight)
    (g_theirs,) = torch.autograd.grad(theirs.square().sum(), model.perception_weight)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-5) and g_ours.abs().sum() > 0
    assert (model.step(torch.zeros_like(x), fire=fire) != 0).any()  # no alive mask: empty cells update too


def test_learned_perception_config_is_checked():
    with pytest.raises(ValueError, match="learned perception needs learned_bands"):
        NCAConfig(perception="learned")
    with pytest.raises(ValueError, match="channels must be at least 4"):
        NCAConfig(channels=2)
    assert NCAConfig(channels=2, alive_masking=False).bands == 3


def random_model_3d(padding="zero", axis="z", seed=0) -> NCA:
    torch.manual_seed(seed)
    model = NCA(NCAConfig(channels=8, hidden=16, dims=3, padding=padding, axis=axis))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    torch.nn.init.normal_(model.w2.bias, std=0.05)
    torch.nn.init.normal_(model.w1.bias, std=0.1)
    return model


def blob_state_3d(B=2, D=9, H=10, W=11, C=8, centre=(4, 5, 5), r=3, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    zz, yy, xx = torch.meshgrid(torch.arange(D), torch.arange(H), torch.arange(W), indexing="ij")
    ball = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= r * r).float()
    return torch.rand(B, D, H, W, C, generator=g) * ball[None, ..., None]


@pytest.mark.parametrize("padding", ["zero", "wrap"])
@pytest.mark.parametrize("axis, angle", [("z", 0.0), ("z", 30.0), ("x", 90.0), ("y", 45.0)])
@pytest.mark.parametrize("where", [(4, 5, 5), (0, 5, 10)])
def test_3d_step_matches_a_dense_conv3d_formulation(padding, axis, angle, where):
    model = random_model_3d(padding, axis)
    x = blob_state_3d(centre=where)
    fire = torch.rand(x.shape[:4], generator=torch.Generator().manual_seed(2)) < 0.5
    with torch.no_grad():
        ours = model.step(x, fire=fire, angle=angle)
        theirs = reference.step3d(model, x, fire, angle=angle, axis=axis, padding=padding)
    assert ours.shape == x.shape
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert (ours != x).any()


@pytest.mark.parametrize("padding", ["zero", "wrap"])
def test_3d_rollout_gradients_match_the_dense_formulation(padding):
    model = random_model_3d(padding)
    x0 = blob_state_3d(r=2, centre=(2, 4, 4))
    fires = [torch.rand(x0.shape[:4], generator=torch.Generator().manual_seed(s)) < 0.5 for s in range(4)]
    weights = torch.rand(x0.shape, generator=torch.Generator().manual_seed(9))

    def grads(step):
        model.zero_grad()
        x = x0
        for fire in fires:
            x = step(x, fire)
        (x * weights).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    ours = grads(lambda x, f: model.step(x, fire=f))
    theirs = grads(lambda x, f: reference.step3d(model, x, f, padding=padding))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5) and a.abs().sum() > 0


def test_3d_dense_step_of_the_library_matches_the_engine():
    from nca_cli.engine import DenseStep

    model = random_model_3d("wrap", "x")
    x = blob_state_3d()
    fire = torch.rand(x.shape[:4], generator=torch.Generator().manual_seed(3)) < 0.5
    with torch.no_grad():
        ours = model.step(x, fire=fire, angle=20.0)
        dense = DenseStep(model)(x.permute(0, 4, 1, 2, 3), fire, torch.tensor(math.radians(20.0)))
    assert torch.allclose(ours, dense.permute(0, 2, 3, 4, 1), atol=1e-5)


def test_3d_seed_and_turning_by_90_degrees_about_z_swaps_x_and_y():
    from nca_cli.engine.perception import perception_kernels_3d

    x = seed_state(NCAConfig(channels=5, dims=3), 5, 6, 7)
    assert x.shape == (1, 5, 6, 7, 5) and x[0, 2, 3, 3, 3:].tolist() == [1, 1] and x.sum() == 2
    k0, k90 = perception_kernels_3d(0.0), perception_kernels_3d(math.pi / 2)
    assert torch.allclose(k90[1], -k0[2], atol=1e-7) and torch.allclose(k90[2], k0[1], atol=1e-7)
    assert torch.equal(k90[3], k0[3])


def test_conditional_step_matches_a_dense_formulation_with_a_goal_map():
    """A goal embedding added to the hidden layer, per cell: checked against the dense step, and a
    painted goal map acts regionally (cells far from the boundary behave as under a uniform goal)."""
    from nca_cli.engine import DenseStep

    torch.manual_seed(0)
    model = NCA(NCAConfig(channels=8, hidden=16, goals=3))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    torch.nn.init.normal_(model.goal_embedding.weight)  # they start at zero: every goal alike
    x = blob_state(B=2)
    fire = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(2)) < 0.5
    goals = torch.zeros(2, 20, 24, dtype=torch.long)
    goals[0, :, 12:] = 2
    goals[1] = 1
    with torch.no_grad():
        ours = model.step(x, fire=fire, goal=goals)
        dense = DenseStep(model)(x.permute(0, 3, 1, 2), fire, goal=goals).permute(0, 2, 3, 1)
        assert torch.allclose(ours, dense, atol=1e-5)
        uniform = model.step(x, fire=fire, goal=torch.tensor([0, 1]))
        assert torch.allclose(ours[1], uniform[1]) and torch.allclose(ours[0, :, :12], uniform[0, :, :12])
        assert not torch.allclose(ours[0, :, 12:], uniform[0, :, 12:])
        switched = model.rollout(x, 3, generator=torch.Generator().manual_seed(1),
                                 goal=lambda k: torch.tensor([0, 0]) if k < 2 else torch.tensor([1, 1]))
        g = torch.Generator().manual_seed(1)
        by_hand = x
        for k in range(3):
            by_hand = model.step(by_hand, generator=g, goal=torch.tensor([0, 0] if k < 2 else [1, 1]))
        assert torch.equal(switched, by_hand)
    with pytest.raises(ValueError, match="goals must be numbers from 0 to 2"):
        model.step(x, fire=fire, goal=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="needs a goal"):
        model.step(x, fire=fire)
