"""`nca video` end to end through the command line: demo clips, training, reconstruction with the
side-by-side video, scores and plot, the baselines alone, and one exact line for each bad input."""

import json
import subprocess

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.errors import NCAError
from nca_cli.formats.model_file import load_model, read_safetensors, resolve_model_path
from nca_cli.video.checkpoint import load_video_state, save_video_state
from nca_cli.video.model import WARM_UP, video_config
from nca_cli.video.reconstruct import SMOOTHING_PASSES
from nca_cli.video.train import VideoTrainConfig, VideoTrainer

from .test_video_baselines import random_clip

runner = CliRunner()
TINY = ["--crop", "12", "--window", "3", "--batch", "2", "--iterations", "3", "--hidden-channels", "4",
        "--hidden", "16", "--time-budget", "none", "--device", "cpu", "--keep", "0.05"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for name, seed in (("astronaut", 0), ("coffee", 1)):
        result = invoke("video", "clip", name, "-o", folder / f"{name}.mp4", "--size", "16x16", "--frames", "20",
                        "--seed", seed)
        assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def trained(clips):
    model = clips / "scotopic.safetensors"
    result = invoke("video", "train", clips / "astronaut.mp4", "-o", model, *TINY)
    assert result.exit_code == 0, result.output
    assert "Trained 3 iterations" in result.output and f"Wrote {model}" in result.output
    return model


def test_clip_writes_the_frames_asked_for(clips):
    frames = iio.imread(clips / "coffee.mp4", index=None)
    assert frames.shape == (20, 16, 16, 3)


def test_a_gif_clip_says_the_rate_it_stores(tmp_path):
    # A GIF's delays are whole hundredths of a second: 30 fps is stored as 3/100 s, 33.33 fps.
    result = invoke("video", "clip", "camera", "--frames", "3", "--size", "16x16", "-o", tmp_path / "c.gif")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Wrote {tmp_path / 'c.gif'}: 3 frames of 16x16 at 33.33 fps (the nearest to 30 that a GIF stores)"
    assert iio.immeta(tmp_path / "c.gif")["duration"] == 30
    result = invoke("video", "clip", "camera", "--frames", "3", "--size", "16x16", "--fps", "25", "-o", tmp_path / "d.gif")
    assert result.output.strip().endswith("at 25 fps") and iio.immeta(tmp_path / "d.gif")["duration"] == 40


def test_train_writes_a_video_model_with_its_task(trained, clips):
    loaded = load_model(trained)
    loaded.expect("video", "reconstructing video")
    task = loaded.task
    assert task["pixel_channels"] == 3 and task["keep"] == 0.05 and task["mask"] == "random"
    assert task["steps_per_frame"] == VideoTrainConfig.steps_per_frame
    assert set(task["interpolation"]) == {"sigma_space", "sigma_time", "keep", "mask", "tuned_on"}
    assert task["smoothing"]["passes"] in SMOOTHING_PASSES
    assert {k: v for k, v in task["smoothing"].items() if k != "passes"} == {"keep": 0.05, "mask": "random",
                                                                           "tuned_on": "astronaut"}
    assert task["clip"] == {"name": "astronaut", "frames": 20, "height": 16, "width": 16, "fps": 30.0}
    cfg = loaded.model.config
    assert not cfg.alive_masking and cfg.channels == 3 + 3 + 1 + 4 and cfg.hidden == 16
    assert loaded.training["iterations_done"] == 3 and loaded.training["stopped"] == "done"
    assert set(loaded.training["train_clip_psnr"]) == {"nca", "last_seen", "interpolation"}
    assert not (clips / "scotopic.ckpt.safetensors").exists()


def test_reconstruct_writes_side_by_side_scores_and_plot(trained, clips, tmp_path):
    video, scores, plot = tmp_path / "side.mp4", tmp_path / "scores.json", tmp_path / "psnr.png"
    result = invoke("video", "reconstruct", trained, clips / "coffee.mp4", "-o", video, "--json", scores,
                    "--plot", plot, "--scale", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    frames = iio.imread(video, index=None)
    assert frames.shape == (20, 32, 2 * (4 * 16 + 3 * 2), 3)
    data = json.loads(scores.read_text())
    assert set(data) == {"clip", "keep", "mask", "seed", "interpolation", "methods", "best_baseline",
                         "steps_per_frame", "readout", "nca_fps", "nca_minus_baseline_db"}
    assert data["keep"] == 0.05 and data["mask"] == "random" and data["interpolation"]["tuned_on"] == "astronaut"
    assert data["readout"] == {"warm_up": WARM_UP, "smoothing": load_model(trained).task["smoothing"]}
    for name in ("nca", "last_seen", "interpolation"):
        method = data["methods"][name]
        assert len(method["per_frame"]["psnr"]) == 20 and len(method["per_frame"]["ssim"]) == 20
        mse = np.mean([10 ** (-p / 10) for p in method["per_frame"]["psnr"]])
        assert method["psnr"] == pytest.approx(-10 * np.log10(mse), abs=0.01)
    assert data["nca_minus_baseline_db"]["interpolation"] == pytest.approx(
        data["methods"]["nca"]["psnr"] - data["methods"]["interpolation"]["psnr"], abs=0.002)
    assert Image.open(plot).size == (640, 360)
    assert "nca" in result.output and "frames per second" in result.output


def test_reconstruct_at_another_keep_needs_its_own_interpolation(trained, clips, tmp_path):
    result = invoke("video", "reconstruct", trained, clips / "coffee.mp4", "--keep", "0.1", "--json",
                    tmp_path / "s.json")
    assert error_line(result) == (
        "Error: the model's interpolation parameters were chosen at keep 0.05 with random masks; for keep 0.1 "
        "with random masks give --tune-on CLIP (e.g. the training clip), or --sigma-space and --sigma-time")
    assert not (tmp_path / "s.json").exists()
    result = invoke("video", "reconstruct", trained, clips / "coffee.mp4", "--keep", "0.1", "--mask-fixed",
                    "--tune-on", clips / "astronaut.mp4", "--size", "12x12", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["mask"] == "fixed" and data["interpolation"]["keep"] == 0.1 and data["clip"]["width"] == 12
    assert data["readout"]["smoothing"]["keep"] == 0.1 and data["readout"]["smoothing"]["tuned_on"] == "astronaut"
    given = ["--keep", "0.1", "--sigma-space", "1", "--sigma-time", "2", "--json", tmp_path / "g.json"]
    assert error_line(invoke("video", "reconstruct", trained, clips / "coffee.mp4", *given)) == (
        "Error: the model's readout smoothing was chosen at keep 0.05 with random masks; for keep 0.1 "
        "with random masks give --tune-on CLIP (e.g. the training clip), or --smoothing")
    result = invoke("video", "reconstruct", trained, clips / "coffee.mp4", *given, "--smoothing", "3", "--warm-up", "0")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["readout"] == {"warm_up": 0, "smoothing": {"passes": 3, "tuned_on": None}}
    assert "(0 more on the first), read out smoothed 3 passes" in result.output


def test_baseline_alone(clips, tmp_path):
    out = tmp_path / "baseline.json"
    result = invoke("video", "baseline", clips / "coffee.mp4", "--keep", "0.05", "--json", out,
                    "--sigma-space", "2", "--sigma-time", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["methods"]) == {"last_seen", "interpolation"} and data["interpolation"]["sigma_space"] == 2.0
    assert data["best_baseline"] == max(data["methods"], key=lambda k: data["methods"][k]["psnr"])


def test_train_on_a_grey_clip_makes_a_grey_model(tmp_path):
    clip = tmp_path / "grey.gif"
    assert invoke("video", "clip", "camera", "-o", clip, "--size", "16x16", "--frames", "12").exit_code == 0
    model = tmp_path / "grey.safetensors"
    result = invoke("video", "train", clip, "-o", model, *TINY)
    assert result.exit_code == 0, result.output
    assert load_model(model).task["pixel_channels"] == 1 and load_model(model).model.config.channels == 7


def zero_frame_video(path):
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=32x32:r=30",
                    "-frames:v", "0", "-c:v", "libx264", str(path)], check=True)


def test_bad_input_is_one_line_and_nothing_is_written(trained, clips, tmp_path):
    bad, zero = tmp_path / "bad.mp4", tmp_path / "zero.mp4"
    bad.write_bytes(b"not a video" * 10)
    zero_frame_video(zero)
    out, scores = tmp_path / "o.mp4", tmp_path / "o.json"
    coffee = clips / "coffee.mp4"
    lizard = resolve_model_path("lizard")
    cases = [
        (["video", "baseline", bad], f"Error: cannot read {bad}: not a video that imageio can decode (mp4, webm, gif, ...)"),
        (["video", "reconstruct", trained, zero, "-o", out], f"Error: {zero} has no frames"),
        (["video", "train", zero, "-o", tmp_path / "m.safetensors"], f"Error: {zero} has no frames"),
        (["video", "baseline", coffee, "--keep", "0", "--json", scores], "Error: --keep must be in (0, 1], got 0"),
        (["video", "reconstruct", trained, coffee, "--keep", "1.5", "-o", out], "Error: --keep must be in (0, 1], got 1.5"),
        (["video", "train", coffee, "--keep", "-0.1", "-o", tmp_path / "m.safetensors"], "Error: --keep must be in (0, 1], got -0.1"),
        (["video", "reconstruct", "lizard", coffee, "-o", out],
         f"Error: {lizard} holds an image model; reconstructing video needs a video model"),
        (["video", "reconstruct", trained, coffee, "--size", "4x6", "-o", out],
         "Error: frames of 4x6 pixels are too small: video needs at least 8x8"),
        (["video", "train", coffee, "--crop", "24", "-o", tmp_path / "m.safetensors"],
         "Error: the clip's frames (16x16) are smaller than the training crop (24x24): use a smaller --crop or a larger --size"),
        (["video", "reconstruct", trained, tmp_path / "nothing.mp4"], f"Error: video not found: {tmp_path / 'nothing.mp4'}"),
        (["video", "train", coffee, "--resume", "-o", tmp_path / "m.safetensors"],
         f"Error: nothing to resume: {tmp_path / 'm.ckpt.safetensors'} does not exist"),
        (["video", "reconstruct", trained, coffee, "--warm-up", "-1", "-o", out], "Error: warm-up steps must be at least 0, got -1"),
        (["video", "reconstruct", trained, coffee, "--smoothing", "-1", "--json", scores],
         "Error: smoothing passes must be at least 0, got -1"),
        (["video", "reconstruct", trained, coffee, "--scale", "-1", "-o", out], "Error: --scale must be between 1 and 8192, got -1"),
        (["video", "reconstruct", trained, coffee, "--scale", "0", "-o", out], "Error: --scale must be between 1 and 8192, got 0"),
        (["video", "reconstruct", trained, coffee, "-o", tmp_path / "o.png"],
         f"Error: the side-by-side video is written as .mp4 or .gif, got {tmp_path / 'o.png'}"),
        (["video", "clip", "camera", "--fps", "0", "-o", tmp_path / "c.mp4"],
         "Error: --fps must be a number above 0 and at most 240, got 0.0"),
        (["video", "train", coffee, "--hidden-channels", "-1", "-o", tmp_path / "m.safetensors"],
         "Error: --hidden-channels must be between 0 and 1017, got -1"),
        (["video", "train", coffee, "--bands", "0", "-o", tmp_path / "m.safetensors"],
         "Error: --bands must be between 1 and 64 with learned perception, got 0"),
        (["video", "train", coffee, "--fire-rate", "0", "-o", tmp_path / "m.safetensors"],
         "Error: --fire-rate must be in (0, 1], got 0.0"),
        (["video", "train", coffee, "--lr-decay-at", "-5", "-o", tmp_path / "m.safetensors"],
         "Error: --lr-decay-at must not be negative, got -5"),
        (["video", "train", coffee, "--checkpoint-every", "-1", "-o", tmp_path / "m.safetensors"],
         "Error: --checkpoint-every must not be negative, got -1"),
    ]
    for args, line in cases:
        assert error_line(invoke(*args)) == line, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "zero.mp4"]


