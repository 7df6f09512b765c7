"""Lightning callbacks: write the peft adapter at the end of training, write predicted reviews as JSONL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from ..errors import UserError
from ..safe_paths import file_in_the_way


class SaveAdapter(L.Callback):
    """Writes the adapter directory (LoRA + embeddings/norms + RoPE scaling) when ``fit`` ends.

    Args:
        dirpath: where to write; default ``<log_dir>/adapter``.
    """

    def __init__(self, dirpath: str | None = None):
        self.dirpath = dirpath

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """A ``dirpath`` that is, or is under, a file is refused before the model loads: peft found it when the
        run's training was over, with a ValueError's traceback and no adapter."""
        blocker = file_in_the_way(Path(self.dirpath)) if stage == "fit" and self.dirpath else None
        if blocker is not None:
            what = "is a file" if blocker == Path(self.dirpath) else f"is under {blocker}, which is a file"
            raise UserError(f"SaveAdapter's dirpath {self.dirpath} {what}, not a directory (the adapter is written "
                            f"there when fit ends): give a directory")

    def target(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath or os.path.join(trainer.log_dir or trainer.default_root_dir, "adapter"))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        target = self.target(trainer)  # on every rank: trainer.log_dir is a collective call
        if trainer.is_global_zero:  # ZeRO-2 and DDP keep whole weights on each rank; rank 0 writes them
            rank_zero_info(f"adapter written to {pl_module.save_adapter(target)}")


class ReviewWriter(BasePredictionWriter):
    """Appends each predicted review to a JSONL file, one object a line."""

    def __init__(self, output_file: str = "reviews.jsonl"):
        super().__init__(write_interval="batch")
        self.output_file = Path(output_file)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """An ``output_file`` that is a directory, or under a file, is refused before the model loads, not at the
        first review written."""
        if stage != "predict":
            return
        blocker = file_in_the_way(self.output_file.parent)
        if self.output_file.is_dir() or blocker is not None:
            what = ("is a directory" if self.output_file.is_dir() else f"is under {blocker}, which is a file")
            raise UserError(f"ReviewWriter's output_file {self.output_file} {what}: give a file path (the reviews "
                            f"are appended there, one JSON object a line)")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        with self.output_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(prediction) + "\n")
