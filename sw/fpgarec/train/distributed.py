"""torch.distributed helpers: training runs unchanged under ``torchrun --nproc_per_node=N``.

Each rank takes every ``world``-th example of the same seeded permutation; DDP averages the
gradients, so a global batch gives the same update as one process would (up to float order).
Every rank evaluates the same (synchronised) weights, so early stopping agrees without messages.
"""

from __future__ import annotations

import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return rank_and_world()[0] == 0


def init_from_torchrun(launched_by_torchrun: bool) -> bool:
    """Join the process group (gloo, CPU) when started by torchrun; returns whether it did."""
    if launched_by_torchrun and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        return True
    return False


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
