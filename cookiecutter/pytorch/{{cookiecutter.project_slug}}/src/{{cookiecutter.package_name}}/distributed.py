"""Joining the job's process group from mldock's cluster facts.

mldock reads each platform's own description of the job (SageMaker ``resourceconfig.json``,
Vertex AI ``CLUSTER_SPEC``, Azure ML ``MASTER_ADDR``/``RANK``/``WORLD_SIZE``; ``mldock train
--instances N`` lays out the SageMaker form locally) and hands every host the same facts:
``ctx.world_size``, ``ctx.rank``, ``ctx.local_rank``, ``ctx.master_addr``, ``ctx.master_port``.
That is all ``torch.distributed`` needs, so no launcher (``torchrun``) is involved: one process
per host, rank 0 on the primary host. A job on one host skips the process group altogether.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

DEFAULT_PORT = 29500
"""The rendezvous port on the primary host when the platform names none (SageMaker does not)."""


@dataclass(frozen=True)
class Group:
    """Where this process trains: its rank, how many ranks, its device, and the backend."""

    rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None: a single process, no process group

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


@contextlib.contextmanager
def process_group(ctx, *, port: int = DEFAULT_PORT, timeout_s: float = 300) -> Iterator[Group]:
    """Join the job's process group for the ``with`` block (NCCL on GPUs, gloo on CPUs).

    ``timeout_s`` bounds every collective: a host that died mid-job makes the others fail after
    that long instead of waiting forever (mldock stops them at once anyway).
    """
    device = _device(ctx.local_rank)
    if ctx.world_size < 2:
        yield Group(0, 1, device, None)
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    address = f"tcp://{ctx.master_addr}:{ctx.master_port or port}"
    dist.init_process_group(backend, init_method=address, rank=ctx.rank,
                            world_size=ctx.world_size, timeout=timedelta(seconds=timeout_s))
    try:
        yield Group(ctx.rank, ctx.world_size, device, backend)
    finally:
        dist.destroy_process_group()


def broadcast_object(value, group: Group):
    """``value`` as rank 0 has it, on every rank (checkpoint state, so all ranks resume alike)."""
    if not group.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across_ranks(values: list[float], group: Group) -> list[float]:
    """Element-wise sums of ``values`` over every rank (epoch loss totals)."""
    if not group.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=group.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()
