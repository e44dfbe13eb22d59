import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nca_cli.formats.model_file import load_model
from nca_cli.cli import app
from nca_cli.growth.damage import apply_damage, circle_mask
from nca_cli.engine import NCA, rgba_loss, seed_state
from nca_cli.growth.quality import measure_quality

from .conftest import TINY_MODEL

SHARED = Path(__file__).resolve().parents[2] / "shared" / "distill-models"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def grown(model: NCA, steps=200, H=72, W=72, batch=1, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return model.rollout(seed_state(model.config, H, W, batch=batch), steps, generator=g)


@pytest.mark.parametrize("padding", ["zero", "wrap"])
def test_onnx_step_matches_the_engine(tmp_path, padding):
    ort = pytest.importorskip("onnxruntime")
    loaded = load_model("lizard")
    if padding == "wrap":
        loaded.model.config = type(loaded.model.config)(**{**loaded.model.config.to_dict(), "padding": "wrap"})
    out = tmp_path / "step.onnx"
    from nca_cli.export import export_model

    export_model(loaded, "onnx", out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for H, W, batch, degrees in [(72, 72, 1, 0.0), (40, 56, 3, 40.0)]:
        x = grown(loaded.model, 120, H, W, batch)
        fire = torch.rand(batch, H, W, generator=torch.Generator().manual_seed(5)) < 0.5
        with torch.no_grad():
            ours = loaded.model.step(x, fire=fire, angle=degrees)
        theirs = session.run(None, {"state": x.numpy(), "fire": fire.float().numpy(),
                                    "angle": np.array(math.radians(degrees), dtype=np.float32)})[0]
        assert theirs.shape == (batch, H, W, 16)
        assert np.abs(theirs - ours.numpy()).max() < 1e-5


def test_int8_and_distill_round_trips(tmp_path):
    loaded = load_model("lizard")
    for fmt, name in [("int8", "q.safetensors"), ("distill", "d.json")]:
        out = tmp_path / name
        result = invoke("export", "--format", fmt, "-o", out)
        assert result.exit_code == 0, result.output
        assert "before quantization" in result.output
        back = load_model(out)
        for (k, a), b in zip(loaded.model.state_dict().items(), back.model.state_dict().values()):
            scale = a.abs().max()
            assert (a - b).abs().max() <= scale / 100, k  # within the quantization step
        assert measure_quality(back.model, loaded.target, runs=2).grow_loss < 0.01
    assert load_model(tmp_path / "q.safetensors").target is not None  # int8 keeps the target
    assert json.loads((tmp_path / "d.json").read_text())[0]["in_ch"] == 48


def test_export_distill_then_import_reproduces_the_rollout(tmp_path):
    out = tmp_path / "d.json"
    assert invoke("export", "--format", "distill", "-o", out).exit_code == 0
    assert invoke("export", out, "--format", "distill", "-o", tmp_path / "d2.json").exit_code == 0
    first, second = load_model(out).model, load_model(tmp_path / "d2.json").model
    assert torch.equal(grown(first, 80), grown(second, 80))  # a fixed point: the same rollout, bit for bit
    original = grown(load_model("lizard").model, 80)
    assert rgba_loss(grown(first, 80), original[0, ..., :4]) < 0.001  # and close to the unquantized one


def published(name: str):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared folder beside the checkout)")
    return load_model(path)


def test_published_regenerating_lizard_grows_and_heals():
    loaded = published("ex3_🦎.json")
    assert loaded.target is None and loaded.model.config.padding == "wrap"
    x = grown(loaded.model, 300)
    alive = x[0, ..., 3] > 0.5
    assert 400 < alive.sum() < 1200  # about the size of a 40-pixel lizard (the Twemoji one: 558 cells above 0.5)
    colour = x[0][alive][:, :3].mean(0)
    assert colour[1] > colour[0] + 0.1 and colour[1] > colour[2] + 0.1  # green
    cut = circle_mask(72, 72, torch.tensor([36.0]), torch.tensor([36.0]), torch.tensor([8.0]))
    with torch.no_grad():
        healed = loaded.model.rollout(apply_damage(x, cut), 200, generator=torch.Generator().manual_seed(1))
    assert rgba_loss(apply_damage(x, cut), x[0, ..., :4]) > 0.005
    assert rgba_loss(healed, x[0, ..., :4]) < 0.001


def test_published_growing_only_lizard_is_less_stable():
    drift = []
    for name in ("ex1_🦎.json", "ex3_🦎.json"):
        model = published(name).model
        x = grown(model, 200)
        with torch.no_grad():
            later = model.rollout(x, 300, generator=torch.Generator().manual_seed(2))
        drift.append(float(rgba_loss(later, x[0, ..., :4])))
    assert drift[0] > 5 * drift[1], drift


def test_published_model_through_the_commands(tmp_path):
    published("ex3_🦎.json")
    model = SHARED / "ex3_🦎.json"
    result = invoke("grow", model, "--steps", "100", "--every", "100", "-o", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert "Loss against" not in result.output  # no stored target
    out = tmp_path / "ex3.safetensors"
    assert invoke("export", model, "--format", "safetensors", "-o", out).exit_code == 0
    a, b = load_model(model).model.state_dict(), load_model(out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_bad_input(tmp_path):
    tiny = tmp_path / "tiny.safetensors"
    from nca_cli.formats.model_file import save_model

    save_model(tiny, NCA(TINY_MODEL), None, {})
    cases = [
        (["export", tiny, "--format", "distill", "-o", tmp_path / "t.json"],
         "Error: the Distill demo runs models of 16 channels and 128 hidden units; this one has 8 and 16"),
        (["export", "--format", "onnx", "-o", tmp_path / "x.json"], f"Error: format onnx writes a .onnx file, got {tmp_path}/x.json"),
        (["export", "--format", "tflite", "-o", tmp_path / "x.tfl"],
         "Error: unknown format 'tflite': use one of onnx, web, distill, int8, safetensors"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"in_ch": 48}')
    cases.append((["grow", bad, "-o", tmp_path / "g.png"], f"Error: cannot read {bad}: not valid JSON"))
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps([{"in_ch": 2, "out_ch": 2, "weight_scale": 1, "bias_scale": 1, "data_b64": "AAAA"}] * 2))
    cases.append((["grow", layers, "-o", tmp_path / "g.png"],
                  f"Error: {layers}: layer 1 holds 3 bytes, expected (in_ch + 1) * out_ch = 6"))
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert result.output.strip().splitlines()[0].startswith(message), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "layers.json", "tiny.safetensors"]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
                  "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium on this machine: the web page was not tested in a browser "
                    "(.ci/run installs Debian's chromium)")
    return found


def run_page(page: Path, spec: str, profile: Path, mode: str = "test") -> dict:
    """Open the page in headless chromium with #MODE=SPEC and return what its test mode wrote."""
    import re
    import subprocess

    result = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                             f"{page.as_uri()}#{mode}={spec}"], capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="nca-test">([^<]*)</pre>', result.stdout)  # written by the page's test mode
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(found.group(1))


