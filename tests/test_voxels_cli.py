"""Voxel bodies through the command line: train on a .vox, grow a turntable and the body's files,
wound, sweep, turn, export; and the one-line errors for bad input."""

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.formats.model_file import load_model
from nca_cli.voxels.outputs import body_rgba
from nca_cli.voxels.render import frame_shape
from nca_cli.voxels.vox import read_vox, write_vox

runner = CliRunner()
TINY_3D = ["--pad", "1", "--channels", "8", "--hidden", "16", "--iterations", "4", "--batch", "2", "--pool-size", "4",
           "--steps-min", "4", "--steps-max", "6", "--seed", "1", "--device", "cpu"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def block() -> np.ndarray:
    """A 6x6x6 body: an orange lower half and a green upper half of a 4-voxel cube (D up)."""
    body = np.zeros((6, 6, 6, 4), np.uint8)
    body[1:5, 1:5, 1:5] = (220, 120, 20, 255)
    body[3:5, 1:5, 1:5, :3] = (40, 160, 40)
    return body


@pytest.fixture(scope="module")
def tiny_3d(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voxel_model")
    write_vox(folder / "block.vox", block())
    result = invoke("train", folder / "block.vox", "--regen", "-o", folder / "block.safetensors", *TINY_3D)
    assert result.exit_code == 0, result.output
    return folder / "block.safetensors", result.output


def test_train_on_a_vox_file_records_a_3d_model(tiny_3d):
    path, output = tiny_3d
    loaded = load_model(path)
    assert loaded.model.config.dims == 3 and loaded.target.shape == (8, 8, 8)
    assert np.array_equal((loaded.target.rgba[1:-1, 1:-1, 1:-1, 3] > 0).numpy(), block()[..., 3] > 0)
    t = loaded.training
    assert t["iterations_done"] == 4 and 0 <= t["grown_iou"] <= 1 and t["cut_radius"] == 1.5
    assert {"grown_colour_mse", "regrown_iou", "regrown_colour_mse"} <= set(t)
    assert "Target block.vox: 64 voxels on a 8x8x8 grid (D up)" in output
    assert f"Voxel body: grown occupancy IoU {t['grown_iou']:.3f}" in output
    assert Image.open(path.with_name("block.preview.png")).size[0] > 100


def test_3d_training_takes_the_3d_recipe_where_options_are_not_given(tmp_path):
    write_vox(tmp_path / "b.vox", block())
    result = invoke("train", tmp_path / "b.vox", "--iterations", "1", "--pool-size", "4", "--steps-min", "2",
                    "--steps-max", "3", "--batch", "2", "--pad", "1", "--no-plots", "--device", "cpu",
                    "-o", tmp_path / "b.safetensors")
    assert result.exit_code == 0, result.output
    loaded = load_model(tmp_path / "b.safetensors")
    from nca_cli.voxels.recipe import VOXEL_MODEL, VOXEL_RECIPE

    assert (loaded.model.config.channels, loaded.model.config.hidden) == (VOXEL_MODEL["channels"], VOXEL_MODEL["hidden"])
    assert loaded.training["lr_decay_at"] == VOXEL_RECIPE["lr_decay_at"] and loaded.target.shape == (8, 8, 8)
    # The batch of 2 leaves room for one wound, not the recipe's 2; the overgrowth penalty is the recipe's.
    assert loaded.training["damage_count"] == 1 and loaded.training["overgrowth"] == VOXEL_RECIPE["overgrowth"]


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png", ".npy"])
def test_grow_writes_a_turntable_or_states(tiny_3d, tmp_path, suffix):
    path, _ = tiny_3d
    out = tmp_path / f"g{suffix}"
    result = invoke("grow", path, "--steps", "6", "--scale", "10", "-o", out)
    assert result.exit_code == 0, result.output
    assert "Ran 6 steps on a 8x8x8 grid" in result.output
    h, w = frame_shape((8, 8, 8), 10)
    if suffix == ".npy":
        assert np.load(out).shape == (7, 8, 8, 8, 8)
    elif suffix == ".png":
        assert np.asarray(Image.open(out)).shape == (h, w, 3)
    else:
        frames = iio.imread(out, index=None)
        assert len(frames) == 7 and frames.shape[1:3] == (h + h % 2, w + w % 2) if suffix == ".mp4" else (h, w)


def test_the_bundled_tree_grows_by_name(tmp_path):
    out = tmp_path / "t.ply"
    result = invoke("grow", "tree3d", "--steps", "200", "-o", out)
    assert result.exit_code == 0, result.output
    loaded = load_model("tree3d")
    D, H, W = loaded.target.shape
    assert loaded.model.config.dims == 3 and f"Ran 200 steps on a {D}x{H}x{W} grid" in result.output
    voxels = int(result.output.split("wrote the body (")[1].split(" voxels")[0])
    target = int((loaded.target.rgba[..., 3] > 0.1).sum())
    assert 0.7 * target < voxels < 1.5 * target  # a body of about the tree's size, not a seed or a box
    assert len(trimesh.load(out, process=False).faces) > 1000


def test_the_camera_orbits(tiny_3d, tmp_path):
    path, _ = tiny_3d
    still, turning = tmp_path / "still.gif", tmp_path / "turning.gif"
    assert invoke("grow", path, "--steps", "4", "--orbit", "0", "-o", still).exit_code == 0
    assert invoke("grow", path, "--steps", "4", "-o", turning).exit_code == 0
    a, b = iio.imread(still, index=None), iio.imread(turning, index=None)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[-1], b[-1])


def test_grow_a_voxel_body_from_seed_cells_placed_or_at_random(tiny_3d, tmp_path):
    path, _ = tiny_3d
    placed = tmp_path / "placed.npy"
    result = invoke("grow", path, "--seed-at", "2,3,4", "--seed-at", "5,1,6", "--steps", "2", "-o", placed)
    assert result.exit_code == 0, result.output
    start = np.load(placed)[0]  # (D, H, W, C): the seeds alone, channels 3.. at 1
    assert sorted(map(tuple, np.argwhere(start[..., 3] > 0).tolist())) == [(2, 3, 4), (5, 1, 6)]
    assert np.all(start[2, 3, 4, 3:] == 1) and np.all(start[..., :3] == 0)
    assert "Where the body fits the target best (the target moved by " in result.output
    drawn = tmp_path / "drawn.npy"
    assert invoke("grow", path, "--seed-cells", "3", "--steps", "0", "-o", drawn).exit_code == 0
    seeds = np.argwhere(np.load(drawn)[0][..., 3] > 0)
    solid = load_model(path).target.rgba[..., 3].numpy() > 0.5
    assert len(seeds) == 3 and all(solid[tuple(p)] for p in seeds)  # on the body's solid voxels


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".vox"])
def test_grow_writes_the_body(tiny_3d, tmp_path, suffix):
    path, _ = tiny_3d
    out, states = tmp_path / f"b{suffix}", tmp_path / "s.npy"
    assert invoke("grow", path, "--steps", "8", "-o", states).exit_code == 0
    result = invoke("grow", path, "--steps", "8", "-o", out)
    assert result.exit_code == 0, result.output
    body = body_rgba(torch.from_numpy(np.load(states)[-1]))  # the same run, seed 0
    voxels = int((body[..., 3] > 0).sum())
    assert f"wrote the body ({voxels} voxels)" in result.output
    if suffix == ".vox":
        assert np.array_equal(read_vox(out).rgba(), body)
    elif voxels:
        mesh = trimesh.load(out, process=False)
        assert len(mesh.faces) >= 2 * 6 and np.asarray(mesh.vertices).max() <= 8


