"""Every failure a clean one: bad outputs, full disks, huge requests, damaged files, bad numbers,
signals. Each expected failure is one `Error: ...` line, exit 1 (143 for SIGTERM), and nothing left
at the output or beside it."""

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.formats.atomic import atomic_output
from nca_cli.formats.model_file import bundled_models

from .conftest import TINY_ARGS

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result, message: str | None = None, startswith: str | None = None) -> str:
    """The result is exactly one `Error: ...` line and exit code 1; returns the line."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    if message is not None:
        assert lines[0] == message
    if startswith is not None:
        assert lines[0].startswith(startswith), lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB tmpfs (root only); elsewhere the test is skipped and says why."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk cases were not run")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


# -- 1. outputs ------------------------------------------------------------------------------------

def test_output_that_is_a_directory(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    one_error(invoke("grow", "--steps", "2", "-o", tmp_path / "x.mp4"),
              f"Error: cannot write output {tmp_path}/x.mp4: it is a directory")
    assert leftovers(tmp_path) == ["x.mp4"] and leftovers(tmp_path / "x.mp4") == []


@pytest.mark.parametrize("command", [["grow", "--steps", "2"], ["export", "--format", "onnx"],
                                     ["damage", "--sweep", "--radii", "4", "--json"]])
def test_unwritable_place(command, tmp_path):
    out = {"grow": "/proc/g.png", "export": "/proc/g.onnx", "damage": "/proc/s.json"}[command[0]]
    line = one_error(invoke(*command, out) if command[0] == "damage" else invoke(*command, "-o", out))
    assert line.startswith(f"Error: cannot write output {out}: ")
    assert leftovers(tmp_path) == []


def test_train_checks_its_output_before_training(tmp_path, disc_png):
    start = time.perf_counter()
    result = invoke("train", disc_png, "-o", "/proc/m.safetensors", *TINY_ARGS, "--iterations", "100000")
    one_error(result, startswith="Error: cannot write output /proc/m.safetensors: ")
    assert time.perf_counter() - start < 30  # refused up front, not after 100000 iterations


def test_train_rescues_the_model_when_the_final_write_fails(tmp_path, disc_png, monkeypatch):
    import nca_cli.training.finish as finish

    real = finish.save_model
    calls = []

    def failing_once(path, *args, **kwargs):
        calls.append(Path(path))
        if len(calls) == 1:
            raise finish.NCAError(f"cannot write {path}: No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(finish, "save_model", failing_once)
    system_temp = tmp_path / "system-temp"  # where the rescue goes, instead of the real temp folder
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    out = tmp_path / "work" / "m.safetensors"
    out.parent.mkdir()
    line = one_error(invoke("train", disc_png, "-o", out, "--no-plots", *TINY_ARGS, "--checkpoint-every", "3"))
    rescued = calls[1]
    assert line == (f"Error: cannot write {out}: No space left on device; the trained model was saved to "
                    f"{rescued} instead")
    assert rescued.exists() and rescued.parent.parent == system_temp
    assert leftovers(out.parent) == ["m.ckpt.safetensors"]  # the resume state is kept: nothing is lost


@pytest.mark.parametrize("name", ["g.gif", "g.mp4", "g.npy", "g.png"])
def test_full_disk_while_writing_frames(tiny_disk, name):
    (tiny_disk / "fill").write_bytes(b"\0" * (300 - 24) * 1024)  # leave 24 KB: the first frames fit
    out = tiny_disk / name
    steps = "400" if name != "g.png" else "40"
    args = ["--strip", "--every", "1"] if name == "g.png" else []
    line = one_error(invoke("grow", "--steps", steps, "--scale", "4", *args, "-o", out, "--device", "cpu"))
    assert "No space left on device" in line or "needs" in line, line
    assert leftovers(tiny_disk) == ["fill"]


def test_full_disk_while_exporting_and_saving(tiny_disk, tmp_path):
    big = tiny_disk / "fill"
    big.write_bytes(b"\0" * (300 * 1024 - 30 * 1024))  # leave less room than a model file takes
    for fmt, name in [("onnx", "m.onnx"), ("safetensors", "m.safetensors"), ("web", "m.html")]:
        line = one_error(invoke("export", "--format", fmt, "-o", tiny_disk / name))
        assert "No space left on device" in line, line
    assert leftovers(tiny_disk) == ["fill"]


def test_stale_temporary_files_of_killed_writers_are_removed(tmp_path):
    dead = tmp_path / ".g.nca-999999999-abc.part.png"  # no such process
    alive = tmp_path / f".g.nca-{os.getpid()}-def.part.png"  # this process: still writing
    other = tmp_path / ".h.nca-999999999-abc.part.png"  # another output's
    for p in (dead, alive, other):
        p.write_bytes(b"x")
    with atomic_output(tmp_path / "g.png") as tmp:
        tmp.write_bytes(b"png")
    assert leftovers(tmp_path) == sorted([alive.name, other.name, "g.png"])


# -- 3. requests too large ------------------------------------------------------------------------

@pytest.mark.parametrize("args, start", [
    (["grow", "--grid", "100000x100000", "-o", "g.png"], "Error: a run on a 100000x100000 grid needs about "),
    (["grow", "--scale", "100000", "-o", "g.png"], "Error: --scale must be between 1 and 8192, got 100000"),
    (["grow", "--scale", "200", "-o", "g.png"], "Error: frames of 14400x14400 pixels are too large to write"),
    (["train", "🦎", "--channels", "1000000000"], "Error: --channels must be between 4 and 1024, got 1000000000"),
    (["train", "🦎", "--hidden", "1000000000"], "Error: --hidden must be between 1 and 16384, got 1000000000"),
    (["train", "🦎", "--size", "1000", "--pad", "1000", "--batch", "64", "--pool-size", "100000"],
     "Error: training on a 3000x3000 grid (batch 64, pool 100000, rollouts up to 96 steps) needs about "),
    (["bench", "--grid", "100000"], "Error: --grid must be at most 4,096, got 100,000"),
    (["bench", "--grid", "4096", "--batch", "1024"], "Error: a bench of batch 1024 on a 4096x4096 grid"),
    (["damage", "--sweep", "--seeds", "1000000"], "Error: --seeds must be at most 64, got 1000000"),
    (["grow", "--steps", "1000000000000000000000000000000", "-o", "g.png"],
     "Error: steps must be between 0 and 1,000,000, got 1000000000000000000000000000000"),
    (["grow", "--steps", "999999", "-o", "g.npy", "--grid", "512x512"], "Error: 1000000 raw states needs "),
    (["rotate", "--theta", ",".join(["1"] * 2000), "-o", "r.mp4"], "Error: 2000 panels side by side are too many"),
])
def test_requests_too_large_are_refused_before_allocating(tmp_path, args, start):
    one_error(invoke(*args), startswith=start)
    assert leftovers(tmp_path) == []


def test_a_model_file_claiming_a_billion_channels(tmp_path):
    path = bundled_models()["lizard"]
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    model = json.loads(meta["model"])
    meta["model"] = json.dumps({**model, "channels": 10 ** 9})
    save_file(load_file(path), str(tmp_path / "big.safetensors"), metadata=meta)
    one_error(invoke("grow", tmp_path / "big.safetensors", "-o", tmp_path / "g.png"),
              startswith=f"Error: {tmp_path}/big.safetensors has invalid metadata: channels must be between 4 and 1024")


# -- 4. images ---------------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side, claims", [(100000, "claims more than the 64 megapixels"),
                                          (12000, "claims more than the 64 megapixels")])
def test_decompression_bombs_are_one_line(tmp_path, side, claims):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(side, side))
    line = one_error(invoke("train", bomb, "-o", tmp_path / "m.safetensors"))
    assert line == f"Error: cannot read image {bomb}: it {claims} this nca reads"
    line = one_error(invoke("damage", "--shape", "mask", "--mask", bomb, "-o", tmp_path / "d.png"))
    assert line == f"Error: cannot read mask {bomb}: it {claims} this nca reads"


def test_an_image_over_the_limit_but_under_pillows_guard(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(9000, 8000))  # 72 MP: Pillow would decode it, the limit refuses it
    one_error(invoke("train", big), f"Error: cannot read image {big}: it is 9000x8000 pixels, more than the "
                                    "64 megapixels this nca reads")


# -- 5. resume states ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resume_state(tmp_path_factory, disc_png):
    folder = tmp_path_factory.mktemp("resume")
    import nca_cli.cli.train as cli_train

    class StopAfterTwo:
        def __enter__(self):
            class Request:
                exit_code, calls = 130, 0

                def __call__(self):
                    self.calls += 1
                    return self.calls > 2
            return Request()

        def __exit__(self, *exc):
            return False

    original = cli_train.stop_on_ctrl_c
    cli_train.stop_on_ctrl_c = StopAfterTwo
    try:
        assert invoke("train", disc_png, "-o", folder / "m.safetensors", "--no-plots", *TINY_ARGS).exit_code == 130
    finally:
        cli_train.stop_on_ctrl_c = original
    state = folder / "m.ckpt.safetensors"
    with safe_open(str(state), "pt") as f:
        meta = f.metadata()
    return state, load_file(state), meta


def resume_with(tmp_path, disc_png, tensors, meta, *extra):
    out = tmp_path / "m.safetensors"
    save_file(tensors, str(tmp_path / "m.ckpt.safetensors"), metadata=meta)
    return invoke("train", disc_png, "-o", out, "--no-plots", "--resume", *TINY_ARGS, *extra)


def test_resume_state_with_each_tensor_missing(tmp_path, disc_png, resume_state):
    _, tensors, meta = resume_state
    # (the target tensor is a copy kept for reference: the target's checksum in the metadata is what counts)
    for name in [n for n in tensors if not n.startswith("optim.") and n != "target"] + ["optim.0.exp_avg"]:
        kept = {k: v for k, v in tensors.items() if k != name}
        line = one_error(resume_with(tmp_path, disc_png, kept, meta))
        assert "is damaged" in line and "Resuming" not in line, (name, line)


def test_resume_state_with_fields_missing_or_of_the_wrong_type(tmp_path, disc_png, resume_state):
    _, tensors, meta = resume_state
    progress = json.loads(meta["progress"])
    cases = [{k: v for k, v in meta.items() if k != key} for key in ("model", "training", "target", "progress")]
    cases += [{**meta, "progress": json.dumps({k: v for k, v in progress.items() if k != key})}
              for key in ("iteration", "elapsed")]
    cases += [{**meta, "progress": json.dumps({**progress, "iteration": "three"})},
              {**meta, "progress": json.dumps({**progress, "elapsed": [1]})},
              {**meta, "progress": json.dumps([1, 2])}, {**meta, "model": "[]"}]
    for bad in cases:
        line = one_error(resume_with(tmp_path, disc_png, tensors, bad))
        assert "invalid" in line or "not an nca training checkpoint" in line, line


def test_resume_state_with_a_pool_of_the_wrong_shape(tmp_path, disc_png, resume_state):
    _, tensors, meta = resume_state
    pool = tensors["pool"]
    line = one_error(resume_with(tmp_path, disc_png, {**tensors, "pool": pool[:, :-1].contiguous()}, meta))
    assert line.endswith(f"is damaged: pool is torch.float32 {tuple(pool[:, :-1].shape)}, expected torch.float32 "
                         f"{tuple(pool.shape)}")


def test_resume_refuses_changed_options(tmp_path, disc_png, resume_state):
    _, tensors, meta = resume_state
    args = list(TINY_ARGS)
    args[args.index("--batch") + 1] = "2"
    save_file(tensors, str(tmp_path / "m.ckpt.safetensors"), metadata=meta)
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--resume", *args)
    one_error(result, "Error: --resume continues the saved run, which has --batch 4; leave --batch out to continue "
                      "it, or start a new run without --resume")
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--resume", *TINY_ARGS,
                    "--mode", "grow")
    one_error(result, "Error: --resume continues the saved run, which has --mode regen; leave --mode out to "
                      "continue it, or start a new run without --resume")
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--resume", *TINY_ARGS,
                    "--init", "lizard")
    one_error(result, "Error: --resume continues the saved run with its own weights; --init starts a new run from a "
                      "model's: give one of them")
    args = list(TINY_ARGS)
    args[args.index("--iterations") + 1] = "1"
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--resume", *args)
    one_error(result, "Error: --iterations 1 is fewer than the 2 iterations the run has done: give more to extend "
                      "it, or leave it out to finish it as saved")
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--regen", "--mode", "grow")
    one_error(result, "Error: --regen is --mode regen; it cannot be combined with --mode grow")


def test_resume_without_iterations_finishes_the_run_as_saved(tmp_path, disc_png, resume_state):
    _, tensors, meta = resume_state  # saved at iteration 2 of a run of 6
    save_file(tensors, str(tmp_path / "m.ckpt.safetensors"), metadata=meta)
    args = list(TINY_ARGS)
    del args[args.index("--iterations"):args.index("--iterations") + 2]
    result = invoke("train", disc_png, "-o", tmp_path / "m.safetensors", "--no-plots", "--resume", *args)
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output and "Trained 6 iterations" in result.output


# -- 6. half-valid model files ---------------------------------------------------------------------------

def test_model_metadata_with_a_target_that_is_not_an_object(tmp_path):
    path = bundled_models()["lizard"]
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file(load_file(path), str(tmp_path / "m.safetensors"), metadata={**meta, "target": "[1, 2]"})
    one_error(invoke("grow", tmp_path / "m.safetensors", "-o", tmp_path / "g.png"),
              f"Error: {tmp_path}/m.safetensors has invalid metadata: training and task must be JSON objects, "
              "target an object or null")


@pytest.mark.parametrize("key, scale", [("weight_scale", float("nan")), ("bias_scale", 1e300)])
def test_distill_json_with_nan_or_too_large_scales(tmp_path, key, scale):
    """A scale that is not a number, or beyond float32 (whose weights would be infinite), is refused."""
    layers = json.loads((Path(__file__).resolve().parents[2] / "shared" / "distill-models" / "ex3_🦎.json").read_text()) \
        if (Path(__file__).resolve().parents[2] / "shared" / "distill-models" / "ex3_🦎.json").exists() else None
    if layers is None:
        pytest.skip("the shared Distill models are not beside the checkout")
    layers[0][key] = scale
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps(layers))
    line = one_error(invoke("export", bad, "--format", "int8", "-o", tmp_path / "q.safetensors"))
    assert line.startswith(f"Error: {bad}: layer 1 has invalid sizes or scales") and leftovers(tmp_path) == ["nan.json"]


# -- 7. numbers --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["grow", "--fps", "inf"], "Error: --fps must be a number above 0 and at most 240, got inf"),
    (["grow", "--fps", "nan"], "Error: --fps must be a number above 0 and at most 240, got nan"),
    (["damage", "--radius", "nan"], "Error: radius must not be negative, got nan"),
    (["damage", "--tolerance", "nan"], "Error: --tolerance must be a number of at least 0, got nan"),
    (["damage", "--sweep", "--plot", "s.xyz"], "Error: --plot must be a .png file, got s.xyz"),
    (["damage", "--sweep", "--json", "s.txt"], "Error: --json must be a .json file, got s.txt"),
    (["damage", "--sweep", "--radii", "0:1000000000:1"],
     "Error: invalid --radii '0:1000000000:1': that is 1,000,000,001 radii, at most 100"),
    (["damage", "--sweep", "--radii", "nan,2"],
     "Error: invalid --radii 'nan,2': use FROM:TO:STEP (e.g. 2:20:3) or a list (e.g. 2,5,10)"),
    (["train", "🦎", "--lr", "nan"], "Error: the learning rate must be a positive number and its decay in (0, 1], got nan and 0.1"),
    (["train", "🦎", "--iterations", "100000000"], "Error: --iterations must be at most 10,000,000, got 100,000,000"),
    (["train", "🦎", "--checkpoint-every", "-1"], "Error: --checkpoint-every must not be negative, got -1"),
    (["train", "🦎🦎"], "Error: 🦎🦎 is 2 emoji; a target is one emoji or one image file"),
])
def test_bad_numbers_and_suffixes(tmp_path, args, message):
    one_error(invoke(*args), message)
    assert leftovers(tmp_path) == []


def test_a_missing_output_folder_is_created(tmp_path):
    result = invoke("grow", "--steps", "2", "-o", tmp_path / "new" / "folder" / "g.png")
    assert result.exit_code == 0 and (tmp_path / "new" / "folder" / "g.png").exists()


# -- 8. signals --------------------------------------------------------------------------------------------

def start_nca(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "nca_cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("name", ["g.png", "g.mp4"])
def test_sigterm_while_rendering_leaves_nothing(tmp_path, name):
    args = ["grow", "--steps", "100000", "--device", "cpu", "-o", name] + (["--strip", "--every", "500"]
                                                                           if name == "g.png" else [])
    proc = start_nca(args, tmp_path)
    assert wait_for(lambda: any(p.name.endswith(".part" + Path(name).suffix) for p in tmp_path.iterdir()))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and stderr.strip() == "Terminated"
    assert leftovers(tmp_path) == []


def test_an_interrupt_while_the_encoder_starts_is_delivered_after_it_started():
    from nca_cli.formats.ffmpeg import interrupts_held

    seen: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append("handled"))
    try:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            seen.append("inside")
        seen.append("after")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == ["inside", "handled", "after"]


def test_ctrl_c_while_the_command_line_loads_exits_130_without_a_traceback(monkeypatch):
    import builtins

    from nca_cli import launch

    real_import = builtins.__import__

    def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and name == "cli":  # `from .cli import main`: torch and the commands loading
            raise KeyboardInterrupt
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        launch.main()
    assert exit_info.value.code == 130


def test_sigterm_while_training_saves_a_resumable_state(tmp_path, disc_png):
    args = ["train", disc_png, "-o", "m.safetensors", "--no-plots", *TINY_ARGS, "--iterations", "100000",
            "--time-budget", "none", "--checkpoint-every", "1"]
    proc = start_nca(args, tmp_path)
    assert wait_for(lambda: (tmp_path / "m.ckpt.safetensors").exists(), timeout=120)  # into the iterations
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "resumable state" in stderr
    assert leftovers(tmp_path) == ["m.ckpt.safetensors", "m.safetensors"]
