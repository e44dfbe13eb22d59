"""Conditional models and several seeds, as a library: goal sets, the placed loss, conditional
training and its resume state, model files with goals, steering, and the measurements."""

import numpy as np
import pytest
import torch
from PIL import Image

from nca_cli.engine import NCA, DenseStep, NCAConfig, rgba_loss, seed_state
from nca_cli.errors import NCAError
from nca_cli.formats.model_file import load_model, save_model
from nca_cli.growth.goals import GoalPlan, Steered, check_plan, measure_switches, paint_region, steer, steps_below
from nca_cli.growth.quality import measure_quality
from nca_cli.growth.seeds import measure_merging, placed_loss, placed_losses, random_body_cells, seed_cells
from nca_cli.targets import GoalSet, load_goals, load_target
from nca_cli.training import Trainer, TrainConfig, load_state, save_state

from .conftest import TINY_TRAIN, disc_image

TINY_GOALS = NCAConfig(channels=8, hidden=16, goals=2)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A folder of two pictures (a disc and a bar) and a text file that is not a picture."""
    folder = tmp_path_factory.mktemp("shapes")
    Image.fromarray(disc_image(), "RGBA").save(folder / "disc.png")
    bar = np.zeros((12, 12, 4), dtype=np.uint8)
    bar[4:8, :] = (20, 60, 200, 255)
    Image.fromarray(bar, "RGBA").save(folder / "bar.png")
    (folder / "notes.txt").write_text("not a picture")
    return folder


@pytest.fixture(scope="module")
def goals(pictures):
    return load_goals([str(pictures)], size=12, pad=4)


def conditional_trainer(goals, model=TINY_GOALS, **changes) -> Trainer:
    return Trainer(model, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), **changes}), goals)


def random_conditional(seed=0, conditioning="hidden", goals=2) -> NCA:
    torch.manual_seed(seed)
    model = NCA(NCAConfig(channels=8, hidden=16, goals=goals, conditioning=conditioning))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    torch.nn.init.normal_(model.goal_embedding.weight, std=0.5)
    return model


# -- goal sets ----------------------------------------------------------------------------------

def test_a_folder_is_one_goal_per_picture_in_name_order(goals, pictures):
    assert goals.names == ["bar.png", "disc.png"] and len(goals) == 2
    assert goals.shape == (20, 20) and goals.rgba.shape == (2, 20, 20, 4)
    assert torch.equal(goals.rgba[1], load_target(str(pictures / "disc.png"), size=12, pad=4).rgba)
    assert [goals.index(s) for s in ("bar.png", "disc", "0", "1")] == [0, 1, 0, 1]
    mixed = load_goals(["🦎", str(pictures / "disc.png")], size=12, pad=4)
    assert mixed.names == ["🦎", "disc.png"] and mixed.index("🦎") == 0


def test_goal_set_errors(goals, tmp_path):
    with pytest.raises(NCAError) as exc:
        goals.index("🐙")
    assert str(exc.value) == "no goal '🐙' in this model; its goals are 0 bar.png, 1 disc.png"
    with pytest.raises(NCAError, match="^no goal '2' in this model"):
        goals.index("2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NCAError) as exc:
        load_goals([str(tmp_path / "empty")])
    assert str(exc.value) == f"folder {tmp_path}/empty holds no pictures (.png, .jpg, .jpeg, .webp, .gif, .bmp, .tif, .tiff)"
    with pytest.raises(NCAError, match="^the goals' grids differ: 20x20, 24x24$"):
        GoalSet([goals[0], load_target("🦎", size=16, pad=4)])
    with pytest.raises(NCAError, match="^goals 0 and 1 are both named bar.png"):
        GoalSet([goals[0], goals[0]])


# -- several seeds and the placed loss ---------------------------------------------------------

def moved_by_hand(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image (H, W, K) moved down dy and right dx cells, zeros coming in: cell by cell."""
    H, W = image.shape[:2]
    out = torch.zeros_like(image)
    for r in range(H):
        for c in range(W):
            if 0 <= r - dy < H and 0 <= c - dx < W:
                out[r, c] = image[r - dy, c - dx]
    return out