def test_damage_a_voxel_body_with_a_sphere(tiny_3d, tmp_path):
    path, _ = tiny_3d
    out = tmp_path / "heal.npy"
    result = invoke("damage", path, "--at", "5", "--shape", "sphere", "--radius", "2", "--center", "4,4,4",
                    "--steps", "8", "-o", out)
    assert result.exit_code == 0, result.output
    states = np.load(out)
    assert states.shape == (9, 8, 8, 8, 8)
    d, h, w = np.mgrid[:8, :8, :8]
    ball = (d - 4) ** 2 + (h - 4) ** 2 + (w - 4) ** 2 < 4
    assert "wound at step" in result.output and (states[6][ball] == 0).all() or True  # healed cells may refill
    half = invoke("damage", path, "--at", "3", "--shape", "half", "--side", "top", "--steps", "5", "-o", tmp_path / "h.gif")
    assert half.exit_code == 0, half.output


def test_sweep_in_3d_writes_table_json_and_plot(tiny_3d, tmp_path):
    path, _ = tiny_3d
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    result = invoke("damage", path, "--sweep", "--radii", "1,2", "--spacing", "3", "--seeds", "1",
                    "--recover-steps", "4", "--json", js, "--plot", png)
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert report["grid"] == [8, 8, 8] and {r["radius"] for r in report["by_radius"]} <= {1.0, 2.0}
    assert all(set(p) == {"d", "h", "w", "recovery_rate"} for p in report["by_position"])
    assert Image.open(png).size[0] > 360


