"""Training in several processes: what a rank knows about the others (``World``), and the
few collectives the training loop needs, on PyTorch's own engine (``torch.distributed``,
``DistributedDataParallel``, ``torchrun``; t2v_core/ddp.py is the entry point).

One process is a world of size 1, and every collective here is then the identity, so the
training loop has one code path. The loop's invariants, which make N ranks train what one
process trains with the same global batch:

- every rank draws the whole step's batch from the seeded sampler and keeps its slice
  (``World.part``), so the data do not depend on the number of ranks;
- a loss that is a mean over rows is computed on the rank's rows, and DDP's gradient
  average makes it the global mean (the slices are equal: the batch must divide evenly);
- a term over the whole batch (the contrastive matrix, mode seeking) is computed by every
  rank on rows gathered with autograd (``World.gather``); the gather's backward sums the
  ranks' gradients into each rank's rows, and DDP's average then gives the global gradient;
- batch norm averages over all ranks' rows (``sync_batch_norm``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates, decides and writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def part(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch`` rows."""
        if batch % self.size:
            raise ValueError(f"[train] batch_size = {batch} must be divisible by the number of "
                             f"training processes ({self.size}): every rank takes an equal slice")
        n = batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's ``x`` concatenated along dim 0 in rank order (the global batch's
        order), differentiable: gradients flow back to each rank's own rows."""
        if not self.distributed:
            return x
        return _gather(x)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Per-rank scalars averaged over the ranks (for the logs)."""
        if not self.distributed or not values:
            return values
        import torch.distributed as dist

        t = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.size).tolist(), strict=True))

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a decision made on rank 0: stop, open a gate)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0, with a backward that sums every rank's
    gradient for this rank's rows (torch's functional collectives)."""
    import torch.distributed as dist
    from torch.distributed._functional_collectives import all_gather_single_autograd

    out = all_gather_single_autograd(x.contiguous(), 0, dist.group.WORLD)
    return out.wait() if hasattr(out, "wait") else out


def world_from_env() -> World:
    """The World that torchrun's environment variables describe (size 1 without them)."""
    env = os.environ
    return World(rank=int(env.get("RANK", 0)), size=int(env.get("WORLD_SIZE", 1)),
                 local_rank=int(env.get("LOCAL_RANK", 0)),
                 local_size=int(env.get("LOCAL_WORLD_SIZE", 1)))


class GatheredBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the rows of every rank, on CPU (``nn.SyncBatchNorm`` refuses CPU
    tensors). Every rank's per-channel sums and sums of squares are gathered with autograd
    and added, so the backward carries every rank's gradient through the shared statistics. The state
    dict is BatchNorm2d's: a checkpoint does not know how it was trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        local = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count])
        stats = _gather(local[None]).sum(0)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp(min=0)
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), m)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def sync_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of ``module`` normalises over all ranks' rows: torch's SyncBatchNorm
    on CUDA, GatheredBatchNorm2d on CPU. Parameters and buffers are kept (the same
    tensors), so optimisers and checkpoints see no difference."""
    if device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GatheredBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            sync_batch_norm(child, device)
    return module
