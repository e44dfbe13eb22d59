"""Voxel bodies: the .vox reader and writer, meshes and arrays as targets, the renderer, the body
outputs, the 3D metrics, wounds, rotation and the sweep in 3D."""

import struct

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nca_cli.engine import NCA, NCAConfig, seed_state
from nca_cli.errors import NCAError
from nca_cli.growth.damage import Wound, parse_position
from nca_cli.growth.recovery import sweep, wound_outline
from nca_cli.growth.rotation import rotate_image, rotate_volume
from nca_cli.voxels.meshes import voxelise_mesh
from nca_cli.voxels.metrics import colour_mse, occupancy_iou
from nca_cli.voxels.outputs import body_rgba, write_body
from nca_cli.voxels.render import camera, frame_shape, render_voxels
from nca_cli.voxels.targets import fit_body, load_voxel_target
from nca_cli.voxels.vox import default_palette, read_vox, vox_bytes, write_vox

from .test_loaders_fuzz import mutate, mutations


def small_body(seed=0, shape=(5, 6, 7)) -> np.ndarray:
    """A random body of straight RGBA uint8 (D, H, W, 4) with a few colours, the centre solid."""
    rng = np.random.default_rng(seed)
    body = np.zeros((*shape, 4), dtype=np.uint8)
    solid = rng.random(shape) < 0.5
    solid[tuple(n // 2 for n in shape)] = True
    colours = rng.integers(0, 256, (6, 3))
    body[solid, :3] = colours[rng.integers(0, 6, solid.sum())]
    body[solid, 3] = 255
    return body


def chunk(cid: bytes, content: bytes, children: bytes = b"") -> bytes:
    """A chunk as the format's description lays it out, written here independently of the writer."""
    return cid + struct.pack("<ii", len(content), len(children)) + content + children


def model_chunks(size, voxels) -> bytes:
    return chunk(b"SIZE", struct.pack("<iii", *size)) + chunk(b"XYZI", struct.pack("<i", len(voxels)) + bytes(
        [v for voxel in voxels for v in voxel]))


# -- .vox ---------------------------------------------------------------------------------------------

def test_vox_round_trip_of_our_own_writer(tmp_path):
    body = small_body()
    write_vox(tmp_path / "b.vox", body)
    vox = read_vox(tmp_path / "b.vox")
    assert len(vox.models) == 1 and vox.models[0].shape == (5, 6, 7)
    assert np.array_equal(vox.rgba(), body)


def test_vox_layout_is_x_y_z_with_z_up(tmp_path):
    """A voxel at x=2, y=1, z=0 with colour index 3 of a 4x3x2 model is grid cell [0, 1, 2]."""
    palette = bytes(range(256)) * 4  # entry i - 1 of colour index i: (i-1)*4 .. (i-1)*4 + 3
    data = b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", model_chunks((4, 3, 2), [(2, 1, 0, 3)])
                                                    + chunk(b"RGBA", palette))
    (tmp_path / "one.vox").write_bytes(data)
    vox = read_vox(tmp_path / "one.vox")
    assert vox.models[0].shape == (2, 3, 4) and vox.models[0][0, 1, 2] == 3 and vox.models[0].sum() == 3
    assert vox.rgba()[0, 1, 2].tolist() == [8, 9, 10, 11]


def test_default_palette_is_the_one_the_format_lists():
    # A few entries of the description's table, 0xAABBGGRR.
    listed = {1: 0xFFFFFFFF, 2: 0xFFCCFFFF, 7: 0xFFFFCCFF, 37: 0xFFFFFFCC, 215: 0xFF330000, 216: 0xFF0000EE,
              226: 0xFF00EE00, 236: 0xFFEE0000, 246: 0xFFEEEEEE, 255: 0xFF111111}
    palette = default_palette()
    for index, value in listed.items():
        assert palette[index].tolist() == [value & 255, (value >> 8) & 255, (value >> 16) & 255, value >> 24], index
    assert palette[0].tolist() == [0, 0, 0, 0]


def test_a_file_without_a_palette_uses_the_default(tmp_path):
    data = b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", model_chunks((1, 1, 1), [(0, 0, 0, 2)]))
    (tmp_path / "p.vox").write_bytes(data)
    assert read_vox(tmp_path / "p.vox").rgba()[0, 0, 0].tolist() == [255, 255, 204, 255]


def test_more_than_255_colours_keep_the_most_frequent(tmp_path):
    body = np.zeros((1, 20, 20, 4), dtype=np.uint8)
    body[..., 3] = 255
    body[0, :, :, 0] = np.arange(400).reshape(20, 20) % 256
    body[0, :10, :, :3] = (9, 9, 9)  # the most frequent colour
    vox = read_vox(write_vox(tmp_path / "c.vox", body) or tmp_path / "c.vox")
    assert (vox.rgba()[0, :10, :, :3] == 9).all() and len(np.unique(vox.rgba().reshape(-1, 4), axis=0)) <= 255


def test_several_models_take_the_first_and_say_so(tmp_path):
    data = b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", chunk(b"PACK", struct.pack("<i", 2))
                                                    + model_chunks((3, 3, 3), [(1, 1, 1, 5)])
                                                    + model_chunks((2, 2, 2), [(0, 0, 0, 9), (1, 1, 1, 9)]))
    (tmp_path / "two.vox").write_bytes(data)
    target, notes = load_voxel_target(str(tmp_path / "two.vox"), size=None, pad=2)
    assert notes == ["two.vox holds 2 models; using the first"]
    assert target.shape == (7, 7, 7) and int((target.rgba[..., 3] > 0).sum()) == 1


