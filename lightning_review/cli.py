"""``python -m lightning_review``: LightningCLI for fit / validate / test / predict, plus the tool subcommands
(export, export-adapter) that are plain functions with their own flags."""

from __future__ import annotations

import sys
from typing import Callable

from lightning.pytorch.cli import LightningCLI

from .data.datamodule import ReviewDataModule
from .model.module import LongQLoRAModule
from .training.guard import TrainingGuard
from .training.telemetry import TrainingTelemetry


class ReviewCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # One source of truth: the tokenizer is the model's, the row length drives the S2 group size.
        parser.link_arguments("model.checkpoint_dir", "data.tokenizer_dir")
        parser.link_arguments("data.max_seq_length", "model.max_seq_length")
        # Always on, configurable (--telemetry.peak_tflops): every run reports throughput and stops on a NaN loss.
        parser.add_lightning_class_args(TrainingTelemetry, "telemetry")
        parser.add_lightning_class_args(TrainingGuard, "guard")


def tool_commands() -> dict[str, Callable]:
    from .export import export_adapter, export_merged

    return {"export": export_merged, "export-adapter": export_adapter}


def main(args: list[str] | None = None):
    argv = list(sys.argv[1:] if args is None else args)
    tools = tool_commands()
    if argv[:1] in (["-h"], ["--help"]):
        print(f"Tool subcommands (each with --help): {', '.join(tools)}")
    if argv and argv[0] in tools:
        from jsonargparse import auto_cli

        return auto_cli(tools[argv[0]], args=argv[1:], as_positional=False)
    return ReviewCLI(LongQLoRAModule, ReviewDataModule, save_config_kwargs={"overwrite": True}, args=args)