def test_training_stopped_and_resumed_ends_where_an_uninterrupted_run_does(tmp_path):
    clip = random_clip(frames=12, size=(12, 12))
    config = VideoTrainConfig(keep=0.2, iterations=4, batch=2, crop=8, window=3, seed=1)
    model = video_config(3, hidden_channels=4, hidden=16)
    whole = VideoTrainer(model, config, clip)
    assert whole.run() == "done"
    half = VideoTrainer(model, config, clip)
    assert half.run(should_stop=lambda: half.iteration == 2) == "interrupted"
    save_video_state(half, tmp_path / "state.safetensors")
    resumed = load_video_state(tmp_path / "state.safetensors", clip)
    assert resumed.iteration == 2 and resumed.run() == "done"
    assert resumed.losses == whole.losses
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
    other = random_clip(frames=12, size=(12, 12), seed=5)
    with pytest.raises(Exception, match="was trained on another clip"):
        load_video_state(tmp_path / "state.safetensors", other)


def test_a_resume_state_saved_before_tones_and_scales_still_loads(tmp_path):
    clip = random_clip(frames=12, size=(20, 20))
    config = VideoTrainConfig(keep=0.2, iterations=2, batch=3, crop=8, window=3, seed=1)
    trainer = VideoTrainer(video_config(3, hidden_channels=4, hidden=16), config, clip)
    trainer.run()
    save_video_state(trainer, tmp_path / "state.safetensors")
    tensors, meta = read_safetensors(tmp_path / "state.safetensors")
    for name in ("streams.zoom", "streams.gain", "streams.shift"):
        del tensors[name]
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    old = load_video_state(tmp_path / "old.safetensors", clip, iterations=3)
    assert old.zoom.eq(1).all() and old.gain.eq(1).all() and old.shift.eq(0).all()
    assert torch.equal(old.time, trainer.time) and torch.equal(old.state, trainer.state)
    assert old.run() == "done" and old.iteration == 3