@pytest.mark.parametrize("data, message", [
    (b"", "not a MagicaVoxel file (it does not start with 'VOX ')"),
    (b"PK\x03\x04 zip", "not a MagicaVoxel file (it does not start with 'VOX ')"),
    (b"VOX " + struct.pack("<i", 150), "no MAIN chunk"),
    (b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b""), "it holds no model"),
    (b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", chunk(b"SIZE", struct.pack("<iii", 2, 2, 2)))[:-4],
     "chunk b'MAIN' runs past the end of the file"),
    (b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", model_chunks((2, 2, 2), [(2, 0, 0, 1)])),
     "a voxel lies outside its model's 2x2x2 size"),
    (b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", model_chunks((0, 2, 2), [])),
     "model size 0x2x2 is outside 1..256 a side"),
    (b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", chunk(b"XYZI", struct.pack("<i", 0))),
     "an XYZI chunk without its SIZE chunk"),
])
def test_bad_vox_files(tmp_path, data, message):
    (tmp_path / "bad.vox").write_bytes(data)
    with pytest.raises(NCAError) as exc:
        read_vox(tmp_path / "bad.vox")
    assert str(exc.value) == f"cannot read {tmp_path / 'bad.vox'}: {message}"


def test_an_empty_model_is_an_empty_target(tmp_path):
    (tmp_path / "e.vox").write_bytes(b"VOX " + struct.pack("<i", 150) + chunk(b"MAIN", b"", model_chunks((3, 3, 3), [])))
    with pytest.raises(NCAError, match="^target e.vox is empty: no voxel is opaque enough to grow$"):
        load_voxel_target(str(tmp_path / "e.vox"))


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(edits=mutations())
def test_damaged_vox_files_raise_only_our_error(tmp_path, edits):
    path = tmp_path / "m.vox"
    path.write_bytes(mutate(vox_bytes(small_body(1)), edits))
    try:
        load_voxel_target(str(path), size=None, pad=1)
    except NCAError:
        pass


# -- arrays and meshes --------------------------------------------------------------------------------

def test_npy_bodies_uint8_and_float(tmp_path):
    body = small_body(2)
    np.save(tmp_path / "u.npy", body)
    np.save(tmp_path / "f.npy", body.astype(np.float32) / 255)
    a, _ = load_voxel_target(str(tmp_path / "u.npy"), pad=1)
    b, _ = load_voxel_target(str(tmp_path / "f.npy"), pad=1)
    assert torch.equal(a.rgba, b.rgba) and a.shape == (7, 8, 9)
    solid = body[..., 3] > 0
    inner = a.rgba[1:-1, 1:-1, 1:-1].numpy()
    assert np.allclose(inner[solid, :3], body[solid, :3] / 255, atol=1e-6) and (inner[~solid] == 0).all()
    centre = tuple(n // 2 for n in a.shape)
    assert a.rgba[centre][3] == 1  # growth starts on the body


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 4, 4), np.uint8), "holds an array of shape (4, 4, 4); a voxel body is (D, H, W, 4) RGBA"),
    (np.zeros((4, 4, 4, 3), np.uint8), "holds an array of shape (4, 4, 4, 3); a voxel body is (D, H, W, 4) RGBA"),
    (np.zeros((4, 4, 4, 4), np.int32), "holds int32 values; a voxel body is uint8 (0-255) or float (0-1)"),
    (np.full((4, 4, 4, 4), 2.0, np.float32), "holds values outside 0-1; float voxel colours are 0 to 1"),
])
def test_bad_npy_bodies(tmp_path, array, message):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(NCAError) as exc:
        load_voxel_target(str(tmp_path / "a.npy"))
    assert str(exc.value) == f"{tmp_path / 'a.npy'} {message}"