def test_placed_loss_is_the_least_loss_over_moved_targets():
    torch.manual_seed(0)
    target = torch.rand(2, 9, 11, 4) * (torch.rand(2, 9, 11, 1) > 0.5)
    x = torch.rand(2, 9, 11, 6, requires_grad=True)
    reach = 2
    by_hand = torch.zeros(2, 5, 5)
    for b in range(2):
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                moved = moved_by_hand(target[b], dy, dx)
                missed = target[b].square().sum() - moved.square().sum()  # moved off the grid
                by_hand[b, dy + reach, dx + reach] = ((x[b, ..., :4] - moved).square().sum() + missed) / moved.numel()
    assert torch.allclose(placed_losses(x, target, reach), by_hand.detach(), atol=1e-5)
    loss, offsets = placed_loss(x, target, reach)
    best = by_hand.flatten(1).argmin(1)
    assert offsets.tolist() == [[int(i) // 5 - reach, int(i) % 5 - reach] for i in best]
    assert torch.allclose(loss, by_hand.flatten(1).min(1).values, atol=1e-5)
    loss.sum().backward()  # the gradient is that of the loss at the best place
    expected = torch.autograd.grad(by_hand.flatten(1).min(1).values.sum(), x)[0]
    assert torch.allclose(x.grad, expected, atol=1e-6)


def test_a_moved_pattern_is_placed_where_it_fits():
    target = torch.zeros(16, 16, 4)
    target[5:9, 6:11] = torch.tensor([0.8, 0.2, 0.1, 1.0])
    x = torch.zeros(1, 16, 16, 5)
    x[0, ..., :4] = moved_by_hand(target, 2, -3)
    loss, offsets = placed_loss(x, target, 4)
    assert offsets.tolist() == [[2, -3]] and float(loss) == pytest.approx(0.0, abs=1e-6)
    assert float(rgba_loss(x, target)) > 0.01


def test_seed_cells_and_random_body_cells():
    config = NCAConfig(channels=6)
    x = seed_cells(config, (8, 9), torch.tensor([[1, 2], [5, 7]]))
    assert x.shape == (1, 8, 9, 6) and x[0, 1, 2].tolist() == [0, 0, 0, 1, 1, 1] and x.sum() == 6
    with pytest.raises(NCAError) as exc:
        seed_cells(config, (8, 9), torch.tensor([[8, 0]]))
    assert str(exc.value) == "seed position 8,0 is off the 8x9 grid"
    alpha = torch.zeros(8, 9)
    alpha[2:4, 3:6] = 1.0
    cells = random_body_cells(alpha, 3, torch.Generator().manual_seed(0))
    assert len({tuple(c) for c in cells.tolist()}) == 3 and all(alpha[r, c] == 1 for r, c in cells.tolist())
    with pytest.raises(NCAError, match="^the target has 6 solid cells, too few for 7 seeds$"):
        random_body_cells(alpha, 7, torch.Generator())


# -- the engine's FiLM conditioning --------------------------------------------------------------

def test_film_conditioning_matches_its_dense_formulation_and_starts_as_the_plain_scheme():
    torch.manual_seed(1)
    film = NCA(NCAConfig(channels=8, hidden=16, goals=3, conditioning="film"))
    plain = NCA(NCAConfig(channels=8, hidden=16, goals=3))
    plain.load_state_dict({**film.state_dict(), "goal_embedding.weight": film.goal_embedding.weight[:, :16]})
    torch.nn.init.normal_(film.w2.weight, std=0.2)
    plain.w2.weight.data.copy_(film.w2.weight)
    x = seed_state(film.config, 14, 15, batch=2)
    x[..., :] += torch.rand(x.shape) * (torch.rand(x.shape[:-1]) < 0.3)[..., None]
    fire = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(2)) < 0.5
    goal = torch.tensor([2, 0])
    with torch.no_grad():
        assert torch.allclose(film.step(x, fire=fire, goal=goal), plain.step(x, fire=fire, goal=goal))
        torch.nn.init.normal_(film.goal_embedding.weight, std=0.5)  # now the scales differ from 1
        goals = goal.view(2, 1, 1).expand(2, 14, 15)
        sparse = film.step(x, fire=fire, goal=goal)
        dense = DenseStep(film)(x.permute(0, 3, 1, 2), fire, goal=goals).permute(0, 2, 3, 1)
        assert torch.allclose(sparse, dense, atol=1e-5)
        # By hand, for one cell: h = (w1 p + b1) * (1 + scale) + shift.
        e = film.goal_embedding.weight[2]
        p = torch.cat([x[0, 7, 7]] + [torch.zeros(8)] * 2)  # the cell's own state only ...
        w1 = film.w1.weight.clone()
        w1[:, 8:] = 0  # ... with gradient inputs ignored on both sides
        h = torch.relu((w1 @ p + film.w1.bias) * (1 + e[16:]) + e[:16])
        film.w1.weight.data[:, 8:] = 0
        assert torch.allclose(film.update(p[None], torch.tensor([2]))[0], film.w2(h), atol=1e-6)
    with pytest.raises(NCAError, match="^conditioning must be one of hidden, film, got 'mul'$"):
        NCAConfig(goals=2, conditioning="mul")


# -- training -----------------------------------------------------------------------------------

def test_conditional_training_scores_each_sample_against_its_goal(goals):
    trainer = conditional_trainer(goals, switch_rate=0.0)
    assert trainer.pool_goals.tolist() == [0, 1] * 4 and not trainer.pool_placed.any()
    trainer.pool = torch.zeros_like(trainer.pool)
    trainer.pool[..., :4] = goals.rgba[1]  # every sample is the disc: perfect for goal 1 only
    trainer.pool[..., 4:] = 1.0
    x, g, placed = trainer.pool[:4], torch.tensor([0, 1, 0, 1]), torch.zeros(4, dtype=torch.bool)
    by_hand = torch.stack([(x[i, ..., :4] - goals.rgba[g[i]]).square().mean() for i in range(4)])
    assert torch.allclose(trainer.losses_of(x, g, placed), by_hand)
    assert by_hand[1] == 0 and by_hand[0] > 0.05
    batch = trainer.draw()
    assert torch.equal(batch.goals[1:], trainer.pool_goals[batch.idx][1:])
    # The worst sample (a goal-0 one: the bar is not the disc) restarts from the seed.
    assert trainer.pool_goals[batch.idx[0]] == 0 and torch.equal(batch.x[0], trainer.seed[0])
    trainer.run()
    assert trainer.iteration == 6 and all(np.isfinite(trainer.losses))


def test_switching_hands_drawn_samples_another_goal_and_spares_them_the_wound(goals):
    trainer = conditional_trainer(goals, switch_rate=1.0, damage_count=3)
    trainer.pool = goals.rgba[trainer.pool_goals].new_zeros(trainer.pool.shape)
    trainer.pool[..., :4] = goals.rgba[trainer.pool_goals]  # every sample is its goal's picture
    trainer.pool[..., 4:] = 1.0
    batch = trainer.draw()
    before = trainer.pool_goals[batch.idx]
    assert (batch.goals[1:] != before[1:]).all()  # every kept sample now has the other goal
    assert torch.equal(batch.x[1:], trainer.pool[batch.idx][1:])  # and none was wounded
    trainer.config = TrainConfig.from_dict({**trainer.config.to_dict(), "switch_rate": 0.0})
    batch = trainer.draw()
    assert torch.equal(batch.goals[1:], trainer.pool_goals[batch.idx][1:])
    assert not torch.equal(batch.x[1:], trainer.pool[batch.idx][1:])  # wounded


def test_several_seed_cells_start_on_the_body_and_are_scored_where_they_fit(goals):
    trainer = conditional_trainer(goals, seed_cells_min=3, seed_cells_max=3)
    x, goal, placed = trainer._restart()
    alpha = goals.rgba[goal, ..., 3]
    cells = (x[0, ..., 3] == 1).nonzero()
    assert placed and len(cells) == 3 and all(alpha[r, c] > 0.5 for r, c in cells.tolist())
    trainer.run()
    assert trainer.pool_placed.any()
    unconditional = Trainer(NCAConfig(channels=8, hidden=16), TINY_TRAIN, goals[1])
    assert unconditional._restart()[2] is False  # one seed: the centre, scored where it is


def test_conditional_resume_ends_where_an_uninterrupted_run_would(goals, tmp_path):
    changes = {"iterations": 4, "switch_rate": 0.5, "seed_cells_max": 2}
    whole = conditional_trainer(goals, **changes)
    whole.run()
    half = conditional_trainer(goals, **changes)
    half.run(should_stop=lambda: half.iteration == 2)
    save_state(half, tmp_path / "state.safetensors")
    resumed = load_state(tmp_path / "state.safetensors", goals)
    assert torch.equal(resumed.pool_goals, half.pool_goals) and torch.equal(resumed.pool_placed, half.pool_placed)
    assert load_state(tmp_path / "state.safetensors").target.names == goals.names  # goals stored in the state
    resumed.run()
    assert resumed.losses == whole.losses
    for a, b in zip(resumed.result.parameters(), whole.result.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(NCAError, match="was trained on another target"):
        load_state(tmp_path / "state.safetensors", GoalSet(goals.targets[::-1]))


def test_a_trainer_refuses_targets_that_do_not_suit_its_model(goals):
    with pytest.raises(NCAError, match="^a conditional model of 3 goals trains on a goal set of 3 targets$"):
        Trainer(NCAConfig(channels=8, hidden=16, goals=3), TINY_TRAIN, goals)
    with pytest.raises(NCAError, match="^a goal set of 2 targets needs a conditional model"):
        Trainer(NCAConfig(channels=8, hidden=16), TINY_TRAIN, goals)
    with pytest.raises(NCAError, match="^switch_rate must be between 0 and 1, got 2"):
        TrainConfig(switch_rate=2)
    with pytest.raises(NCAError, match="^seed_cells must be from 1 to 16 cells, got 2-1$"):
        TrainConfig(seed_cells_min=2, seed_cells_max=1)


# -- model files ----------------------------------------------------------------------------------

def test_a_conditional_model_file_keeps_every_goal(goals, tmp_path):
    model = random_conditional(conditioning="film")
    save_model(tmp_path / "m.safetensors", model, goals, {"note": 1})
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.goals.names == goals.names and torch.equal(loaded.goals.rgba, goals.rgba)
    assert loaded.target.name == "bar.png" and loaded.model.config.conditioning == "film"
    assert loaded.goal_index("disc") == 1 and loaded.with_goal(1).target.name == "disc.png"
    assert torch.equal(loaded.model.goal_embedding.weight, model.goal_embedding.weight)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        assert f.get_tensor("target").shape == (2, 20, 20, 4)
        meta = f.metadata()
    # A damaged record of the goals is refused in one line.
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "m.safetensors"))
    tensors["target"] = tensors["target"][:1]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(NCAError, match="the stored goals do not match the model's 2 goals$"):
        load_model(tmp_path / "bad.safetensors")


