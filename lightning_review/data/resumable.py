"""A training DataLoader whose place in the epoch is part of the Lightning checkpoint.

Resuming mid-epoch must neither repeat nor skip rows. The order of an epoch is a pure function of (seed, epoch, rank,
world size), so the only state is the epoch and how many rows this rank has *trained on*. That count comes from the
trainer's own batch progress, not from the loader's iterator, which runs ahead of training by the prefetched batches.
"""

from __future__ import annotations

from typing import Any, Callable, Sized

import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import UserError


class ResumableSampler(DistributedSampler):
    """A seeded per-epoch shuffle sharded over ranks (torch's DistributedSampler) that can start mid-epoch.

    Subclassing DistributedSampler keeps Lightning from wrapping it in a second distributed sampler. ``len`` stays the
    full epoch: Lightning counts the batches already done from the checkpoint and stops the epoch at the full count.
    """

    def __init__(self, dataset: Sized, *, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0  # a new epoch starts at its beginning
        super().set_epoch(epoch)

    @property
    def repeated_rows(self) -> int:
        """Rows shown twice per epoch so that every rank gets as many (torch pads the shards this way)."""
        return self.total_size - len(self.dataset)


class ResumableLoader(DataLoader):
    """A DataLoader implementing Lightning's ``state_dict`` / ``load_state_dict`` protocol for mid-epoch resume.

    Args:
        batches_done: returns how many batches of the current epoch this rank has trained on (the trainer's batch
            progress); the loader cannot know it itself because Lightning prefetches.
    """

    def __init__(self, dataset, *, sampler: ResumableSampler, batches_done: Callable[[], int], **kwargs: Any):
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "rows_done": self.batches_done() * self.batch_size,
                "num_rows": len(self.dataset), "num_replicas": self.sampler.num_replicas, "seed": self.sampler.seed}

    def load_state_dict(self, state: dict) -> None:
        now = {"num_rows": len(self.dataset), "num_replicas": self.sampler.num_replicas, "seed": self.sampler.seed}
        differences = [f"{key}: {state[key]} in the checkpoint, {value} now" for key, value in now.items()
                       if key in state and state[key] != value]
        if differences:
            raise UserError("cannot resume the data order of this checkpoint: " + "; ".join(differences) +
                             ". The training rows, the number of processes or data.seed changed since it was written;"
                             " resume with the original data and devices, or start a new run without --ckpt_path.")
        epoch, start = state["epoch"], state["rows_done"]
        if start >= self.sampler.num_samples:  # saved at the very end of an epoch: the next one starts afresh
            epoch, start = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self.sampler.start = start


def loader_generator(seed: int) -> torch.Generator:
    """A loader's own generator: its per-iterator base seed then draws nothing from the global RNG, which would
    shift dropout masks between a continuous run and a resumed one."""
    return torch.Generator().manual_seed(seed)
