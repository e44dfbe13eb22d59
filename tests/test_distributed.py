"""Data-parallel training on PyTorch's own distributed engine, two CPU ranks over gloo."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from nca_cli.errors import NCAError
from nca_cli.formats.model_file import load_model
from nca_cli.training import Trainer, TrainConfig, load_state, save_state
from nca_cli.runtime.distributed import World, leave, shard, world_from_environment
from nca_cli.training.samples import Batch

from .conftest import TINY_ARGS, TINY_MODEL, TINY_TRAIN

B, STEPS = 2, 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def global_batch(target, n: int):
    """n grown-looking starting states and the fire masks of STEPS steps, the same for everyone."""
    g = torch.Generator().manual_seed(7)
    H, W = target.shape
    x = torch.zeros(n, H, W, TINY_MODEL.channels)
    x[:, H // 2 - 3 : H // 2 + 3, W // 2 - 3 : W // 2 + 3] = torch.rand(n, 6, 6, TINY_MODEL.channels, generator=g)
    fires = [torch.rand(n, H, W, generator=g) < 0.5 for _ in range(STEPS)]
    return x, fires


def learn_twice(trainer: Trainer, x, fires, part: slice) -> None:
    """Two iterations on the same samples and fire masks (the first moves only the last layer,
    which starts at zero; the second moves every weight)."""
    n = len(x[part])
    for _ in range(2):
        batch = Batch(None, x[part].clone(), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool))
        trainer.learn(batch, STEPS, fire=lambda k: fires[k][part])


def rank_main(rank: int, port: int, target, folder: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    world = world_from_environment(torch.device("cpu"))
    trainer = Trainer(TINY_MODEL, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), "mode": "persist", "batch": B}),
                      target, world=world)
    trainer.pool += rank + 1  # tell the shards apart
    x, fires = global_batch(target, 2 * B)
    learn_twice(trainer, x, fires, slice(rank * B, (rank + 1) * B))
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, f"{folder}/rank{rank}.pt")
    save_state(trainer, f"{folder}/state.safetensors")  # both ranks gather, rank 0 writes
    leave(world)


def test_two_ranks_of_batch_b_take_the_step_of_one_process_of_batch_2b(tmp_path, disc_target):
    mp.spawn(rank_main, args=(free_port(), disc_target, str(tmp_path)), nprocs=2, join=True)
    single = Trainer(TINY_MODEL, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), "mode": "persist", "batch": 2 * B}),
                     disc_target)
    x, fires = global_batch(disc_target, 2 * B)
    before = {k: v.clone() for k, v in single.model.state_dict().items()}
    learn_twice(single, x, fires, slice(0, 2 * B))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]  # our own test files
    for name, weight in single.model.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # the ranks stay identical
        assert torch.allclose(ranks[0][name], weight, atol=1e-6), name  # and took the single process's step
        assert not torch.equal(weight, before[name]) or name.endswith("bias"), name
    resumed = load_state(tmp_path / "state.safetensors", disc_target)  # on one rank: the whole pool
    assert resumed.reseeded and resumed.pool.shape[0] == TINY_TRAIN.pool_size
    assert (resumed.pool[:4] - single.pool[:4] == 1).all() and (resumed.pool[4:] - single.pool[4:] == 2).all()


def test_shards_cover_every_item_once():
    for count in (0, 5, 8, 13):
        for size in (1, 2, 3):
            parts = [list(shard(count, World(rank=r, size=size))) for r in range(size)]
            assert sum(parts, []) == list(range(count))


def test_a_world_that_cannot_gather_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("NCA_RENDEZVOUS_TIMEOUT", "2")
    with pytest.raises(NCAError, match=r"^cannot join the torchrun world of 2 ranks: "):
        world_from_environment(torch.device("cpu"))


def test_torchrun_trains_on_two_ranks_and_resumes_on_one(tmp_path, disc_png):
    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
           "-m", "nca_cli", "train", disc_png, "-o", str(out), "--no-plots", *TINY_ARGS, "--checkpoint-every", "3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Wrote ") == 1 and "Training on 2 ranks" in done.stdout
    training = load_model(out).training
    assert training["world_size"] == 2 and training["effective_batch"] == 8 and training["iterations_done"] == 6


def test_a_sweep_on_two_ranks_gives_the_report_of_one(tmp_path):
    args = ["damage", "--sweep", "--radii", "4", "--spacing", "4", "--seeds", "1", "--recover-steps", "20",
            "--device", "cpu"]
    one = subprocess.run([sys.executable, "-m", "nca_cli", *args, "--json", str(tmp_path / "one.json"),
                          "--plot", str(tmp_path / "one.png")], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                          str(free_port()), "-m", "nca_cli", *args, "--json", str(tmp_path / "two.json"), "--plot",
                          str(tmp_path / "two.png")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr[-2000:]
    assert "Sweeping on 2 ranks" in two.stdout and two.stdout.count("Wrote ") == 1
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert len(a["trials"]) > 32  # more than one batch, so both ranks had trials
    assert [t["recovered"] for t in a["trials"]] == [t["recovered"] for t in b["trials"]]
    assert [t["final"] for t in a["trials"]] == pytest.approx([t["final"] for t in b["trials"]], abs=1e-6)
