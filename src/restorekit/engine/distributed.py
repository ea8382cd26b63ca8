"""Multi-process training on PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc_per_node=N -m restorekit train CONFIG ...`` sets RANK, WORLD_SIZE and
LOCAL_RANK; :func:`setup` then joins the process group (NCCL on GPUs, gloo on CPU). Without
those variables everything runs in one process and none of this is used.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from restorekit.errors import ConfigError


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, TensorBoard and checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_kind: str = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun; pick this process's device:
    ``device_kind`` "auto" (the GPU of this local rank when there is one), "cuda" or "cpu"."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device_kind == "auto" else device_kind == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device=cuda, but PyTorch {torch.__version__} sees no CUDA GPU "
            f"({'built without CUDA' if torch.version.cuda is None else 'none visible'}); "
            "use train.device=auto or cpu"
        )
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size == 1:
        return DistributedContext(device=device)
    if not dist.is_initialized():
        # device_id binds NCCL to this rank's GPU at once (no guess of the device at the first
        # collective, and no warning about it)
        dist.init_process_group(
            backend="nccl" if cuda else "gloo", device_id=device if cuda else None
        )
    return DistributedContext(dist.get_rank(), world_size, local_rank, device)


def teardown(context: DistributedContext) -> None:
    """Leave the process group while the interpreter is fully alive.

    DistributedDataParallel objects sit in reference cycles; left to the interpreter's final
    garbage collection they release gloo work after shutdown began, which can abort the process
    ("terminate called without an active exception"). Collect them first, then destroy the group.
    """
    if context.enabled and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def wrap(net: nn.Module, context: DistributedContext) -> nn.Module:
    """DistributedDataParallel (with SyncBatchNorm when the net has batch norm) or ``net``."""
    if not context.enabled:
        return net
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


def any_rank(flag: bool, context: DistributedContext) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop at the same step)."""
    if not context.enabled:
        return flag
    value = torch.tensor([float(flag)], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def from_main(value: float, context: DistributedContext) -> float:
    """Rank 0's ``value`` on every rank (every rank must call this at the same step)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=context.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def mean_over_ranks(values: dict[str, float], context: DistributedContext) -> dict[str, float]:
    """Each value averaged over all processes (every rank must call this at the same step)."""
    if not context.enabled:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return {k: float(v) / context.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()