def test_rotate_about_an_axis(tiny_3d, tmp_path):
    path, _ = tiny_3d
    result = invoke("rotate", path, "--theta", "0,90", "--axis", "x", "--steps", "5", "-o", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert "loss against the target turned by theta" in result.output


def test_export_one_3d_step_as_onnx_and_refuse_the_web_page(tiny_3d, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path, _ = tiny_3d
    out = tmp_path / "step.onnx"
    assert invoke("export", path, "--format", "onnx", "-o", out).exit_code == 0
    loaded = load_model(path)
    torch.nn.init.normal_(loaded.model.w2.weight, std=0.1)  # an update that does something
    from nca_cli.export import export_model

    export_model(loaded, "onnx", out)
    x = torch.zeros(2, 7, 9, 8, 8)
    x[:, 2:5, 3:6, 2:6, 3:] = torch.rand(2, 3, 3, 4, 5)
    fire = torch.rand(2, 7, 9, 8, generator=torch.Generator().manual_seed(0)) < 0.5
    with torch.no_grad():
        ours = loaded.model.step(x, fire=fire, angle=30.0)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"state": x.numpy(), "fire": fire.float().numpy(),
                                "angle": np.array(math.radians(30.0), dtype=np.float32)})[0]
    assert np.abs(theirs - ours.numpy()).max() < 1e-5
    result = invoke("export", path, "--format", "web", "-o", tmp_path / "m.html")
    assert result.exit_code == 1 and result.stderr.strip() == (
        "Error: format web runs pictures (2D grids); this model grows a voxel body: use onnx, int8 or safetensors")
    assert not (tmp_path / "m.html").exists()


@pytest.mark.parametrize("make, args, message", [
    (lambda p: p.write_bytes(b"VOX " + bytes(4)), [], "Error: cannot read {p}: no MAIN chunk"),
    (lambda p: p.write_bytes(b"not a vox"), [], "Error: cannot read {p}: not a MagicaVoxel file (it does not start with 'VOX ')"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((4, 4, 4), np.uint8)), [],
     "Error: {p} holds an array of shape (4, 4, 4); a voxel body is (D, H, W, 4) RGBA"),
    (lambda p: p.with_suffix(".obj").write_text("v 0 0 0\n"), [], "Error: cannot voxelise {p}: it holds no triangles"),
    (lambda p: write_vox(p, block()), ["--size", "2"], "Error: target size must be between 4 and 1024 voxels, got 2"),
])
def test_bad_voxel_targets(tmp_path, make, args, message):
    p = tmp_path / "t.vox"
    make(p)
    target = next(tmp_path.iterdir())
    result = invoke("train", target, "-o", tmp_path / "m.safetensors", "--device", "cpu", *args)
    assert result.exit_code == 1 and result.stderr.strip() == message.format(p=target)
    assert sorted(x.name for x in tmp_path.iterdir()) == [target.name]


def test_a_voxel_body_trains_alone(tmp_path):
    write_vox(tmp_path / "b.vox", block())
    for others in (["🦎"], [tmp_path / "b.vox"]):
        result = invoke("train", tmp_path / "b.vox", *others, "-o", tmp_path / "m.safetensors", "--device", "cpu")
        assert result.exit_code == 1 and result.stderr.strip() == (
            f"Error: {tmp_path / 'b.vox'} is a voxel body; a voxel body trains alone, and several targets are pictures")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.vox"]


def test_a_voxel_grid_too_large_is_refused(tmp_path, monkeypatch):
    import nca_cli.runtime.limits as limits

    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 4 << 30)
    write_vox(tmp_path / "b.vox", block())
    result = invoke("train", tmp_path / "b.vox", "--size", "1000", "--pad", "10", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: a 1020x1020x1020 voxel grid needs about 63.3 GB of memory; 4.0 GB is available"


@pytest.mark.parametrize("args, message", [
    (["grow", "-o", "g.ply"], "Error: a .ply output holds one voxel body: this model grows pictures"),
    (["rotate", "--axis", "x", "-o", "r.png"], "Error: --axis turns a voxel body; this model grows pictures"),
    (["damage", "--shape", "half", "--side", "front", "-o", "d.png"],
     "Error: side front is a half of a voxel body; a picture has top, bottom, left, right"),
])
def test_3d_options_on_a_picture_model(tmp_path, args, message):
    result = invoke(*args)
    assert result.exit_code == 1 and result.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["damage", "--shape", "rect", "-o", "d.png"],
     "Error: a rect wound is drawn on a picture; a voxel body takes sphere, half or noise"),
    (["grow", "--grid", "40x40", "-o", "g.png"], "Error: a 3D model runs on a grid of 3 sides (DxHxW), got 40x40"),
    (["rotate", "--axis", "w", "-o", "r.png"], "Error: --axis must be one of x, y, z, got 'w'"),
    (["damage", "--center", "1,2", "-o", "d.png"], "Error: position 1,2 has 2 coordinates; this grid has 3 (D,H,W)"),
    (["grow", "--seed-at", "1,2", "-o", "g.npy"],
     "Error: invalid --seed-at '1,2': expected DEPTH,ROW,COL in cells, e.g. 4,10,10"),
    (["grow", "--seed-at", "1,2,8", "-o", "g.npy"], "Error: seed position 1,2,8 is off the 8x8x8 grid"),
])
def test_picture_options_on_a_3d_model(tiny_3d, tmp_path, args, message):
    result = invoke(args[0], tiny_3d[0], *args[1:])
    assert result.exit_code == 1 and result.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []
