"""`nca rule` end to end: learn, show, run, export, through the command line, and the bad inputs."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.engine import NCA, NCAConfig
from nca_cli.formats.model_file import load_model, save_model
from nca_cli.rules.neighbourhoods import decode
from nca_cli.rules.notation import parse_rule
from nca_cli.rules.rle import format_rle, read_rle
from nca_cli.rules.running import run as run_rule
from nca_cli.rules.learned import predict
from nca_cli.rules.saved import open_learned
from nca_cli.rules.simulate import run as simulate

from .golly_run import needs_bgolly, run_bgolly

runner = CliRunner()
SMALL = ["--soups", "4", "--size", "32", "--steps", "4"]
GLIDER = "#N Glider\nx = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    path = tmp_path_factory.mktemp("life") / "life.safetensors"
    result = invoke("rule", "learn", "B3/S23", "-o", path, *SMALL)
    assert result.exit_code == 0, result.output
    return path, result.output


def test_learn_reports_and_writes_a_rule_model(life):
    path, output = life
    lines = output.strip().splitlines()
    assert lines[0] == ("Simulated B3/S23 (life) from random soups: 4 runs of 5 states on 32x32 (wrap edges), "
                        "16,384 transitions, 512 distinct neighbourhoods")
    assert lines[1].startswith("Learned in ") and "exact on every observed neighbourhood" in lines[1]
    assert lines[2:] == ["Read back over all 512 neighbourhoods: B3/S23 (life)",
                         "Agreement with B3/S23 (life): 512/512 neighbourhoods", f"Wrote {path}"]
    loaded = load_model(path)
    config = loaded.model.config
    assert loaded.kind == "rule" and loaded.target is None
    assert (config.perception, config.learned_bands, config.alive_masking, config.fire_rate, config.channels) == (
        "learned", 9, False, 1.0, 2)
    task = loaded.task
    assert (task["family"], task["states"], task["encoding"], task["source"], task["padding"], task["readback"]) == (
        "B/S", 2, "one-hot", "B3/S23", "wrap", "B3/S23")
    assert task["learned_from"] == "soups" and task["data"]["transitions"] == 16384
    assert loaded.training["exact_on_data"] is True and loaded.training["recipe"]["bands"] == 9


def test_show_reads_back_compares_and_fits_families(life):
    path, _ = life
    result = invoke("rule", "show", path, "--against", "B36/S23")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[:4] == [f"{path}: a rule of 2 states learned from soups of B3/S23 (wrap edges)",
                         "Read back over all 512 neighbourhoods: B3/S23 (life)",
                         "Agreement with B36/S23 (highlife): 484/512 neighbourhoods",
                         "  B6 (28): the learned rule gives 0, B36/S23 gives 1"]
    assert "  B/S                          0  B3/S23" in lines and "  Hensel                       0  B3/S23" in lines
    assert "Every one of the 512 neighbourhoods was observed in the data: none is unconstrained" in lines


def test_run_a_pattern_against_the_hand_written_rule(life, tmp_path):
    path, _ = life
    (tmp_path / "glider.rle").write_text(GLIDER)
    gif, final = tmp_path / "glider.gif", tmp_path / "glider.rle"
    result = invoke("rule", "run", path, "--pattern", tmp_path / "glider.rle", "--steps", "20", "--grid", "16x16",
                    "--every", "5", "--against", "life", "-o", gif)
    assert result.exit_code == 0, result.output
    assert "Identical to B3/S23 (life) at every one of the 20 steps" in result.output
    with Image.open(gif) as image:
        assert image.n_frames == 5 and image.size == (256, 256)  # 16 cells x 16 px
    assert invoke("rule", "run", path, "--pattern", tmp_path / "glider.rle", "--steps", "8", "--grid", "16x16",
                  "-o", final).exit_code == 0
    written = read_rle(final.read_text())
    start = np.zeros((1, 16, 16), np.uint8)
    start[0, 6:9, 6:9] = read_rle(GLIDER).cells
    assert np.array_equal(written.cells, simulate(parse_rule("life"), start, 8, "wrap")[0])
    assert written.rule.notation == "B3/S23" and (written.grid, written.padding) == ((16, 16), "wrap")


def test_run_hand_written_soups_to_integer_states_and_find_where_rules_part(tmp_path):
    runs = tmp_path / "runs.npy"
    result = invoke("rule", "run", "--rule", "B36/S23", "--runs", "3", "--grid", "24x20", "--steps", "30",
                    "--every", "10", "--seed", "2", "--against", "B3/S23", "-o", runs)
    assert result.exit_code == 0, result.output
    states = np.load(runs)
    assert states.shape == (3, 4, 24, 20) and states.dtype == np.uint8
    highlife, life = parse_rule("B36/S23"), parse_rule("B3/S23")
    assert np.array_equal(states[:, -1], simulate(highlife, states[:, 0], 30, "wrap"))
    a, b, step = states[:, 0], states[:, 0], 0
    while np.array_equal(a, b):
        a, b, step = simulate(highlife, a, 1, "wrap"), simulate(life, b, 1, "wrap"), step + 1
    assert f"Differs from B3/S23 (life) from step {step} on ({int((a != b).sum())} cells then)" in result.output


def test_learn_from_observed_runs_recovers_an_unnamed_rule(tmp_path):
    """20 runs of 64 steps of a Hensel rule, as data: learned and read back exactly."""
    runs = tmp_path / "runs.npy"
    assert invoke("rule", "run", "--rule", "B2-a/S12", "--runs", "20", "--steps", "63", "--grid", "32x32",
                  "--seed", "4", "-o", runs).exit_code == 0
    assert np.load(runs).shape == (20, 64, 32, 32)
    model = tmp_path / "unknown.safetensors"
    result = invoke("rule", "learn", "--from", runs, "-o", model)
    assert result.exit_code == 0, result.output
    assert "Read back over all 512 neighbourhoods: B2-a/S12" in result.output
    shown = invoke("rule", "show", model, "--against", "B2-a/S12")
    assert "Agreement with B2-a/S12: 512/512 neighbourhoods" in shown.output
    assert load_model(model).task["family"] == "Hensel"


def test_show_lists_the_transitions_the_data_leave_open(tmp_path):
    glider = np.zeros((1, 16, 16), np.uint8)
    glider[0, 1:4, 1:4] = read_rle(GLIDER).cells
    runs = tmp_path / "glider.npy"
    np.save(runs, np.stack([simulate(parse_rule("life"), glider, k, "wrap")[0] for k in range(33)]))
    model = tmp_path / "glider.safetensors"
    result = invoke("rule", "learn", "--from", runs, "-o", model)
    assert result.exit_code == 0, result.output
    learned, task, _ = open_learned(str(model))
    unseen = 512 - len(task.seen)
    assert f"{unseen:,} neighbourhoods never observed: unconstrained by the data" in result.output
    shown = invoke("rule", "show", model).output.splitlines()
    header = next(i for i, line in enumerate(shown) if line.startswith("Unconstrained by the data"))
    assert shown[header].startswith(f"Unconstrained by the data: {unseen} of 512 neighbourhoods were never observed")
    counts = [int(line.split("(")[1].split(")")[0]) for line in shown[header + 1:] if line.startswith("  ")]
    assert sum(counts) == unseen
    later = run_rule(learned, glider, 32, "wrap")  # the data it saw, reproduced
    assert np.array_equal(later, simulate(parse_rule("life"), glider, 32, "wrap"))


def test_export_notation_and_golly_rule_file(life, tmp_path):
    path, _ = life
    result = invoke("rule", "export", path, "--format", "notation")
    assert result.exit_code == 0 and result.output.strip() == "B3/S23"
    rule_file = tmp_path / "Learned.rule"
    result = invoke("rule", "export", path, "--format", "golly", "-o", rule_file)
    assert result.exit_code == 0, result.output
    text = rule_file.read_text()
    assert text.startswith("@RULE Learned\n") and "symmetries:permute" in text and "n_states:2" in text
    wrong = invoke("rule", "export", path, "--format", "golly", "-o", tmp_path / "Learned.txt")
    assert wrong.exit_code == 1 and wrong.output == (
        f"Error: --format golly needs -o Name.rule (Golly finds a rule by its file name), got {tmp_path / 'Learned.txt'}\n")
    # One pattern for Golly and nca: its header names the exported rule file, with a torus.
    (tmp_path / "glider.rle").write_text("x = 3, y = 3, rule = Learned:T16,16\nbo$2bo$3o!\n")
    ran = invoke("rule", "run", path, "--pattern", tmp_path / "glider.rle", "--steps", "8", "-o", tmp_path / "ours.npy")
    assert ran.exit_code == 0, ran.output
    written = invoke("rule", "run", "--rule", "life", "--pattern", tmp_path / "glider.rle", "--steps", "8",
                     "-o", tmp_path / "life.npy")
    assert written.exit_code == 0 and np.load(tmp_path / "ours.npy").shape == (9, 16, 16)
    assert np.array_equal(np.load(tmp_path / "ours.npy"), np.load(tmp_path / "life.npy"))


@needs_bgolly
def test_bgolly_runs_the_exported_rule_as_the_learned_model(life, tmp_path):
    """The exported .rule loaded by Golly's bgolly, run on a soup on a torus: cell for cell the same
    as the learned model run by the engine."""
    path, _ = life
    assert invoke("rule", "export", path, "--format", "golly", "-o", tmp_path / "Learned.rule").exit_code == 0
    learned, _, _ = open_learned(str(path))
    soup = np.random.default_rng(8).integers(0, 2, (1, 40, 40)).astype(np.uint8)
    ours = run_rule(learned, soup, 60, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], "Learned", 60, tmp_path, 2, "RuleLoader", tmp_path), ours)
    assert ours.any()


@needs_bgolly
def test_wireworld_learned_from_a_few_soups_exports_to_golly(tmp_path):
    model = tmp_path / "wire.safetensors"
    result = invoke("rule", "learn", "wireworld", "-o", model, "--soups", "8", "--size", "32", "--steps", "6")
    assert result.exit_code == 0, result.output
    assert "Read back over all 262,144 neighbourhoods:" in result.output
    learned, task, _ = open_learned(str(model))
    assert invoke("rule", "export", model, "--format", "golly", "-o", tmp_path / "Wire.rule").exit_code == 0
    soup = np.random.default_rng(3).integers(0, 4, (1, 24, 24)).astype(np.uint8)
    ours = run_rule(learned, soup, 30, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], "Wire", 30, tmp_path, 4, "RuleLoader", tmp_path), ours)
    seen = np.isin(np.arange(4 ** 9), task.seen)
    predicted, _ = predict(learned, np.arange(4 ** 9)[seen])
    assert np.array_equal(predicted, parse_rule("wireworld").next_state(decode(np.arange(4 ** 9)[seen], 4)))


def image_model(path):
    save_model(path, NCA(NCAConfig(channels=8, hidden=8)), None, {}, kind="image")


@pytest.mark.parametrize("args, message", [
    (["rule", "learn", "B9/S23", "-o", "x.safetensors"],
     "Error: invalid rule 'B9/S23': expected B/S notation (B3/S23), Generations (B2/S/C3 or Golly's /2/3), Hensel "
     "notation (B2-a/S12) or a named rule (life, highlife, seeds, daynight, brians-brain, star-wars, replicator, "
     "maze, life-without-death, wireworld)"),
    (["rule", "learn", "-o", "x.safetensors"], "Error: give a rule to learn (e.g. B3/S23), or --from with observed runs"),
    (["rule", "learn", "life", "--from", "four.npy", "-o", "x.safetensors"],
     "Error: give either a rule to learn (e.g. B3/S23) or --from with observed runs, not both"),
    (["rule", "learn", "life", "--states", "3", "-o", "x.safetensors"],
     "Error: --states is for runs read with --from; a hand-written rule has its own number of states"),
    (["rule", "learn", "life", "--time-budget", "0s", "-o", "x.safetensors"],
     "Error: duration must be positive, got '0s'"),
    (["rule", "run", "--steps", "5"], "Error: give a learned rule's model file, or --rule with a hand-written rule"),
    (["rule", "run", "--rule", "life", "--scale", "-1", "-o", "r.png"], "Error: --scale must be between 1 and 8192, got -1"),
    (["rule", "run", "--rule", "life", "--fps", "0", "-o", "r.gif"],
     "Error: --fps must be a number above 0 and at most 240, got 0.0"),
    (["rule", "learn", "life", "-o", "x.pt"], "Error: output must be a .safetensors file, got x.pt"),
    (["rule", "learn", "life", "-o", "x.safetensors", "--padding", "klein"],
     "Error: --padding must be wrap (a torus) or zero (a bounded grid), got 'klein'"),
    (["rule", "learn", "--from", "floats.npy", "-o", "x.safetensors"],
     "Error: floats.npy holds float32 values; runs are integer states, (T, H, W) or (N, T, H, W)"),
    (["rule", "learn", "--from", "four.npy", "--states", "2", "-o", "x.safetensors"],
     "Error: four.npy holds states up to 3, more than the 2 states (0..1) of the rule"),
    (["rule", "run", "--rule", "life", "--pattern", "bad.rle"], "Error: bad.rle: malformed run-length data at '0o!'"),
    (["rule", "run", "--rule", "life", "--pattern", "wire.rle"],
     "Error: the pattern has cells in state 3; the rule has 2 states (0..1)"),
    (["rule", "run", "--rule", "life", "-o", "out.avi"],
     "Error: unsupported output out.avi: use one of .gif, .mp4, .png, .npy, .rle"),
    (["rule", "show", "image.safetensors"],
     "Error: image.safetensors holds an image model; reading a rule back needs a rule model"),
    (["rule", "export", "image.safetensors", "-o", "X.rule"],
     "Error: image.safetensors holds an image model; exporting a learned rule needs a rule model"),
])
def test_bad_input_gives_one_error_line(tmp_path, args, message):
    np.save("floats.npy", np.zeros((3, 4, 4), np.float32))
    np.save("four.npy", np.full((3, 4, 4), 3, np.uint8))
    (tmp_path / "bad.rle").write_text("x = 3, y = 3, rule = B3/S23\nb2o$0o!\n")
    (tmp_path / "wire.rle").write_text(format_rle(np.array([[1, 2, 3]], np.uint8), "wireworld", states=4))
    image_model(tmp_path / "image.safetensors")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_ctrl_c_keeps_the_rule_learned_so_far(tmp_path, monkeypatch):
    import contextlib
    import signal

    import nca_cli.cli.rule as rule_cli
    from nca_cli.cli.console import StopRequest

    @contextlib.contextmanager
    def stop_at_once():
        request = StopRequest()
        request.signal = signal.SIGINT
        yield request

    monkeypatch.setattr(rule_cli, "stop_on_ctrl_c", stop_at_once)
    model = tmp_path / "early.safetensors"
    result = invoke("rule", "learn", "life", "-o", model, *SMALL)
    assert result.exit_code == 130
    assert f"Interrupted: {model} holds the rule learned so far" in result.output
    assert load_model(model).training["iterations"] == 25  # stopped at the first check
