"""The GPU path: the engine, training and every command on CUDA. Skipped, with the reason shown,
on machines without a CUDA GPU (CI has none); bench/gpu_check.sh runs them on a GPU machine."""

import json

import pytest
import torch
from typer.testing import CliRunner

from nca_cli.cli import app
from nca_cli.engine import NCA, NCAConfig
from nca_cli.training import Trainer, TrainConfig

from . import reference
from .conftest import TINY_ARGS, TINY_MODEL, TINY_TRAIN

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU on this machine: the GPU path was not tested here "
                                       "(bench/gpu_check.sh runs these tests on a GPU machine)")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("dims", [2, 3])
def test_cuda_step_matches_the_cpu_reference(dims):
    torch.manual_seed(0)
    model = NCA(NCAConfig(channels=8, hidden=16, dims=dims))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    shape = (16, 20) if dims == 2 else (8, 9, 10)
    x = torch.zeros(2, *shape, 8)
    x[(slice(None),) + tuple(slice(n // 3, 2 * n // 3) for n in shape)] = torch.rand(1)
    fire = torch.rand(x.shape[:-1]) < 0.5
    with torch.no_grad():
        ours = model.cuda().step(x.cuda(), fire=fire.cuda()).cpu()
        step = reference.step if dims == 2 else reference.step3d
        theirs = step(model.cpu(), x, fire)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_cuda_training_iterations_reduce_the_loss(disc_target):
    trainer = Trainer(TINY_MODEL, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), "iterations": 40}), disc_target,
                      "cuda")
    trainer.run()
    assert trainer.iteration == 40 and trainer.final_loss(5) < sum(trainer.losses[:5]) / 5


def test_every_command_runs_on_cuda(tmp_path, disc_png):
    model = tmp_path / "m.safetensors"
    args = [a for a in TINY_ARGS if a not in ("--device", "cpu")]
    assert invoke("train", disc_png, "-o", model, "--no-plots", *args, "--device", "cuda").exit_code == 0
    for command in (["grow", model, "--steps", "20", "-o", tmp_path / "g.npy"],
                    ["damage", model, "--at", "10", "--steps", "20", "-o", tmp_path / "d.png"],
                    ["damage", model, "--sweep", "--radii", "2,4", "--recover-steps", "10",
                     "--json", tmp_path / "s.json", "--plot", tmp_path / "s.png"],
                    ["rotate", model, "--theta", "0,90", "--steps", "20", "-o", tmp_path / "r.png"],
                    ["export", model, "--format", "onnx", "-o", tmp_path / "m.onnx"]):
        result = invoke(*command, "--device", "cuda")
        assert result.exit_code == 0, (command, result.output)
    result = invoke("bench", "--device", "cuda", "--batch", "2", "--grid", "16", "--steps", "4", "--repeats", "2",
                    "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["device"].startswith("cuda") and report["agreement_max_abs_diff"] < 1e-4
