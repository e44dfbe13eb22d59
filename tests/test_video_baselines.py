"""nca_cli.video's data side: masks, the baselines and the scores against straightforward formulas,
clips in and out, the demo clips."""

import math

import numpy as np
import pytest
import torch

from nca_cli.errors import NCAError
from nca_cli.video.baselines import Interpolation, InterpolationParams, LastSeen, TUNE_SEED, clip_error, tune_interpolation
from nca_cli.video.clips import Clip, read_clip, to_grey, write_clip
from nca_cli.video.demo_clips import make_demo_clip, pan_path, window
from nca_cli.video.masks import frame_masks
from nca_cli.video.scores import ScoreTrack, psnr_of_mse, ssim


def random_clip(frames: int = 6, size: tuple[int, int] = (12, 12), smooth: bool = False, seed: int = 0) -> Clip:
    """A small random RGB clip; `smooth`: blocks of 4 x 4 pixels, so that lossy codecs keep it."""
    rng = np.random.default_rng(seed)
    H, W = size
    if smooth:
        small = rng.integers(0, 256, (frames, -(-H // 4), -(-W // 4), 3), dtype=np.uint8)
        return Clip(small.repeat(4, 1).repeat(4, 2)[:, :H, :W].copy(), 30.0, "random")
    return Clip(rng.integers(0, 256, (frames, H, W, 3), dtype=np.uint8), 30.0, "random")


def test_masks_are_fresh_per_frame_or_fixed_and_follow_the_seed():
    fresh = list(frame_masks(5, (40, 50), 0.1, seed=3))
    again = list(frame_masks(5, (40, 50), 0.1, seed=3))
    fixed = list(frame_masks(5, (40, 50), 0.1, fixed=True, seed=3))
    assert all(torch.equal(a, b) for a, b in zip(fresh, again))
    assert not torch.equal(fresh[0], fresh[1]) and all(torch.equal(fixed[0], m) for m in fixed)
    assert torch.equal(fixed[0], fresh[0])
    share = torch.stack(fresh).float().mean()
    assert 0.08 < share < 0.12 and fresh[0].dtype == torch.bool and fresh[0].shape == (40, 50)
    for keep, shown in ((0.0, "0"), (1.5, "1.5"), (float("nan"), "nan")):
        with pytest.raises(NCAError, match=rf"^keep must be in \(0, 1\], got {shown}$"):
            next(frame_masks(1, (8, 8), keep))


def hand_last_seen(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Pixel by pixel: the last observed value, or the frame's mean of observed values."""
    T, H, W, P = frames.shape
    out, held, seen, fill = np.zeros_like(frames), np.zeros((H, W, P)), np.zeros((H, W), bool), np.full(P, 0.5)
    for t in range(T):
        if masks[t].any():
            fill = frames[t][masks[t]].mean(0)
        for y in range(H):
            for x in range(W):
                if masks[t, y, x]:
                    held[y, x], seen[y, x] = frames[t, y, x], True
                out[t, y, x] = held[y, x] if seen[y, x] else fill
    return out


def hand_interpolation(frames: np.ndarray, masks: np.ndarray, ss: float, st: float) -> np.ndarray:
    """Every observation within 3 sigma (space, past frames) weighted by its Gaussian weight."""
    T, H, W, P = frames.shape
    r, window = max(1, math.ceil(3 * ss)), int(3 * st) + 1
    out = np.zeros_like(frames)
    for t in range(T):
        num, den = np.zeros((H, W, P)), np.zeros((H, W))
        for lag in range(min(window, t + 1)):
            for oy, ox in zip(*np.nonzero(masks[t - lag])):
                for y in range(max(0, oy - r), min(H, oy + r + 1)):
                    for x in range(max(0, ox - r), min(W, ox + r + 1)):
                        w = math.exp(-0.5 * ((y - oy) ** 2 + (x - ox) ** 2) / ss ** 2 - 0.5 * lag ** 2 / st ** 2)
                        num[y, x] += w * frames[t - lag, oy, ox]
                        den[y, x] += w
        mean = num.sum((0, 1)) / den.sum() if den.sum() > 0 else np.full(P, 0.5)
        out[t] = np.where(den[..., None] > 1e-6, num / np.maximum(den, 1e-6)[..., None], mean)
    return np.clip(out, 0, 1)


def run_online(method, frames, masks):
    return np.stack([method(torch.tensor(f, dtype=torch.float32), torch.tensor(m)).numpy()
                     for f, m in zip(frames, masks)])


def test_baselines_match_straightforward_formulas():
    rng = np.random.default_rng(0)
    frames = rng.random((6, 9, 11, 3))
    masks = rng.random((6, 9, 11)) < 0.15
    masks[0] = False  # a frame with nothing observed
    np.testing.assert_allclose(run_online(LastSeen(), frames, masks), hand_last_seen(frames, masks), atol=1e-6)
    got = run_online(Interpolation(InterpolationParams(1.0, 1.5)), frames, masks)
    np.testing.assert_allclose(got, hand_interpolation(frames, masks, 1.0, 1.5), atol=1e-5)


def test_interpolation_parameters_are_checked():
    with pytest.raises(NCAError, match=r"^sigma_time must be above 0 and at most 100, got 0$"):
        InterpolationParams(1.0, 0.0)


def hand_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM with 7 x 7 windows and sample covariances, averaged over windows inside the frame and
    over channels (Wang et al. 2004, as scikit-image computes it)."""
    c1, c2, scores = 0.01 ** 2, 0.03 ** 2, []
    for ch in range(a.shape[2]):
        for y in range(3, a.shape[0] - 3):
            for x in range(3, a.shape[1] - 3):
                p, q = a[y - 3 : y + 4, x - 3 : x + 4, ch].ravel(), b[y - 3 : y + 4, x - 3 : x + 4, ch].ravel()
                vp, vq, cov = p.var(ddof=1), q.var(ddof=1), np.cov(p, q)[0, 1]
                scores.append((2 * p.mean() * q.mean() + c1) * (2 * cov + c2)
                              / ((p.mean() ** 2 + q.mean() ** 2 + c1) * (vp + vq + c2)))
    return float(np.mean(scores))


def test_scores_match_the_formulas():
    rng = np.random.default_rng(1)
    truth = rng.random((12, 13, 3))
    estimate = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1)
    err = ((estimate - truth) ** 2).mean()
    track = ScoreTrack()
    track.add(torch.tensor(estimate), torch.tensor(truth))
    track.add(torch.tensor(truth), torch.tensor(truth))
    assert track.psnr == pytest.approx([10 * math.log10(1 / err), 100.0])
    assert track.overall_psnr == pytest.approx(10 * math.log10(1 / (err / 2)))
    assert track.ssim[0] == pytest.approx(hand_ssim(estimate, truth), abs=1e-6) and track.ssim[1] == pytest.approx(1.0)
    assert ssim(torch.tensor(estimate[..., :1]), torch.tensor(truth[..., :1])) == pytest.approx(
        hand_ssim(estimate[..., :1], truth[..., :1]), abs=1e-6)
    assert psnr_of_mse(0.0) == 100.0


def test_tuning_picks_the_best_of_the_grid(monkeypatch):
    import nca_cli.video.baselines as baselines

    monkeypatch.setattr(baselines, "SIGMA_SPACE_GRID", (0.75, 3.0))
    monkeypatch.setattr(baselines, "SIGMA_TIME_GRID", (0.5, 8.0))
    clip = make_demo_clip("camera", (16, 16), 12, speed=0.0)  # a still picture: long memory wins
    params, psnr = tune_interpolation(clip, 0.05)
    errors = {(a, b): clip_error(Interpolation(InterpolationParams(a, b)), clip, 0.05, seed=TUNE_SEED)
              for a in (0.75, 3.0) for b in (0.5, 8.0)}
    assert (params.sigma_space, params.sigma_time) == min(errors, key=errors.get)
    assert params.sigma_time == 8.0 and psnr == pytest.approx(psnr_of_mse(min(errors.values())))


def test_pans_move_at_the_speed_asked_and_windows_are_bilinear():
    path = pan_path(300, radius=0.5 * 300 / (2 * math.pi * 1.25), seed=0)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert 0.4 < steps.mean() < 0.6
    image = np.random.default_rng(0).random((10, 12, 3)) * 255
    got = window(image, 2.25, 3.5, 4, 5).astype(float)
    y, x = np.mgrid[0:4, 0:5]
    want = (0.75 * 0.5 * image[2 + y, 3 + x] + 0.75 * 0.5 * image[2 + y, 4 + x]
            + 0.25 * 0.5 * image[3 + y, 3 + x] + 0.25 * 0.5 * image[3 + y, 4 + x])
    assert np.abs(got - want).max() <= 0.5 + 1e-9
    clip = make_demo_clip("chelsea", (20, 24), 6)
    assert clip.frames.shape == (6, 20, 24, 3) and clip.frames.dtype == np.uint8
    assert make_demo_clip("camera", (20, 24), 2).with_channels(1).frames.shape == (2, 20, 24, 1)


def test_clips_round_trip_through_files_and_grey_is_detected(tmp_path):
    clip = random_clip(frames=5, size=(16, 20), smooth=True)
    write_clip(tmp_path / "c.mp4", clip)
    back = read_clip(tmp_path / "c.mp4")
    assert back.frames.shape == (5, 16, 20, 3) and back.fps == pytest.approx(30.0)
    assert np.abs(back.frames.astype(float) - clip.frames).mean() < 12  # H.264 is lossy
    grey = Clip(to_grey(clip.frames), 12.0, "g")
    write_clip(tmp_path / "g.gif", grey)
    back = read_clip(tmp_path / "g.gif", size=(8, 10), max_frames=3)
    assert back.frames.shape == (3, 8, 10, 1) and back.fps == pytest.approx(12.5, abs=0.6)
    with pytest.raises(NCAError, match=r"^video not found: "):
        read_clip(tmp_path / "missing.mp4")
