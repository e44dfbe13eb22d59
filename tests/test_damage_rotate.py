import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nca_cli.formats.model_file import load_model
from nca_cli.cli import app
from nca_cli.growth.damage import Wound, living_box, parse_position
from nca_cli.errors import NCAError
from nca_cli.growth.recovery import recovery_from_losses, sweep
from nca_cli.growth.rotation import rotate_image

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def pattern(H=20, W=30) -> torch.Tensor:
    """A solid opaque rectangle, rows 5..14, columns 10..19, in a (1, H, W, 8) state."""
    x = torch.zeros(1, H, W, 8)
    x[0, 5:15, 10:20, 3:] = 1.0
    return x


def test_circle_on_the_body_by_default_and_by_position():
    x = pattern()
    mask = Wound(shape="circle", radius=3).masks(x)[0]
    assert mask.shape == (20, 30) and mask[9, 14] and mask.sum() == 25  # radius-3 disc on the body centre
    mask = Wound(shape="circle", radius=1, position=parse_position("2,3")).masks(x)[0]
    assert mask.nonzero().tolist() == [[2, 3]]
    mask = Wound(shape="circle", radius=1, position=parse_position("0%,100%")).masks(x)[0]
    assert mask.nonzero().tolist() == [[5, 19]]  # the top right corner of the living box