def test_a_cube_mesh_voxelises_solid_and_a_coloured_sphere_keeps_its_colour(tmp_path):
    trimesh.creation.box(extents=(2, 2, 2)).export(tmp_path / "box.stl")
    cube = voxelise_mesh(tmp_path / "box.stl", 6)
    assert cube.shape == (6, 6, 6, 4) and (cube[..., 3] == 1).all()
    sphere = trimesh.creation.icosphere(subdivisions=3)
    sphere.visual.vertex_colors = np.tile([200, 30, 10, 255], (len(sphere.vertices), 1))
    sphere.export(tmp_path / "ball.ply")
    ball = voxelise_mesh(tmp_path / "ball.ply", 16)
    volume = (ball[..., 3] > 0).sum()
    assert 0.9 < volume / (4 / 3 * np.pi * 8 ** 3) < 1.35  # the surface voxels round it up
    assert np.allclose(ball[ball[..., 3] > 0, :3], np.array([200, 30, 10]) / 255, atol=1 / 255)
    assert ball[8, 8, 8, 3] == 1  # filled inside


def test_an_open_mesh_still_voxelises_and_y_up_meshes_stand_up(tmp_path):
    plane = trimesh.Trimesh(vertices=[[0, 0, 0], [4, 0, 0], [4, 0, 1], [0, 0, 1]], faces=[[0, 1, 2], [0, 2, 3]])
    plane.export(tmp_path / "plane.obj")  # OBJ is read Y-up: this quad is 4 wide, 1 deep, flat
    grid = voxelise_mesh(tmp_path / "plane.obj", 8)
    assert grid.shape[2] == 8 and grid.shape[1] == 2 and (grid[..., 3] > 0).sum() > 0


@pytest.mark.parametrize("text, suffix, message", [
    ("", ".obj", "cannot voxelise {path}: it holds no triangles"),
    ("v 0 0 0\nv 1 1 1\nv 2 2 2\nf 1 2 3\n", ".obj", "cannot voxelise {path}: its triangles have no area"),
    ("glTF\x02\x00\x00\x00 not a scene", ".glb", "cannot read mesh {path}: not a readable GLB file"),
    ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\n", ".ply",
     "cannot read mesh {path}: not a readable PLY file"),
])
def test_meshes_that_cannot_voxelise(tmp_path, text, suffix, message):
    path = tmp_path / f"m{suffix}"
    path.write_text(text)
    with pytest.raises(NCAError) as exc:
        load_voxel_target(str(path))
    assert str(exc.value) == message.format(path=path)


def test_fitting_a_body_takes_majority_and_mean_colour():
    body = np.zeros((4, 4, 4, 4), np.float32)
    body[:2] = (1, 0, 0, 1)  # the lower half red
    body[:2, :2, :2] = (0, 0, 1, 1)  # one corner block blue
    half = fit_body(body, 2)
    assert half.shape == (2, 2, 2, 4)
    assert half[0, 0, 0].tolist() == [0, 0, 1, 1] and half[0, 1, 1].tolist() == [1, 0, 0, 1]
    assert (half[1] == 0).all()


def test_a_grid_too_large_is_refused_before_allocating(tmp_path, monkeypatch):
    import nca_cli.runtime.limits as limits

    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 1 << 30)
    write_vox(tmp_path / "b.vox", small_body())
    with pytest.raises(NCAError) as exc:
        load_voxel_target(str(tmp_path / "b.vox"), size=300, pad=10)
    assert str(exc.value) == "a 320x320x320 voxel grid needs about 2.0 GB of memory; 1.0 GB is available"


