"""nca_cli.video's model: the cell state's layout, its steps against a dense formulation, the NCA as
an online method."""

import pytest
import torch
import torch.nn.functional as F

from nca_cli.engine import NCA, perceive
from nca_cli.errors import NCAError
from nca_cli.video.masks import frame_masks
from nca_cli.video.model import (CENTRE, LIMIT, VideoLayout, VideoReconstructor, advance, empty_state, observe,
                                 prediction_loss, smooth, video_config)
from nca_cli.video.reconstruct import SMOOTHING_PASSES, MaskSpec, tune_smoothing
from nca_cli.video.scores import mse, psnr_of_mse

from .test_video_baselines import random_clip


def tiny_video_model(seed: int = 0, pixel_channels: int = 3, perception: str = "learned") -> NCA:
    """A small video NCA with a non-zero last layer, so that its steps do something."""
    torch.manual_seed(seed)
    model = NCA(video_config(pixel_channels, hidden_channels=4, hidden=16, perception=perception))
    torch.nn.init.normal_(model.w2.weight, std=0.3)
    return model


def test_observe_writes_registers_and_flags_and_keeps_the_rest():
    layout = VideoLayout(3, 10)
    x = torch.randn(1, 4, 5, 10)
    frame, mask = torch.rand(1, 4, 5, 3), torch.zeros(1, 4, 5, dtype=torch.bool)
    mask[0, 1, 2] = True
    y = observe(x, frame, mask, layout)
    assert torch.equal(y[..., :3], x[..., :3]) and torch.equal(y[..., 7:], x[..., 7:])
    assert torch.allclose(y[0, 1, 2, 3:6], frame[0, 1, 2] - CENTRE)
    y[0, 1, 2, 3:6] = x[0, 1, 2, 3:6]
    assert torch.equal(y[..., 3:6], x[..., 3:6])  # unobserved registers keep their last value
    assert y[..., 6].sum() == 1 and y[0, 1, 2, 6] == 1
    with pytest.raises(NCAError, match="needs at least 7 channels, got 6"):
        VideoLayout(3, 6)


def dense_perceive(model: NCA, x: torch.Tensor) -> torch.Tensor:
    """Each channel cross-correlated with every 3x3 kernel (zero edges), band-major. (B, H, W, C) ->
    (B, H, W, bands*C)"""
    if model.config.perception == "sobel":
        return perceive(x, "zero")
    B, H, W, C = x.shape
    kernels = model.perception_weight.reshape(-1, 1, 3, 3)  # taps in row-major (dy, dx) order
    planes = F.conv2d(F.pad(x.permute(0, 3, 1, 2).reshape(B * C, 1, H, W), (1, 1, 1, 1)), kernels)
    return planes.reshape(B, C, -1, H, W).permute(0, 3, 4, 2, 1).reshape(B, H, W, -1)


def dense_advance(model: NCA, x: torch.Tensor, steps: int, layout: VideoLayout) -> torch.Tensor:
    """Every cell updated densely, inputs put back, values bounded."""
    inputs = x[..., layout.register.start : layout.hidden_start].clone()
    for _ in range(steps):
        x = x + model.update(dense_perceive(model, x))
        x[..., layout.register.start : layout.hidden_start] = inputs
        x = x.clamp(-LIMIT, LIMIT)
    return x


@pytest.mark.parametrize("perception", ["learned", "sobel"])
def test_advance_matches_a_dense_formulation_and_keeps_inputs(perception):
    model = tiny_video_model(seed=2, perception=perception)
    layout = VideoLayout(3, model.config.channels)
    x = observe(torch.rand(2, 7, 9, model.config.channels) - 0.5, torch.rand(2, 7, 9, 3),
                torch.rand(2, 7, 9) < 0.3, layout)
    with torch.no_grad():
        got, want = advance(model, x, 3, layout), dense_advance(model, x, 3, layout)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(got[..., 3:7], x[..., 3:7])


def test_prediction_loss_counts_only_arriving_pixels():
    layout = VideoLayout(1, 4)
    x = torch.zeros(1, 3, 3, 4)
    frame = torch.full((1, 3, 3, 1), 0.9)
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    mask[0, 0, 0] = mask[0, 2, 1] = True
    total, count = prediction_loss(x, frame, mask, layout)
    assert count == 2 and float(total) == pytest.approx(2 * 0.4 ** 2)