@pytest.mark.parametrize("engine, hash_suffix", [("WebGL2", ""), ("JavaScript (CPU)", "&js")])
def test_web_page_grows_and_heals_in_a_browser(tmp_path, engine, hash_suffix):
    chromium()
    page = tmp_path / "lizard.html"
    result = invoke("export", "--format", "web", "-o", page)
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch: it opens from disk
    # The page's own engine: grow 200 steps, cut a disc of radius 6 through the body, heal 60.
    found = run_page(page, "200,36,40,6,60" + hash_suffix, tmp_path / "profile")
    assert found["engine"] == engine and found["steps"] == 260
    assert found["grown"] < 0.01  # the bound the Python engine reaches (0.0034)
    assert found["wounded"] > found["grown"] + 0.002
    assert found["healed"] < found["wounded"] - 0.001


def test_web_page_of_a_model_without_target(tmp_path):
    chromium()
    published("ex3_🦎.json")
    page = tmp_path / "ex3.html"
    assert invoke("export", SHARED / "ex3_🦎.json", "--format", "web", "-o", page).exit_code == 0
    found = run_page(page, "50,36,36,5,10", tmp_path / "profile")
    assert found == {"grown": None, "wounded": None, "healed": None, "steps": 60, "engine": "WebGL2"}


@pytest.mark.parametrize("name", ["ex1_🦎.json", "ex2_🦎.json", "ex3_🦎.json", "ex3_planarian.json"])
def test_every_published_model_loads_and_grows(name):
    model = published(name).model
    assert (model.config.channels, model.config.hidden, model.config.padding) == (16, 128, "wrap")
    x = grown(model, 100, 64, 96)
    assert 200 < int((x[0, ..., 3] > 0.5).sum()) < 3000


def test_native_export_round_trip_reproduces_the_rollout(tmp_path):
    from nca_cli.export import export_model, exported_model

    loaded = load_model("lizard")
    for fmt, name in [("int8", "q.safetensors"), ("distill", "d.json")]:
        export_model(loaded, fmt, tmp_path / name)
        again = exported_model(loaded, fmt, tmp_path / name)
        assert again.config == loaded.model.config
        a, b = grown(loaded.model, 60), grown(again, 60)  # same seed: same fire masks
        assert (a - b).abs().mean() < 0.01, fmt
        assert rgba_loss(a, b[0, ..., :4]) < 0.001, fmt  # the pictures agree; single cells may differ


def test_web_page_of_a_large_world_reports_its_speed(tmp_path):
    chromium()
    page = tmp_path / "big.html"
    result = invoke("export", "--format", "web", "--grid", "256x256", "-o", page)
    assert result.exit_code == 0, result.output
    model = json.loads(page.read_text().split("const MODEL = ", 1)[1].split(";\n", 1)[0])
    assert (model["height"], model["width"]) == (256, 256) and model["target"] is None  # not the target's canvas
    found = run_page(page, "30", tmp_path / "profile", mode="bench")
    assert (found["height"], found["width"], found["steps"]) == (256, 256, 30) and found["steps_per_s"] > 0
    for args, message in [(["--format", "onnx", "--grid", "64x64", "-o", tmp_path / "m.onnx"],
                           "Error: --grid sets the world of a web page: use it with --format web"),
                          (["--format", "web", "--grid", "2000x2000", "-o", tmp_path / "m.html"],
                           "Error: the web page runs worlds of up to 1024 cells a side, got 2000x2000")]:
        result = invoke("export", *args)
        assert result.exit_code == 1 and result.output.strip() == message