def test_a_hollow_centre_is_padded_so_that_growth_starts_on_the_body(tmp_path):
    ring = np.zeros((3, 9, 9, 4), np.uint8)
    yy, xx = np.mgrid[:9, :9] - 4
    ring[:, (np.hypot(yy, xx) > 2.5) & (np.hypot(yy, xx) < 4.5)] = (10, 200, 10, 255)
    np.save(tmp_path / "ring.npy", ring)
    target, _ = load_voxel_target(str(tmp_path / "ring.npy"), pad=2)
    assert target.rgba[tuple(n // 2 for n in target.shape)][3] == 1
    assert int((target.rgba[..., 3] > 0).sum()) == int((ring[..., 3] > 0).sum())  # nothing cut off


# -- metrics, rendering, outputs -------------------------------------------------------------------

def test_iou_and_colour_error_against_a_plain_count():
    rng = np.random.default_rng(0)
    target = torch.zeros(4, 5, 6, 4)
    target[..., 3] = torch.from_numpy(rng.random((4, 5, 6)) < 0.4).float()
    target[..., :3] = torch.rand(4, 5, 6, 3) * target[..., 3:]
    x = torch.rand(2, 4, 5, 6, 8)
    for b in range(2):
        grown = set(map(tuple, (x[b, ..., 3] > 0.1).nonzero().tolist()))
        wanted = set(map(tuple, (target[..., 3] > 0.1).nonzero().tolist()))
        assert float(occupancy_iou(x, target)[b]) == pytest.approx(len(grown & wanted) / len(grown | wanted))
        errors = [float(((x[b][c][:3] - target[c][:3]) ** 2).mean()) for c in wanted]
        assert float(colour_mse(x, target)[b]) == pytest.approx(sum(errors) / len(errors), rel=1e-5)


def test_a_rendered_voxel_shows_its_lit_faces_and_the_nearer_voxel_hides_the_farther():
    colours = np.zeros((3, 3, 3, 3), np.uint8)
    solid = np.zeros((3, 3, 3), bool)
    solid[1, 1, 1] = True
    colours[1, 1, 1] = (200, 100, 50)
    frame = render_voxels(colours, solid, azimuth=0.0, scale=20)
    assert frame.shape == (*frame_shape((3, 3, 3), 20), 3)
    towards, right, up = camera(0.0)  # the camera looks along -x, from above: the +x face and the top show
    h, w = frame.shape[:2]
    front = (round(h / 2 - float(torch.tensor([0.5, 0.0, -0.2]) @ up) * 20), w // 2)
    top = (round(h / 2 - float(torch.tensor([0.0, 0.0, 0.5]) @ up) * 20) - 2, w // 2)
    for row, col in (front, top):
        pixel = frame[row, col].astype(float)
        assert pixel[0] > 0 and np.allclose(pixel / pixel[0], [1, 0.5, 0.25], atol=0.03)
    assert frame[2, 2].tolist() == [255, 255, 255]
    # A second voxel between the camera and the first, in another colour, hides it.
    solid[1, 1, 2] = True
    colours[1, 1, 2] = (0, 0, 250)
    solid[1, 1, 1], solid[1, 1, 2] = True, False
    nearer = np.zeros_like(solid)
    nearer[1, 1, 1] = nearer[1, 1, 2] = True
    colours2 = colours.copy()
    colours2[1, 1, 2] = (0, 0, 250)
    seen = render_voxels(colours2, nearer, azimuth=0.0, scale=20)[front]
    assert seen[2] > 0 and seen[0] == 0


def test_body_outputs_read_back(tmp_path):
    body = small_body(3)
    body[..., 3] = 255  # a solid block of many colours: its faces close into one surface
    body[..., :3] = np.random.default_rng(3).integers(0, 4, (5, 6, 7, 1)) * 60
    state = torch.zeros(5, 6, 7, 8)
    state[..., :4] = torch.from_numpy(body).float() / 255
    assert write_body(tmp_path / "b.vox", state) == int((body[..., 3] > 0).sum())
    assert np.array_equal(read_vox(tmp_path / "b.vox").rgba(), body_rgba(state))
    for suffix in (".ply", ".obj"):
        write_body(tmp_path / f"b{suffix}", state)
        mesh = trimesh.load(tmp_path / f"b{suffix}")  # merged vertices: a closed surface
        assert mesh.is_watertight and mesh.volume == pytest.approx((body[..., 3] > 0).sum())
        colours = {tuple(c[:3]) for c in trimesh.load(tmp_path / f"b{suffix}", process=False).visual.vertex_colors}
        assert colours == {tuple(int(v) for v in c[:3]) for c in body[body[..., 3] > 0]}


# -- wounds, rotation, the sweep ------------------------------------------------------------------------

def test_sphere_and_halves_of_a_voxel_body():
    x = torch.zeros(1, 10, 12, 14, 8)
    x[0, 2:8, 3:9, 4:10, 3:] = 1
    ball = Wound(shape="sphere", radius=2.5, position=parse_position("5,6,7")).masks(x)[0]
    d, h, w = np.mgrid[:10, :12, :14]
    assert np.array_equal(ball.numpy(), (d - 5) ** 2 + (h - 6) ** 2 + (w - 7) ** 2 < 2.5 ** 2)
    assert torch.equal(Wound(shape="circle", radius=2.5, position=("5", "6", "7")).masks(x), ball[None])
    top = Wound(shape="half", side="top").masks(x)[0]
    assert top[5:].all() and not top[:5].any()  # D is up: the top half is the high D
    back = Wound(shape="half", side="back").masks(x)[0]
    assert back[:, 6:].all() and not back[:, :6].any()
    with pytest.raises(NCAError, match="^a rect wound is drawn on a picture; a voxel body takes sphere, half or noise$"):
        Wound(shape="rect").masks(x)
    with pytest.raises(NCAError, match="^position 5,6 has 2 coordinates; this grid has 3 \\(D,H,W\\)$"):
        Wound(position=("5", "6")).masks(x)
    outline = wound_outline(ball.numpy())
    assert not (outline & ball.numpy()).any() and outline[5, 6, 10] and not outline[5, 6, 11]


def test_turning_a_volume_about_each_axis_matches_the_picture_rotation():
    volume = torch.rand(5, 7, 9, 2)
    turned = rotate_volume(volume, 90, "z", (2, 3, 4))
    for d in range(5):  # about z, every horizontal slice turns as a picture does
        assert torch.allclose(turned[d], rotate_image(volume[d], 90, (3, 4)), atol=1e-5)
    # about x, the (y, z) plane turns as (x, y) does about z: the grid's (H, D) as (W, H)
    turned = rotate_volume(volume, 90, "x", (2, 3, 4))
    expected = rotate_volume(volume.permute(2, 0, 1, 3), 90, "z", (4, 2, 3)).permute(1, 2, 0, 3)
    assert torch.allclose(turned, expected, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_perception_turned_by_90_degrees_grows_the_turned_body(axis):
    """One step of turned perception on a turned state is the turned step: rotate_volume turns the
    way the engine does."""
    torch.manual_seed(0)
    model = NCA(NCAConfig(dims=3, channels=6, hidden=12))
    torch.nn.init.normal_(model.w2.weight, std=0.3)
    x = torch.zeros(1, 7, 7, 7, 6)
    x[0, 2:5, 2:6, 3:5] = torch.rand(3, 4, 2, 6)
    fire = torch.rand(1, 7, 7, 7) < 0.6
    centre = (3, 3, 3)

    def turn(v):
        return rotate_volume(v, 90, axis, centre)

    expected = turn(model.step(x, fire=fire)[0])
    turned_fire = turn(fire[0, ..., None].float())[..., 0] > 0.5
    got = model.step(turn(x[0])[None], fire=turned_fire[None], angle=90.0 if axis == "z" else None)
    model.config = NCAConfig(dims=3, channels=6, hidden=12, axis=axis)
    got = model.step(turn(x[0])[None], fire=turned_fire[None], angle=90.0)
    assert torch.allclose(got[0], expected, atol=1e-5)


def test_the_sweep_wounds_voxel_bodies_with_balls(tmp_path):
    torch.manual_seed(1)
    model = NCA(NCAConfig(dims=3, channels=8, hidden=16))
    torch.nn.init.normal_(model.w2.weight, std=0.05)
    target = torch.zeros(8, 8, 8, 4)
    target[2:6, 2:6, 2:6] = torch.tensor([0.5, 0.2, 0.1, 1.0])
    result = sweep(model, target, (8, 8, 8), radii=[1.0, 2.0], spacing=1, seeds=1, grow_steps=0, recover_steps=5)
    assert result.trials and set(result.trials[0]) >= {"radius", "d", "h", "w", "recovered"}
    assert {r["radius"] for r in result.by_radius()} == {1.0, 2.0}
    assert set(result.by_position()[0]) == {"d", "h", "w", "recovery_rate"}
