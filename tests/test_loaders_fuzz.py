"""Property-based: damaged files of every kind the project reads raise the project's error and
nothing else (no traceback from deep inside a decoder), or load as a valid model."""

import io
import json
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nca_cli.engine import NCA, NCAConfig
from nca_cli.errors import NCAError
from nca_cli.formats.distill import read_distill
from nca_cli.formats.model_file import load_model, save_model
from nca_cli.targets.pictures import read_picture
from nca_cli.training import Trainer, TrainConfig, load_state, save_state

from .conftest import TINY_MODEL, TINY_TRAIN

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=6)


def only_our_error(load, data: bytes, path: Path):
    path.write_bytes(data)
    try:
        load(path)
    except NCAError:
        pass


def mutations():
    """Edits of a file's bytes: (position fraction, replacement bytes) and a truncation fraction."""
    return st.tuples(st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=4)), max_size=4),
                     st.floats(0.05, 1.0))


def mutate(data: bytes, edits) -> bytes:
    changes, keep = edits
    out = bytearray(data)
    for where, replacement in changes:
        i = int(where * (len(out) - 1))
        out[i : i + len(replacement)] = replacement
    return bytes(out[: max(1, int(len(out) * keep))])


def safetensors_with_metadata(data: bytes, key: str, value) -> bytes:
    """The same safetensors file with one metadata value replaced."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    header.setdefault("__metadata__", {})[key] = value if isinstance(value, str) else json.dumps(value)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory, disc_target):
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    torch.manual_seed(0)
    save_model(path, NCA(TINY_MODEL), disc_target, {"mode": "regen"})
    return path.read_bytes()


@FUZZ
@given(edits=mutations())
def test_damaged_model_files(tmp_path, model_bytes, edits):
    only_our_error(load_model, mutate(model_bytes, edits), tmp_path / "m.safetensors")


@FUZZ
@given(key=st.sampled_from(["model", "training", "target", "task", "kind", "format_version", "quantization"]),
       value=json_values)
def test_model_files_with_strange_metadata(tmp_path, model_bytes, key, value):
    only_our_error(load_model, safetensors_with_metadata(model_bytes, key, value), tmp_path / "m.safetensors")


@pytest.fixture(scope="module")
def state_bytes(tmp_path_factory, disc_target):
    path = tmp_path_factory.mktemp("fuzz") / "m.ckpt.safetensors"
    trainer = Trainer(TINY_MODEL, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), "iterations": 2}), disc_target)
    trainer.run()
    save_state(trainer, path)
    return path.read_bytes()


@FUZZ
@given(edits=mutations())
def test_damaged_resume_states(tmp_path, state_bytes, disc_target, edits):
    only_our_error(lambda p: load_state(p, disc_target), mutate(state_bytes, edits), tmp_path / "s.safetensors")


@FUZZ
@given(key=st.sampled_from(["model", "training", "target", "progress", "format"]), value=json_values)
def test_resume_states_with_strange_metadata(tmp_path, state_bytes, disc_target, key, value):
    only_our_error(lambda p: load_state(p, disc_target), safetensors_with_metadata(state_bytes, key, value),
                   tmp_path / "s.safetensors")


def distill_layers() -> list:
    from nca_cli.formats.distill import _encode_layer

    torch.manual_seed(0)
    m = NCA(NCAConfig(channels=4, hidden=3))
    return [_encode_layer(m.w1.weight, m.w1.bias), _encode_layer(m.w2.weight, m.w2.bias)]


@FUZZ
@given(layer=st.integers(0, 1), key=st.sampled_from(["data_b64", "in_ch", "out_ch", "weight_scale", "bias_scale",
                                                      "type", "extra"]), value=json_values)
def test_distill_json_with_strange_fields(tmp_path, layer, key, value):
    layers = distill_layers()
    layers[layer][key] = value
    only_our_error(read_distill, json.dumps(layers).encode(), tmp_path / "d.json")


@FUZZ
@given(edits=mutations())
def test_damaged_distill_json(tmp_path, edits):
    only_our_error(read_distill, mutate(json.dumps(distill_layers()).encode(), edits), tmp_path / "d.json")


@pytest.fixture(scope="module", params=["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def image_bytes(request):
    buffer = io.BytesIO()
    Image.new("RGBA" if request.param in ("PNG", "WEBP") else "RGB", (12, 9), (200, 100, 0)).save(buffer, request.param)
    return buffer.getvalue()


@FUZZ
@given(edits=mutations())
def test_damaged_images(tmp_path, image_bytes, edits):
    only_our_error(read_picture, mutate(image_bytes, edits), tmp_path / "picture")
