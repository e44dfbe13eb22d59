import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nca_cli import __version__
from nca_cli.formats.model_file import load_model
from nca_cli.cli import app

from .conftest import TINY_ARGS

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, disc_png):
    """A tiny model trained through the command line (regen mode, a few iterations)."""
    out = tmp_path_factory.mktemp("model") / "disc.safetensors"
    result = invoke("train", disc_png, "--regen", "-o", out, *TINY_ARGS)
    assert result.exit_code == 0, result.output
    return out


def test_version_and_help():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"nca {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0 and "train" in result.output and "grow" in result.output


def command_names(typer_app=app, prefix: str = "") -> list[str]:
    """Every command of the app, sub-commands of command groups (`nca rule learn`) included,
    derived from it, so that a new command cannot skip the checks."""
    names = [prefix + (c.name or c.callback.__name__) for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        names += command_names(group.typer_instance, f"{prefix}{group.name} ")
    return names


def test_the_app_has_the_documented_commands():
    assert set(command_names()) >= {"train", "grow", "damage", "rotate", "export", "bench"}


@pytest.mark.parametrize("command", command_names())
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0
    assert f"Example: nca {command}" in result.output


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "nca_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"nca {__version__}"


def test_train_writes_model_plots_and_summary(tiny_model):
    folder = tiny_model.parent
    loaded = load_model(tiny_model)
    assert loaded.model.config.channels == 8 and loaded.model.config.hidden == 16
    t = loaded.training
    assert t["mode"] == "regen" and t["iterations_done"] == 6 and t["stopped"] == "done"
    assert t["wall_time_s"] >= 0 and np.isfinite(t["final_loss"]) and "grow_loss" in t
    assert loaded.target.shape == (20, 20)
    assert sorted(p.name for p in folder.iterdir()) == [
        "disc.loss.png", "disc.preview.png", "disc.safetensors"]  # the resumable state is gone
    assert Image.open(folder / "disc.loss.png").size == (640, 360)


def test_train_output_reports_figures(tmp_path, disc_png):
    out = tmp_path / "m.safetensors"
    result = invoke("train", disc_png, "-o", out, "--no-plots", "--mode", "grow", *TINY_ARGS)
    assert result.exit_code == 0, result.output
    assert re.search(r"Trained 6 iterations in \d+s \(done\); final batch loss \d\.\d{5}", result.output)
    assert re.search(r"Grown from the seed \(200 steps, mean of 8 runs\): loss \d+\.\d{5}", result.output)
    assert f"Wrote {out}" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert load_model(out).training["mode"] == "grow"


def test_time_budget_stops_early_and_seed_reproduces(tmp_path, disc_png):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for out in (a, b):
        assert invoke("train", disc_png, "-o", out, "--no-plots", *TINY_ARGS).exit_code == 0
    wa, wb = load_model(a).model.state_dict(), load_model(b).model.state_dict()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    c = tmp_path / "c.safetensors"
    result = invoke("train", disc_png, "-o", c, "--no-plots", *TINY_ARGS[:-8], "--iterations", "100000",
                    "--time-budget", "1s", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "(time budget)" in result.output
    assert 0 < load_model(c).training["iterations_done"] < 100000
    d = tmp_path / "d.safetensors"  # no budget at all: the full schedule, the same model as with one
    assert invoke("train", disc_png, "-o", d, "--no-plots", *TINY_ARGS, "--time-budget", "none").exit_code == 0
    wd = load_model(d).model.state_dict()
    assert all(np.array_equal(wa[k], wd[k]) for k in wa)
    result = invoke("train", disc_png, "-o", d, "--no-plots", *TINY_ARGS, "--time-budget", "soon")
    assert result.exit_code == 1 and "Error: invalid duration 'soon'" in result.output


def test_interrupted_training_saves_and_resumes(tmp_path, disc_png, monkeypatch):
    import nca_cli.cli.train as cli

    out = tmp_path / "m.safetensors"
    calls = {"n": 0}

    class StopAfterThree:
        def __enter__(self):
            class Request:
                exit_code = 130

                def __call__(self):
                    calls["n"] += 1
                    return calls["n"] > 3
            return Request()

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(cli, "stop_on_ctrl_c", StopAfterThree)
    result = invoke("train", disc_png, "-o", out, "--no-plots", *TINY_ARGS)
    assert result.exit_code == 130
    assert "Interrupted at iteration 3" in result.output
    assert load_model(out).training["stopped"] == "interrupted"
    state = tmp_path / "m.ckpt.safetensors"
    assert state.exists()
    monkeypatch.undo()

    result = invoke("train", disc_png, "-o", out, "--no-plots", "--resume", *TINY_ARGS)
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output and not state.exists()
    straight = tmp_path / "straight.safetensors"
    assert invoke("train", disc_png, "-o", straight, "--no-plots", *TINY_ARGS).exit_code == 0
    wa, wb = load_model(out).model.state_dict(), load_model(straight).model.state_dict()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("args, message", [
    (["train", "nope.png"], "Error: target not found: nope.png (give an image file or a single emoji)"),
    (["train", "🦎", "--mode", "fly"], "Error: mode must be one of grow, persist, regen, got 'fly'"),
    (["train", "🦎", "--time-budget", "soon"], "Error: invalid duration 'soon': use e.g. 90s, 10m or 1h30m"),
    (["train", "🦎", "-o", "x.pt"], "Error: output must be a .safetensors file, got x.pt"),
    (["train", "🦎", "--device", "tpu"], "Error: unknown device 'tpu': use auto, cpu, cuda or mps"),
    (["train", "🦎", "--overgrowth", "-1"], "Error: --overgrowth must be a number of at least 0, got -1"),
    (["train", "🦎", "--resume", "-o", "none.safetensors"],
     "Error: nothing to resume: none.ckpt.safetensors does not exist"),
    (["train", ""], "Error: a target is an emoji, a picture file or a folder of pictures, got an empty argument"),
    (["grow", "."], "Error: . is a folder; a model is a .safetensors or Distill .json file, or a bundled model"),
    (["grow", "missing.safetensors"], "Error: model not found: missing.safetensors (a .safetensors or Distill .json file, or a bundled model: lizard, lizard-grow, tree3d)"),
    (["grow", "-o", "out.avi"], "Error: unsupported output out.avi: use one of .mp4, .gif, .png, .npy"),
    (["grow", "--grid", "big"], "Error: invalid grid 'big': expected HxW, e.g. 96x96"),
    (["grow", "--every", "0"], "Error: --every must be at least 1, got 0"),
    (["grow", "--steps", "-3"], "Error: steps must not be negative, got -3"),
])
def test_bad_input_gives_one_error_line(tmp_path, args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_corrupt_model_file_is_an_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    result = invoke("grow", bad, "-o", tmp_path / "x.mp4")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot read {bad}: not a safetensors file, or truncated or corrupt"
    assert not (tmp_path / "x.mp4").exists()


def test_grow_mp4_frames_and_size(tmp_path, tiny_model):
    out = tmp_path / "g.mp4"
    result = invoke("grow", tiny_model, "--steps", "10", "--every", "3", "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "wrote 5 frames" in result.output and "Loss against the target:" in result.output
    frames = np.stack(list(iio.imiter(out)))
    assert frames.shape == (5, 260, 260, 3)  # 20 cells x 13 px (>= 256)


def test_grow_gif_odd_grid_and_scale(tmp_path, tiny_model):
    out = tmp_path / "g.gif"
    result = invoke("grow", tiny_model, "--steps", "4", "--grid", "21x15", "--scale", "3", "--fps", "10", "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (45, 63) and im.n_frames == 5
        assert im.info["duration"] == 100
    assert "Loss against" not in result.output  # another canvas than the target's


def test_grow_mp4_odd_size_is_padded_to_even(tmp_path, tiny_model):
    out = tmp_path / "odd.mp4"
    assert invoke("grow", tiny_model, "--steps", "2", "--grid", "21x15", "--scale", "1", "-o", out).exit_code == 0
    frames = np.stack(list(iio.imiter(out)))
    assert frames.shape == (3, 22, 16, 3)


def test_grow_png_last_frame_strip_and_npy(tmp_path, tiny_model):
    png, strip, npy = tmp_path / "g.png", tmp_path / "s.png", tmp_path / "g.npy"
    assert invoke("grow", tiny_model, "--steps", "6", "--scale", "2", "-o", png).exit_code == 0
    assert Image.open(png).size == (40, 40)
    assert invoke("grow", tiny_model, "--steps", "6", "--every", "2", "--scale", "1", "--strip", "-o", strip).exit_code == 0
    assert Image.open(strip).size == (80, 20)
    assert invoke("grow", tiny_model, "--steps", "6", "--every", "2", "-o", npy, "--seed", "4").exit_code == 0
    states = np.load(npy)
    assert states.shape == (4, 20, 20, 8) and states.dtype == np.float32
    assert states[0, 10, 10, 3] == 1 and states[0].sum() == 5  # the seed
    last = Image.open(png)
    assert last.mode == "RGB"


def test_grow_default_is_the_bundled_lizard(tmp_path):
    result = invoke("grow", "--steps", "200", "--every", "50", "-o", "out.png")
    assert result.exit_code == 0, result.output
    loss = float(re.search(r"Loss against the target: (\d\.\d+)", result.output).group(1))
    assert loss < 0.01
    assert Image.open(tmp_path / "out.png").size == (288, 288)


def test_completions_are_current():
    from pathlib import Path

    from nca_cli.cli.completions import completion_script

    folder = Path(__file__).parent.parent / "completions"
    for shell, name in [("bash", "nca.bash"), ("zsh", "_nca"), ("fish", "nca.fish")]:
        assert (folder / name).read_text() == completion_script(shell), f"regenerate completions/{name}"


def test_every_command_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in command_names():
        assert f"### `nca {name.split()[0]}" in readme, name
        assert f"nca {name}" in readme, name  # each sub-command appears in its section's examples


def test_small_batches_wound_fewer_samples(tmp_path, disc_png):
    out = tmp_path / "m.safetensors"
    i = TINY_ARGS.index("--batch")
    args = TINY_ARGS[: i + 1] + ["2"] + TINY_ARGS[i + 2 :]  # --batch 2, everything else as it was
    result = invoke("train", disc_png, "-o", out, "--no-plots", *args)
    assert result.exit_code == 0, result.output
    assert load_model(out).training["batch"] == 2 and load_model(out).training["damage_count"] == 1
    result = invoke("train", disc_png, "-o", out, "--no-plots", "--damage-count", "2", *args)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --damage-count must be from 0 to the batch size less one (1), got 2"


def test_train_saves_the_weight_average_it_was_asked_for(tmp_path, disc_png):
    out = tmp_path / "m.safetensors"
    result = invoke("train", disc_png, "-o", out, "--no-plots", "--average", "0.5", *TINY_ARGS)
    assert result.exit_code == 0, result.output
    averaged = load_model(out)
    assert averaged.training["average"] == 0.5
    result = invoke("train", disc_png, "-o", out, "--no-plots", "--average", "0", *TINY_ARGS)
    assert result.exit_code == 0, result.output
    last = load_model(out)
    assert last.training["average"] == 0.0
    assert not torch.equal(averaged.model.w1.weight, last.model.w1.weight)
    result = invoke("train", disc_png, "-o", out, "--no-plots", "--average", "1", *TINY_ARGS)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: weight average decay must be in [0, 1), got 1.0"
    assert load_model(out).training["average"] == 0.0  # the earlier model is untouched