def test_goal_names_on_a_model_that_is_not_conditional():
    lizard = load_model("lizard")
    with pytest.raises(NCAError) as exc:
        lizard.goal_index("🦎")
    assert str(exc.value) == ("target needs a conditional model (one trained on several targets); "
                              "lizard.safetensors grows one target")


# -- steering and measuring -------------------------------------------------------------------------

def test_a_steered_model_runs_its_plan(goals):
    model = random_conditional(2)
    x = seed_state(model.config, 20, 20, batch=2)
    plan = GoalPlan(0, ((3, 1),))
    ours = Steered(model, plan).rollout(x, 5, generator=torch.Generator().manual_seed(4))
    by_hand, g = x, torch.Generator().manual_seed(4)
    for k in range(5):
        by_hand = model.step(by_hand, generator=g, goal=torch.tensor([0, 0] if k < 3 else [1, 1]))
    assert torch.equal(ours, by_hand)
    painted = GoalPlan(1, paint=paint_region((20, 20), "left", 0)).goals(0, x)
    assert painted.shape == (2, 20, 20) and (painted[:, :, :10] == 0).all() and (painted[:, :, 10:] == 1).all()
    assert steer(NCA(NCAConfig(channels=8, hidden=16)), plan).__class__ is NCA
    with pytest.raises(NCAError, match="^switch at step 5 is past the run's 5 steps$"):
        check_plan(GoalPlan(0, ((5, 1),)), 2, 5)
    with pytest.raises(NCAError, match="^goals are numbers from 0 to 1$"):
        check_plan(GoalPlan(2), 2, 5)
    assert steps_below([0.5, 0.2, 0.02, 0.005, 0.001], 2, 0.01) == 2 and steps_below([0.5, 0.2], 0, 0.01) is None


