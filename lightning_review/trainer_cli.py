"""ReviewCLI: LightningCLI for fit / validate / test / predict, with the arguments linked and the telemetry and
guard callbacks always on."""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI


class ReviewCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        from .training.guard import TrainingGuard
        from .training.telemetry import TrainingTelemetry

        # One source of truth: the tokenizer is the model's, the row length drives the S2 group size.
        parser.link_arguments("model.checkpoint_dir", "data.tokenizer_dir")
        parser.link_arguments("data.max_seq_length", "model.max_seq_length")
        # Always on, configurable (--telemetry.peak_tflops): every run reports throughput and stops on a NaN loss.
        parser.add_lightning_class_args(TrainingTelemetry, "telemetry")
        parser.add_lightning_class_args(TrainingGuard, "guard")
