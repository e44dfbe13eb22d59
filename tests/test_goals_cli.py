"""Conditional models and several seeds through the command line: train on several targets or a
folder, grow a goal, switch and paint goals, start from seed cells, wound, turn and export."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.engine import rgba_loss, seed_state
from nca_cli.growth.goals import GoalPlan, steer
from nca_cli.formats.model_file import load_model

from .conftest import TINY_ARGS, disc_image

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures") / "shapes"
    folder.mkdir()
    Image.fromarray(disc_image(), "RGBA").save(folder / "disc.png")
    bar = np.zeros((12, 12, 4), dtype=np.uint8)
    bar[4:8, :] = (20, 60, 200, 255)
    Image.fromarray(bar, "RGBA").save(folder / "bar.png")
    return folder


@pytest.fixture(scope="module")
def duo(shapes, tmp_path_factory):
    """A tiny conditional model trained on a folder of two pictures, from one to two seed cells,
    written where the command names it: after the folder."""
    import os

    folder, before = tmp_path_factory.mktemp("duo"), os.getcwd()
    os.chdir(folder)
    try:
        result = invoke("train", shapes, "--seed-cells", "1-2", *TINY_ARGS)
    finally:
        os.chdir(before)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["shapes.loss.png", "shapes.preview.png", "shapes.safetensors"]
    return folder / "shapes.safetensors", result.output


def test_train_on_a_folder_makes_one_goal_per_picture(duo):
    out, output = duo
    loaded = load_model(out)
    assert loaded.model.config.goals == 2 and loaded.goals.names == ["bar.png", "disc.png"]
    t = loaded.training
    assert [g["goal"] for g in t["goals"]] == ["bar.png", "disc.png"] and np.isfinite(t["goals"][1]["regrow_loss"])
    assert [(s["from"], s["to"]) for s in t["switching"]] == [("bar.png", "disc.png"), ("disc.png", "bar.png")]
    assert [r["seeds"] for r in t["merging"][0]["by_seeds"]] == [1, 2, 3]
    assert t["seed_cells_min"] == 1 and t["seed_cells_max"] == 2 and t["switch_rate"] == 0.2
    assert "Each goal (losses)" in output and "Switching goals" in output and "Growth from several seeds" in output
    assert Image.open(out.with_name("shapes.preview.png")).size[0] > 4 * 4 * 20  # two goals, two panels each


def test_train_names_its_output_after_the_targets(tmp_path, shapes):
    from nca_cli.cli.train import default_output
    from nca_cli.targets import load_goals, load_target

    disc = str(shapes / "disc.png")
    assert default_output([disc, "🦎"], load_goals([disc, "🦎"], 12, 4)) == Path("disc-🦎.safetensors")
    assert default_output([str(shapes)], load_goals([str(shapes)], 12, 4)) == Path("shapes.safetensors")
    assert default_output(["🦎"], load_target("🦎", 12, 4)) == Path("🦎.safetensors")


def test_grow_a_goal_by_name_or_number(duo, tmp_path):
    out, _ = duo
    loaded = load_model(out)
    for spec in ("disc", "disc.png", "1"):
        result = invoke("grow", out, "--target", spec, "--steps", "12", "-o", tmp_path / "g.npy")
        assert result.exit_code == 0, result.output
        states = np.load(tmp_path / "g.npy")
        loss = float(rgba_loss(torch.from_numpy(states[-1:]), loaded.goals.rgba[1]))
        assert f"Loss against the target (disc.png): {loss:.5f}" in result.output
    result = invoke("grow", out, "--steps", "12", "-o", tmp_path / "first.npy")  # the first goal by default
    assert "(bar.png)" in result.output


def test_grow_switches_goals_and_says_when_the_new_one_took_hold(duo, tmp_path):
    out, _ = duo
    result = invoke("grow", out, "--target", "bar", "--switch", "6:disc", "--steps", "10", "-o", tmp_path / "m.gif")
    assert result.exit_code == 0, result.output
    assert iio.imread(tmp_path / "m.gif", index=None).shape[0] == 11
    assert "Loss against the target (disc.png)" in result.output
    assert "Switched to disc.png at step 6: the loss against it did not fall below 0.01" in result.output
    # The same run through the library: the switch is the goal plan's.
    loaded = load_model(out)
    with torch.no_grad():
        grown = steer(loaded.model, GoalPlan(0, ((6, 1),))).rollout(seed_state(loaded.model.config, 20, 20), 10,
                                                                   generator=torch.Generator().manual_seed(0))
    result = invoke("grow", out, "--target", "bar", "--switch", "6:disc", "--steps", "10", "-o", tmp_path / "m.npy")
    assert np.allclose(np.load(tmp_path / "m.npy")[-1], grown[0].numpy(), atol=1e-6)


def test_grow_paints_a_goal_on_half_of_the_grid(duo, tmp_path):
    out, _ = duo
    plain = invoke("grow", out, "--steps", "12", "-o", tmp_path / "p.npy")
    painted = invoke("grow", out, "--paint", "right:disc", "--steps", "12", "-o", tmp_path / "q.npy")
    assert plain.exit_code == 0 and painted.exit_code == 0, painted.output
    a, b = np.load(tmp_path / "p.npy")[-1], np.load(tmp_path / "q.npy")[-1]
    assert not np.allclose(a, b)


def test_grow_from_seed_cells_where_they_are_put_or_at_random(duo, tmp_path):
    out, _ = duo
    result = invoke("grow", out, "--seed-at", "5,6", "--seed-at", "12,14", "--steps", "0", "-o", tmp_path / "s.npy")
    assert result.exit_code == 0, result.output
    start = np.load(tmp_path / "s.npy")[0]
    assert sorted(map(tuple, np.argwhere(start[..., 3] == 1).tolist())) == [(5, 6), (12, 14)]
    assert "Where the body fits the target best (the target moved by" in result.output
    result = invoke("grow", out, "--seed-cells", "3", "--seed", "4", "--steps", "0", "-o", tmp_path / "r.npy")
    assert result.exit_code == 0, result.output
    start = np.load(tmp_path / "r.npy")[0]
    alpha = load_model(out).target.rgba[..., 3].numpy()
    cells = np.argwhere(start[..., 3] == 1)
    assert len(cells) == 3 and all(alpha[r, c] > 0.5 for r, c in cells)
    again = invoke("grow", out, "--seed-cells", "3", "--seed", "4", "--steps", "0", "-o", tmp_path / "r2.npy")
    assert again.exit_code == 0 and np.array_equal(np.load(tmp_path / "r2.npy"), np.load(tmp_path / "r.npy"))



def test_seed_cells_on_a_larger_world_go_anywhere_on_it(duo, tmp_path):
    out, _ = duo
    result = invoke("grow", out, "--grid", "40x50", "--seed-cells", "300", "--steps", "0", "-o", tmp_path / "w.npy")
    assert result.exit_code == 0, result.output
    start = np.load(tmp_path / "w.npy")[0]
    cells = np.argwhere(start[..., 3] == 1)
    assert start.shape[:2] == (40, 50) and len(cells) == 300  # distinct cells
    rows, cols = cells[:, 0], cells[:, 1]
    assert rows.min() < 10 and rows.max() >= 30 and cols.min() < 10 and cols.max() >= 40  # spread over the world
    result = invoke("grow", out, "--grid", "10x10", "--seed-cells", "101", "--steps", "0", "-o", tmp_path / "x.npy")
    assert result.exit_code == 1 and result.stderr.strip() == "Error: the grid has 100 cells, too few for 101 seeds"
    assert not (tmp_path / "x.npy").exists()

def test_damage_and_rotate_take_a_goal(duo, tmp_path):
    out, _ = duo
    result = invoke("damage", out, "--target", "disc", "--at", "5", "--steps", "10", "--radius", "3", "-o",
                    tmp_path / "d.png")
    assert result.exit_code == 0, result.output
    assert "Recovery (RGBA loss against the target)" in result.output
    result = invoke("damage", out, "--target", "1", "--sweep", "--radii", "3", "--spacing", "8", "--seeds", "1",
                    "--recover-steps", "5", "--json", tmp_path / "s.json", "--plot", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["trials"] or "no opaque cells" in result.output
    result = invoke("rotate", out, "--target", "bar", "--theta", "0,90", "--steps", "6", "-o", tmp_path / "r.png")
    assert result.exit_code == 0, result.output


def test_export_a_conditional_model(duo, tmp_path):
    out, _ = duo
    page = tmp_path / "duo.html"
    assert invoke("export", out, "--format", "web", "-o", page).exit_code == 0
    text = page.read_text()
    model = json.loads(text.split("const MODEL = ", 1)[1].split(";\n", 1)[0])
    assert model["goal_names"] == ["bar.png", "disc.png"] and len(model["goal_layers"]) == 2
    assert all(t is not None for t in model["goal_targets"]) and 'id="goal"' in text
    wide = tmp_path / "wide.html"  # on a larger world: the goals keep their names, the targets (and losses) stay out
    assert invoke("export", out, "--format", "web", "--grid", "40x40", "-o", wide).exit_code == 0
    model = json.loads(wide.read_text().split("const MODEL = ", 1)[1].split(";\n", 1)[0])
    assert model["goal_names"] == ["bar.png", "disc.png"] and model["goal_targets"] == [None, None]
    assert "<title>nca: bar.png, disc.png</title>" in wide.read_text()
    int8 = tmp_path / "q.safetensors"
    assert invoke("export", out, "--format", "int8", "-o", int8).exit_code == 0
    assert load_model(int8).goals.names == ["bar.png", "disc.png"]


@pytest.mark.parametrize("args, message", [
    (["--target", "🐙"], "Error: no goal '🐙' in this model; its goals are 0 bar.png, 1 disc.png"),
    (["--switch", "40:disc", "--steps", "30"], "Error: --switch at step 40 is past the run's 30 steps"),
    (["--switch", "disc"], "Error: invalid --switch 'disc': expected STEP:GOAL, e.g. 250:1"),
    (["--switch", "10:disc", "--switch", "10:bar"], "Error: --switch is given twice at step 10: one goal per step"),
    (["--switch", "5:🐙"], "Error: no goal '🐙' in this model; its goals are 0 bar.png, 1 disc.png"),
    (["--paint", "middle:disc"], "Error: invalid --paint 'middle:disc': expected REGION:GOAL, REGION one of left, "
                                 "right, top, bottom"),
    (["--seed-at", "30,3"], "Error: seed position 30,3 is off the 20x20 grid"),
    (["--seed-at", "3"], "Error: invalid --seed-at '3': expected ROW,COL in cells, e.g. 30,30"),
    (["--seed-cells", "0"], "Error: --seed-cells must be from 1 to 100,000, got 0"),
    (["--seed-at", "3,3", "--seed-cells", "2"],
     "Error: give seed cells either where (--seed-at) or how many at random (--seed-cells), not both"),
])
def test_bad_goal_and_seed_options(duo, tmp_path, args, message):
    out, _ = duo
    result = invoke("grow", out, *args, "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and result.output.strip() == message
    assert list(tmp_path.iterdir()) == []


NO_OCTOPUS = "Error: no goal '🐙' in this model; its goals are 0 bar.png, 1 disc.png"


@pytest.mark.parametrize("args, message", [
    (["grow", "--target", "2"], "Error: no goal '2' in this model; its goals are 0 bar.png, 1 disc.png"),
    (["grow", "--seed-at=-1,3"], "Error: seed position -1,3 is off the 20x20 grid"),
    (["grow", "--switch", "0:bar", "--switch", "30:disc", "--steps", "30"],
     "Error: --switch at step 30 is past the run's 30 steps"),
    (["damage", "--target", "🐙"], NO_OCTOPUS),
    (["damage", "--sweep", "--target", "🐙"], NO_OCTOPUS),
    (["rotate", "--target", "🐙"], NO_OCTOPUS),
])
def test_every_command_names_the_goals_of_the_model(duo, tmp_path, args, message):
    out, _ = duo
    result = invoke(args[0], out, *args[1:], *([] if "--sweep" in args else ["-o", tmp_path / "x.png"]))
    assert result.exit_code == 1 and result.output.strip() == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["grow"], ["damage"], ["rotate"], ["grow", "--switch", "5:1"],
                                     ["grow", "--paint", "left:1"]])
def test_a_goal_on_a_model_that_is_not_conditional(tmp_path, command):
    option = command[1] if len(command) > 1 else "--target"
    args = command if len(command) > 1 else command + ["--target", "1"]
    result = invoke(args[0], "lizard", *args[1:], "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {option} needs a conditional model (one trained on several targets); "
                                     "lizard.safetensors grows one target")


def test_train_refuses_bad_seed_cells_and_changed_goal_options(tmp_path, shapes):
    result = invoke("train", shapes, "--seed-cells", "3-1", "-o", tmp_path / "m.safetensors", *TINY_ARGS)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --seed-cells must be N or A-B seed cells from 1 to 16, e.g. 1-3; got '3-1'"
    result = invoke("train", shapes, "--switch-rate", "1.5", "-o", tmp_path / "m.safetensors", *TINY_ARGS)
    assert result.output.strip() == "Error: --switch-rate must be between 0 and 1, got 1.5"
    for option, value in (("--switch-rate", "0.5"), ("--conditioning", "film")):
        result = invoke("train", "🦎", option, value, "-o", tmp_path / "m.safetensors", *TINY_ARGS)
        assert result.output.strip() == f"Error: {option} is for several targets (one rule, many goals); this run trains one"
    assert list(tmp_path.iterdir()) == []


def synchronous_conditional(tmp_path, conditioning: str):
    """A random conditional model (every cell fires every step, so runs are deterministic) saved
    with two goals' targets: (path, model, goals)."""
    from nca_cli.engine import NCA, NCAConfig
    from nca_cli.formats.model_file import save_model
    from nca_cli.targets import load_goals

    torch.manual_seed(5)
    model = NCA(NCAConfig(channels=8, hidden=16, goals=2, fire_rate=1.0, conditioning=conditioning))
    torch.nn.init.normal_(model.w2.weight, std=0.05)
    torch.nn.init.normal_(model.goal_embedding.weight, std=0.3)
    goals = load_goals(["🦎", "🦋"], size=12, pad=4)
    path = tmp_path / f"{conditioning}.safetensors"
    save_model(path, model, goals, {})
    return path, model, goals