def test_switch_measurement_matches_a_hand_written_run(goals):
    model = random_conditional(3)
    switches = measure_switches(model, goals, runs=2, grow_steps=4, after=3, threshold=1.0, seed=7)
    assert [(s.source, s.goal) for s in switches] == [(0, 1), (1, 0)]
    g = torch.Generator().manual_seed(7)
    for source, switch in ((0, switches[0]), (1, switches[1])):
        x = seed_state(model.config, 20, 20, batch=2)
        with torch.no_grad():
            for k in range(7):
                x = model.step(x, generator=g, goal=torch.full((2,), source if k < 4 else 1 - source))
        assert switch.final == pytest.approx(float(rgba_loss(x, goals.rgba[1 - source]).mean()), abs=1e-6)
        assert switch.steps_below == 1  # every loss is below a threshold of 1


def test_merging_measurement_grows_from_one_and_several_seeds(goals):
    model = random_conditional(4)
    rows = measure_merging(steer(model, GoalPlan(1)), goals[1], counts=(1, 2), runs=2, steps=6, seed=3)
    assert [r.seeds for r in rows] == [1, 2]
    assert rows[0].placed_loss <= rows[0].fixed_loss + 1e-7 and rows[1].placed_loss <= rows[1].fixed_loss + 1e-7
    one = measure_quality(steer(model, GoalPlan(1)), goals[1], runs=2, steps=6, seed=3)
    assert rows[0].fixed_loss == pytest.approx(one.grow_loss, abs=1e-7)  # one seed: the usual growth
