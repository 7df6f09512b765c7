"""``python -m lightning_review``: LightningCLI for fit / validate / test / predict."""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from .data.datamodule import ReviewDataModule
from .model.module import LongQLoRAModule


class ReviewCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # One source of truth: the tokenizer is the model's, the row length drives the S2 group size.
        parser.link_arguments("model.checkpoint_dir", "data.tokenizer_dir")
        parser.link_arguments("data.max_seq_length", "model.max_seq_length")


def main(args: list[str] | None = None) -> ReviewCLI:
    return ReviewCLI(LongQLoRAModule, ReviewDataModule, save_config_kwargs={"overwrite": True},
                     args=args)