@pytest.mark.parametrize("conditioning", ["hidden", "film"])
def test_onnx_step_of_a_conditional_model_takes_a_goal_map(tmp_path, conditioning):
    import onnxruntime as ort

    path, model, _ = synchronous_conditional(tmp_path, conditioning)
    assert invoke("export", path, "--format", "onnx", "-o", tmp_path / "m.onnx").exit_code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert [i.name for i in session.get_inputs()] == ["state", "fire", "angle", "goal"]
    goal = torch.zeros(2, 20, 20, dtype=torch.long)
    goal[0, :, 10:] = 1  # painted: the right half senses goal 1
    goal[1] = 1
    x = seed_state(model.config, 20, 20, batch=2)
    with torch.no_grad():
        for _ in range(6):
            fire = torch.rand(2, 20, 20) < 0.7
            ours = model.step(x, fire=fire, goal=goal)
            theirs = session.run(None, {"state": x.numpy(), "fire": fire.float().numpy(),
                                        "angle": np.array(0, np.float32), "goal": goal.numpy()})[0]
            assert np.allclose(theirs, ours.numpy(), atol=1e-5)
            x = ours
    assert float(x[..., 3].sum()) > 1  # it grew: the steps compared were not all empty


@pytest.mark.parametrize("engine, suffix", [("WebGL2", ""), ("JavaScript (CPU)", "&js")])
def test_the_web_page_switches_goals_as_the_engine_does(tmp_path, engine, suffix):
    path, model, goals = synchronous_conditional(tmp_path, "film")
    page = tmp_path / "goals.html"
    assert invoke("export", path, "--format", "web", "-o", page).exit_code == 0
    found = run_switch_page(page, "1,5,0,4" + suffix, tmp_path / "profile")
    assert found["engine"] == engine and found["steps"] == 9
    x = seed_state(model.config, 20, 20)
    with torch.no_grad():
        for k in range(9):
            x = model.step(x, goal=torch.tensor([1 if k < 5 else 0]))
            if k == 4:
                grown = float(rgba_loss(x, goals.rgba[1])[0])
                at_switch = float(rgba_loss(x, goals.rgba[0])[0])
    assert found["grown"] == pytest.approx(grown, rel=1e-3)
    assert found["at_switch"] == pytest.approx(at_switch, rel=1e-3)
    assert found["switched"] == pytest.approx(float(rgba_loss(x, goals.rgba[0])[0]), rel=1e-3)


def run_switch_page(page, spec: str, profile) -> dict:
    """The page's goal-switch test mode (#switch=GOAL,STEPS,GOAL2,STEPS2) in headless Chromium."""
    import re
    import subprocess

    from .test_export import CHROMIUM_FLAGS, chromium

    result = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                             f"{page.as_uri()}#switch={spec}"], capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="nca-test">([^<]*)</pre>', result.stdout)
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(found.group(1))