def test_the_reconstructor_is_an_online_method_like_the_baselines():
    model = tiny_video_model(seed=1)
    clip = random_clip(frames=4, size=(10, 12))
    nca = VideoReconstructor(model, 3, steps=2)
    masks = list(frame_masks(4, clip.size, 0.2))
    outs = [nca(clip.frame(t), m) for t, m in enumerate(masks)]
    layout = VideoLayout(3, model.config.channels)
    x = empty_state(layout, 1, 10, 12)
    with torch.no_grad():
        for t, m in enumerate(masks):
            x = dense_advance(model, observe(x, clip.frame(t)[None], m[None], layout), 2, layout)
            assert torch.allclose(outs[t], (x[0, ..., :3] + CENTRE).clamp(0, 1), atol=1e-5)
    with pytest.raises(NCAError, match="^steps per frame must be at least 1, got 0$"):
        VideoReconstructor(model, 3, steps=0)


def smoothed_by_hand(image: torch.Tensor) -> torch.Tensor:
    """One pass of the 1 2 1 binomial over each pixel's 3x3 neighbours, written as a loop; a
    neighbour beyond the edge is the nearest pixel on it. (H, W, P) -> (H, W, P)"""
    H, W, _ = image.shape
    weights = {-1: 1.0, 0: 2.0, 1: 1.0}
    result = torch.zeros_like(image)
    for i in range(H):
        for j in range(W):
            for di, wi in weights.items():
                for dj, wj in weights.items():
                    result[i, j] += wi * wj / 16 * image[min(max(i + di, 0), H - 1), min(max(j + dj, 0), W - 1)]
    return result


def test_smoothing_is_the_binomial_mean_of_each_neighbourhood_pass_by_pass():
    image = torch.rand(2, 5, 7, 3)
    assert torch.equal(smooth(image, 0), image)
    once = torch.stack([smoothed_by_hand(im) for im in image])
    assert torch.allclose(smooth(image, 1), once, atol=1e-6)
    assert torch.allclose(smooth(image, 2), torch.stack([smoothed_by_hand(im) for im in once]), atol=1e-6)
    flat = torch.full((1, 4, 4, 1), 0.3)
    assert torch.allclose(smooth(flat, 3), flat)  # a flat picture stays as it is, edges too


def test_the_first_frame_gets_its_warm_up_steps_and_estimates_are_read_smoothed():
    model = tiny_video_model(seed=3)
    clip = random_clip(frames=3, size=(8, 9))
    masks = list(frame_masks(3, clip.size, 0.2))
    nca = VideoReconstructor(model, 3, steps=2, warm_up=3, smoothing=1)
    layout = VideoLayout(3, model.config.channels)
    x = empty_state(layout, 1, 8, 9)
    with torch.no_grad():
        for t, m in enumerate(masks):
            x = dense_advance(model, observe(x, clip.frame(t)[None], m[None], layout), 5 if t == 0 else 2, layout)
            want = smoothed_by_hand((x[0, ..., :3] + CENTRE).clamp(0, 1))
            assert torch.allclose(nca(clip.frame(t), m), want, atol=1e-5)
    for bad, line in (({"warm_up": -1}, "warm-up steps must be at least 0, got -1"),
                      ({"smoothing": -2}, "smoothing passes must be at least 0, got -2")):
        with pytest.raises(NCAError, match=f"^{line}$"):
            VideoReconstructor(model, 3, steps=2, **bad)


def test_tuning_the_smoothing_picks_the_passes_that_score_best():
    model = tiny_video_model(seed=4)
    clip, masks = random_clip(frames=4, size=(10, 10)), MaskSpec(0.2, seed=5)
    nca = VideoReconstructor(model, 3, steps=2, warm_up=2, smoothing=3)
    chosen, psnrs = tune_smoothing(nca, clip, masks)
    for passes in SMOOTHING_PASSES:  # each smoothing run on its own, scored as the clip's mean squared error
        runner = VideoReconstructor(model, 3, steps=2, warm_up=2, smoothing=passes)
        errors = [mse(runner(clip.frame(t), m), clip.frame(t)) for t, m in enumerate(masks.masks(clip))]
        assert psnrs[passes] == pytest.approx(psnr_of_mse(sum(errors) / len(errors)), abs=1e-4)
    assert psnrs[chosen] == max(psnrs.values())