def test_rect_half_noise_and_mask_shapes():
    x = pattern()
    rect = Wound(shape="rect", size=(3, 5), position=parse_position("10,15")).masks(x)[0]
    assert rect.sum() == 15 and rect[9:12, 13:18].all()
    left = Wound(shape="half", side="left").masks(x)[0]
    assert left[:, :14].all() and not left[:, 15:].any()
    top = Wound(shape="half", side="top").masks(x)[0]
    assert top[:9].all() and not top[10:].any()
    noise = Wound(shape="noise", fraction=0.25).masks(x.repeat(4, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    assert noise.shape == (4, 20, 30) and 0.2 < noise.float().mean() < 0.3
    picture = torch.zeros(20, 30, dtype=torch.bool)
    picture[0, 0] = True
    assert torch.equal(Wound(shape="mask", mask=picture).masks(x)[0], picture)
    with pytest.raises(NCAError, match="the mask is 20x30 but the grid is 10x10"):
        Wound(shape="mask", mask=picture).masks(torch.zeros(1, 10, 10, 8))


@pytest.mark.parametrize("kwargs, message", [
    ({"shape": "star"}, "unknown shape 'star': use one of circle, sphere, rect, half, noise, mask"),
    ({"radius": -1}, "radius must not be negative, got -1"),
    ({"side": "middle"}, "unknown side 'middle': use one of left, right, top, bottom, front, back"),
    ({"fraction": 2}, "noise fraction must be between 0 and 1, got 2"),
    ({"shape": "mask"}, "shape mask needs a mask picture"),  # the library names values, not flags
])
def test_bad_wounds(kwargs, message):
    with pytest.raises(NCAError) as exc:
        Wound(**kwargs)
    assert str(exc.value) == message


def test_positions():
    with pytest.raises(NCAError, match="invalid position 'x,3'"):
        parse_position("x,3")
    with pytest.raises(NCAError, match="position 50,3 is off the 20x30 grid"):
        Wound(position=parse_position("50,3")).masks(pattern())
    assert living_box(pattern()[0]) == (5, 10, 14, 19)


def test_recovery_step_is_the_first_back_within_tolerance():
    r = recovery_from_losses(100, [0.05, 0.03, 0.011, 0.02, 0.012], before=0.01, after=0.06, tolerance=0.002)
    assert (r.recovered_at, r.final) == (103, 0.012)
    assert recovery_from_losses(100, [0.05, 0.04], 0.01, 0.06, 0.002).recovered_at is None
    # A pattern that died is never recovered, however near its empty grid's loss is to the one before.
    dead = recovery_from_losses(5, [0.0374, 0.0374], before=0.0369, after=0.0374, tolerance=0.002, alive=[False, False])
    assert dead.recovered_at is None and dead.died
    later = recovery_from_losses(5, [0.0374, 0.0360], 0.0369, 0.0374, 0.002, alive=[False, True])
    assert later.recovered_at == 7 and not later.died


def test_damage_that_kills_a_young_pattern_reports_no_recovery(tmp_path):
    start = tmp_path / "young.npy"
    assert invoke("grow", "--steps", "10", "-o", start).exit_code == 0
    result = invoke("damage", "--from", start, "--at", "5", "--radius", "40", "--steps", "10", "-o", tmp_path / "d.png")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ 5 "))
    assert "never: it died" in row


def test_rotate_image_turns_counter_clockwise_about_the_centre():
    image = torch.zeros(9, 9, 1)
    image[4, 7, 0] = 1.0  # right of the centre
    turned = rotate_image(image, 90, (4, 4))
    assert turned[1, 4, 0] == pytest.approx(1.0)  # now above it
    assert turned.sum() == pytest.approx(1.0)
    assert torch.equal(rotate_image(image, 0, (4, 4)), image)


def recovery_row(output: str, step: int) -> list[str]:
    row = next(line for line in output.splitlines() if line.strip().startswith(f"│ {step} "))
    return [c.strip() for c in row.strip("│ ").split("│")]


def test_bundled_lizard_heals_a_cut_and_the_growing_only_one_does_not(tmp_path):
    result = invoke("damage", "--at", "150", "--radius", "6", "--steps", "250", "--every", "50", "-o", "heal.png")
    assert result.exit_code == 0, result.output
    cells = recovery_row(result.output, 150)
    before, after = float(cells[1]), float(cells[2])
    assert after > before + 0.001 and cells[4].startswith("at step")
    # wounded at the end of its training horizon, when it is closest to the target
    result = invoke("damage", "lizard-grow", "--at", "80", "--radius", "6", "--steps", "200", "-o", "grow.png")
    assert result.exit_code == 0, result.output
    assert recovery_row(result.output, 80)[4] == "never"


def test_damage_video_marks_the_wound(tmp_path):
    out = tmp_path / "heal.npy"
    result = invoke("damage", "--at", "100", "--at", "120", "--shape", "half", "--side", "right", "--steps", "130",
                    "--every", "10", "-o", out)
    assert result.exit_code == 0, result.output
    states = np.load(out)
    assert states.shape == (14, 72, 72, 16)
    alive_right = (states[..., 36:, 3] > 0.1).sum(axis=(1, 2))
    assert alive_right[10] > 50 and alive_right[11] < alive_right[10] / 2  # the right half was cut at 100
    gif = tmp_path / "heal.gif"
    assert invoke("damage", "--at", "100", "--steps", "104", "--every", "2", "-o", gif).exit_code == 0
    with Image.open(gif) as im:
        im.seek(51)  # step 102: the wound's outline is drawn in red
        red = np.asarray(im.convert("RGB")).reshape(-1, 3)
        assert ((red[:, 0] > 200) & (red[:, 1] < 80) & (red[:, 2] < 80)).sum() > 50


@pytest.mark.parametrize("args, message", [
    (["--shape", "star"], "Error: unknown shape 'star': use one of circle, sphere, rect, half, noise, mask"),
    (["--radius", "-2"], "Error: radius must not be negative, got -2"),
    (["--at", "500", "--steps", "400"], "Error: --at must be between 0 and --steps - 1 (399), got 500"),
    (["--center", "100,5"], "Error: position 100,5 is off the 72x72 grid"),
    (["--shape", "mask", "--mask", "m.png"], "Error: the mask is 10x10 but the grid is 72x72"),
    (["--radii", "a:b"], "Error: invalid --radii 'a:b': use FROM:TO:STEP (e.g. 2:20:3) or a list (e.g. 2,5,10)"),
    (["--shape", "mask"], "Error: shape mask needs --mask PICTURE"),
    (["--shape", "rect", "--rect", "0x4"], "Error: invalid rectangle '0x4': both sides must be positive"),
])
def test_damage_bad_input(tmp_path, args, message):
    Image.new("L", (10, 10), 0).save(tmp_path / "m.png")
    sweep_args = ["--sweep"] if args[0] == "--radii" else []
    result = invoke("damage", *args, *sweep_args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]


def test_sweep_tells_regenerating_from_growing_only():
    regen, grow_only = load_model("lizard"), load_model("lizard-grow")
    rates = []
    for loaded in (regen, grow_only):
        result = sweep(loaded.model, loaded.target.rgba, (72, 72), radii=[5.0, 8.0], spacing=10, seeds=1,
                       recover_steps=120)
        assert len(result.trials) >= 10
        rates.append(sum(t["recovered"] for t in result.trials) / len(result.trials))
    assert rates[0] >= 0.7 and rates[1] <= rates[0] - 0.4, rates


@pytest.mark.parametrize("args, message", [
    (["--sweep", "-o", "d.mp4"], "Error: -o is for one run with wounds; --sweep grows and wounds its own patterns (--radii, --spacing, --seeds, --recover-steps)"),
    (["--sweep", "--from", "s.npy"],
     "Error: --from is for one run with wounds; --sweep grows and wounds its own patterns (--radii, --spacing, --seeds, --recover-steps)"),
    (["--sweep", "--steps", "60"],
     "Error: --steps is for one run with wounds; --sweep grows and wounds its own patterns (--radii, --spacing, --seeds, --recover-steps)"),
    (["--radii", "2,4"], "Error: --radii is for --sweep"),
    (["--json", "s.json"], "Error: --json is for --sweep"),
    (["--shape", "circle", "--mask", "m.png"], "Error: --mask is for --shape mask, not circle"),
    (["--shape", "half", "--rect", "3x3"], "Error: --rect is for --shape rect, not half"),
    (["--shape", "rect", "--radius", "3"], "Error: --radius is for --shape circle or sphere, not rect"),
    (["--fraction", "0.2"], "Error: --fraction is for --shape noise, not circle"),
    (["--shape", "noise", "--side", "top"], "Error: --side is for --shape half, not noise"),
    (["--orbit", "10"], "Error: --orbit turns the camera around a voxel body; this model grows pictures"),
])
def test_damage_refuses_options_it_would_not_use(tmp_path, args, message):
    result = invoke("damage", *args)
    assert result.exit_code == 1 and result.output.strip().splitlines() == [message]
    assert list(tmp_path.iterdir()) == []


def test_sweep_command_writes_table_json_and_plot(tmp_path):
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    result = invoke("damage", "--sweep", "--radii", "4,8", "--spacing", "16", "--seeds", "1",
                    "--recover-steps", "40", "--json", js, "--plot", png)
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert [r["radius"] for r in report["by_radius"]] == [4, 8]
    assert report["by_radius"][0]["trials"] == len(report["by_position"]) > 0
    assert len(report["trials"]) == 2 * len(report["by_position"])
    assert Image.open(png).size[0] > 300
    assert "Recovery within 40 steps" in result.output


def test_rotate_0_is_the_plain_model_and_90_grows_the_turned_target(tmp_path):
    npy = tmp_path / "r.npy"
    result = invoke("rotate", "--theta", "0,90", "--steps", "200", "--every", "200", "-o", npy)
    assert result.exit_code == 0, result.output
    losses = {}
    for line in result.output.splitlines():
        parts = [p.strip() for p in line.strip("│ ").split("│")]
        if len(parts) == 2 and parts[0] in ("0", "90"):
            losses[parts[0]] = float(parts[1])
    assert losses["0"] < 0.01 and losses["90"] < 0.015, losses
    states = np.load(npy)  # (frames, angles, H, W, C)
    assert states.shape == (2, 2, 72, 72, 16)
    loaded = load_model("lizard")
    plain = invoke("grow", "--steps", "200", "--every", "200", "-o", tmp_path / "g.npy")
    assert plain.exit_code == 0
    assert np.array_equal(np.load(tmp_path / "g.npy")[-1], states[-1, 0])  # same seed, same numbers
    turned = rotate_image(loaded.target.rgba, 90, (36, 36)).numpy()
    wrong_way = rotate_image(loaded.target.rgba, -90, (36, 36)).numpy()
    grown = states[-1, 1, ..., :4]
    assert ((grown - turned) ** 2).mean() < ((grown - wrong_way) ** 2).mean() / 2


def test_rotate_bad_theta():
    result = invoke("rotate", "--theta", "north")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: invalid --theta 'north': expected degrees, e.g. 45 or 0,45,90"


def test_damage_from_a_saved_state(tmp_path):
    states = tmp_path / "grown.npy"
    assert invoke("grow", "--steps", "150", "--every", "150", "-o", states).exit_code == 0
    result = invoke("damage", "--from", states, "--at", "0", "--radius", "6", "--steps", "60", "-o", tmp_path / "h.png")
    assert result.exit_code == 0, result.output
    before = float(recovery_row(result.output, 0)[1])
    assert before < 0.006  # it started from the grown lizard, not from the seed (0.037)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 4, 3), dtype=np.float32))
    result = invoke("damage", "--from", bad, "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {bad} holds float32 (4, 4, 3); expected float32 states with 16 channels"


def test_rectangles_have_their_size_even_when_it_is_small_or_even(tmp_path):
    """--rect takes any positive size (it once went through the grid parser, which wants 3 cells),
    and an even size covers exactly that many cells."""
    x = pattern()
    for (h, w) in [(1, 1), (2, 2), (4, 6), (3, 5)]:
        rect = Wound(shape="rect", size=(h, w), position=parse_position("10,15")).masks(x)[0]
        rows, cols = rect.nonzero().T
        assert rect.sum() == h * w and rows.max() - rows.min() == h - 1 and cols.max() - cols.min() == w - 1
        assert rows.min() <= 10 <= rows.max() and cols.min() <= 15 <= cols.max()
    result = invoke("damage", "--shape", "rect", "--rect", "2x2", "--at", "5", "--steps", "6", "-o",
                    tmp_path / "r.png", "--device", "cpu")
    assert result.exit_code == 0, result.output