def test_a_damaged_or_shorter_resume_state_is_one_error(tmp_path):
    clip = random_clip(frames=12, size=(20, 20))
    config = VideoTrainConfig(keep=0.2, iterations=2, batch=3, crop=8, window=3, seed=1)
    trainer = VideoTrainer(video_config(3, hidden_channels=4, hidden=16), config, clip)
    trainer.run()
    state = tmp_path / "state.safetensors"
    save_video_state(trainer, state)
    with pytest.raises(NCAError, match="^iterations 1 is fewer than the 2 iterations the run has done"):
        load_video_state(state, clip, iterations=1)
    tensors, meta = read_safetensors(state)
    progress = json.loads(meta["progress"])
    for bad, message in (([1, 2], "has invalid metadata: clip and progress must be JSON objects"),
                         ({k: v for k, v in progress.items() if k != "rollbacks"}, "is damaged: its progress")):
        save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={**meta, "progress": json.dumps(bad)})
        with pytest.raises(NCAError, match=message):
            load_video_state(tmp_path / "bad.safetensors", clip)


def test_augmentation_shows_each_stream_its_own_scale_view_colours_and_tone():
    clip = random_clip(frames=12, size=(20, 20))
    config = VideoTrainConfig(keep=0.2, iterations=1, batch=6, crop=8, window=3, seed=3)
    trainer = VideoTrainer(video_config(3, hidden_channels=4, hidden=16), config, clip)
    trainer.restart_finished_streams()
    got = trainer.crops(1)
    frames = torch.from_numpy(clip.frames).float() / 255.0
    gains, shifts = trainer.gain.tolist(), trainer.shift.tolist()
    assert all(0.6 <= g <= 1.4 for g in gains) and all(-0.15 <= s <= 0.15 for s in shifts)
    assert len(set(gains)) == 6 and len(set(shifts)) == 6
    assert set(trainer.zoom.tolist()) == {1, 2}
    for b in range(6):
        t, (y, x), z = int(trainer.time[b]), trainer.origin[b].tolist(), int(trainer.zoom[b])
        assert 0 <= y <= 20 - 8 * z and 0 <= x <= 20 - 8 * z
        region = frames[t + 1, y : y + 8 * z, x : x + 8 * z]  # z x z pixels averaged into each crop pixel
        crop = F.avg_pool2d(region.permute(2, 0, 1)[None], z)[0].permute(1, 2, 0)
        transpose, flip_rows, flip_cols = trainer.view[b].tolist()
        crop = crop.permute(1, 0, 2) if transpose else crop
        crop = torch.flip(crop, [0]) if flip_rows else crop
        crop = torch.flip(crop, [1]) if flip_cols else crop
        crop = crop[..., trainer.order[b]]
        want = torch.clamp((crop - 0.5) * gains[b] + 0.5 + shifts[b], 0.0, 1.0)
        assert torch.allclose(got[b], want, atol=1e-6)
    plain = VideoTrainer(video_config(3, hidden_channels=4, hidden=16),
                         VideoTrainConfig(keep=0.2, iterations=1, batch=6, crop=8, window=3, seed=3, augment=False), clip)
    plain.restart_finished_streams()
    assert plain.gain.eq(1).all() and plain.shift.eq(0).all() and plain.view.eq(0).all() and plain.zoom.eq(1).all()
