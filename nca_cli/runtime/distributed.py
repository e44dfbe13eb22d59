"""Data-parallel training on PyTorch's own distributed engine (torchrun: gloo on CPUs, NCCL on GPUs).

Every rank holds the same model and a shard of the sample pool; each trains on its own batch, the
gradients are averaged across ranks before the step (so every rank takes the same step and the
weights stay identical), and rank 0 alone writes files. One iteration of N ranks with batch B is
one iteration of batch N x B.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import NCAError

RENDEZVOUS_SECONDS = 120  # how long ranks wait for each other to start (NCA_RENDEZVOUS_TIMEOUT overrides)


@dataclass(frozen=True)
class World:
    """Where this process stands among the ranks of one run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_environment(device: torch.device) -> World:
    """The torchrun world this process was started in (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT), joined; SINGLE when it was not started by torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    world = World(rank=int(os.environ.get("RANK", "0")), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            seconds = float(os.environ.get("NCA_RENDEZVOUS_TIMEOUT", RENDEZVOUS_SECONDS))
            dist.init_process_group(backend, rank=world.rank, world_size=world.size,
                                    timeout=datetime.timedelta(seconds=seconds))
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NCAError(f"cannot join the torchrun world of {size} ranks: {first}") from None
    return world


def leave(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(parameters, world: World) -> None:
    """Replace every gradient by its mean over the ranks."""
    if not world.active:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world.size


def mean(value: float, world: World) -> float:
    """The mean of a number over the ranks (a batch loss, say)."""
    if not world.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t) / world.size


def agree(flag: bool, world: World) -> bool:
    """True on every rank if it is true on any: a stop asked for on one rank stops all of them at
    the same iteration."""
    if not world.active:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t)


def largest(value: float, world: World) -> float:
    """The largest value over the ranks (the time spent, so that a time budget ends all at once)."""
    if not world.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def gather(tensor: torch.Tensor, world: World) -> list[torch.Tensor]:
    """Every rank's tensor (same shape on all ranks), in rank order, on every rank (CPU)."""
    if not world.active:
        return [tensor.cpu()]
    parts = [torch.empty_like(tensor) for _ in range(world.size)]
    dist.all_gather(parts, tensor.contiguous())
    return [p.cpu() for p in parts]


def summed(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The elementwise sum of every rank's tensor (same shape on all ranks), on every rank."""
    if not world.active:
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard(count: int, world: World) -> range:
    """This rank's share of `count` items (pool entries, sweep trials): a contiguous block."""
    per, extra = divmod(count, world.size)
    start = world.rank * per + min(world.rank, extra)
    return range(start, start + per + (1 if world.rank < extra else 0))
