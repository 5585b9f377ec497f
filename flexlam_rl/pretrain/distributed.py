"""Data-parallel pretraining under ``torchrun``: one process per device, gradients averaged by DDP.

``torchrun --standalone --nproc_per_node=N -m flexlam_rl.cli.pretrain ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`context` turns them into a :class:`Context` (``gloo`` on the
CPU, ``nccl`` on CUDA). Every step's global batch is the one a single process would draw from
``(seed, step)``; rank r trains on its r-th contiguous shard, and since the LAM has no layer that
mixes examples (GroupNorm normalizes each frame on its own) the averaged gradient is the
single-process one, up to floating-point summation order. Rank 0 alone writes.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from ..errors import ConfigError, FlexLAMError

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run initialized the process group, so it tears it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size``."""
        if batch_size % self.world:
            raise ConfigError(f"train.batch_size={batch_size} must be divisible by the {self.world} processes, so every "
                              f"process trains on an equal shard of each step's batch.")
        per = batch_size // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over all processes (itself in a single process)."""
        if not self.active:
            return value
        value = value.detach().clone()
        _guard(dist.all_reduce, value, op=dist.ReduceOp.SUM)
        return value / self.world

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (e.g. a run directory named from the clock)."""
        if not self.active:
            return value
        box = [value]
        _guard(dist.broadcast_object_list, box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            _guard(dist.barrier)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def context(device: torch.device) -> Context:
    """The process group ``torchrun`` asked for (started here if nobody did), or a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank, local_rank = _launched_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's collectives run on the current device: this rank's own GPU
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
        owns = True
    return Context(rank=rank, world=world, local_rank=local_rank, owns_group=owns)


def _launched_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 outside torchrun): the one reading of the rank."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """False in the ``torchrun`` workers other than rank 0: they train, and leave reporting to rank 0 (the
    :attr:`Context.is_main` of a process before its group exists)."""
    return Context(rank=_launched_rank()).is_main


def device_for(device: torch.device) -> torch.device:
    """Each process of a multi-GPU run takes the GPU of its ``LOCAL_RANK``."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def backward(loss: torch.Tensor, ctx: Context) -> None:
    """``loss.backward()``; under DDP it all-reduces gradients, which fails when a peer process died."""
    if ctx.active:
        _guard(loss.backward)
    else:
        loss.backward()


def _guard(fn, /, *args, **kwargs):  # noqa: ANN001, ANN202  (a thin pass-through)
    """Collective ops fail when a peer process died; say that, and how to go on."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, dist.DistBackendError) as exc:
        raise FlexLAMError(f"Another training process of this run stopped ({type(exc).__name__}: {exc}). Rerun the same "
                           f"torchrun command to resume from the last checkpoint.") from None
