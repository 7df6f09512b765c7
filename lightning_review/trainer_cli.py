"""ReviewCLI: LightningCLI for fit / validate / test / predict, with the arguments linked and the telemetry and
guard callbacks always on; a resume with other model settings is refused, and a user's mistake is one line."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .config_errors import PROG, OneLineErrors
from .errors import UserError


class ReviewArgumentParser(OneLineErrors, LightningArgumentParser):
    """A misspelled key or a value of the wrong type, in a config file or on the command line, a missing config file
    or required flag, is one line naming the file and line (or the flag), the key and the fix
    (config_errors.explain), with argparse's exit status 2; any other parser error keeps jsonargparse's report.
    Abbreviated flags are refused (allow_abbrev=False), as the tool commands' parsers do: ``--trainer.max_st`` is an
    unknown option, "did you mean --trainer.max_steps?", not silently --trainer.max_steps."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


class ReviewCLI(LightningCLI):
    def __init__(self, *args, **kwargs) -> None:
        """A user's mistake (UserError: a bad setting, file or checkpoint, a refused resume) ends in one line,
        ``error: <message>``, and exit status 1, as the tool commands do; any other exception is our bug and keeps
        its traceback. A misspelled key or a mistyped value is one line too (ReviewArgumentParser), with status 2."""
        kwargs.setdefault("parser_class", ReviewArgumentParser)
        # the usage lines name the command a user types, not __main__.py (the tool commands' PROG)
        kwargs.setdefault("parser_kwargs", {"prog": PROG.rstrip()})
        try:
            super().__init__(*args, **kwargs)
        except UserError as exc:
            raise SystemExit(f"error: {exc}") from None

    def add_arguments_to_parser(self, parser) -> None:
        from .training.guard import TrainingGuard
        from .training.module import LINKED_SETTINGS
        from .training.telemetry import TrainingTelemetry

        # One source of truth: the tokenizer is the model's, the row length drives the S2 group size.
        parser.link_arguments("model.checkpoint_dir", "data.tokenizer_dir")
        for name, source in LINKED_SETTINGS.items():  # the module's errors name these sources
            parser.link_arguments(source, f"model.{name}")
        # Always on, configurable (--telemetry.peak_tflops): every run reports throughput and stops on a NaN loss.
        parser.add_lightning_class_args(TrainingTelemetry, "telemetry")
        parser.add_lightning_class_args(TrainingGuard, "guard")

    def _parse_ckpt_path(self) -> None:
        """Refuse ``--ckpt_path`` with model settings other than the checkpoint's, listing every difference.

        Replaces LightningCLI's version, which loads the checkpoint's hyperparameters over the parsed config: a
        changed setting (``--model.lora_r 16``) was silently replaced by the checkpoint's and the run went on. Here
        the config stays as the user gave it, so settings that may change on a resume (RESUMABLE_MODEL_SETTINGS)
        take effect, any other difference is refused before the model loads, and a corrupt file is named. Data
        settings are compared when the DataModule's state is restored. A fit whose time limit (trainer.max_time)
        the checkpoint's run has spent already is refused too (trainer_checks.spent_time_problem), before the model
        loads: Lightning stopped it before its first step, with exit status 0.

        Why a private method: Lightning 2.6 (2.6.6, the newest release) merges the checkpoint's hyperparameters
        here, called by ``LightningCLI.__init__`` between ``parse_arguments`` and ``before_instantiate_classes``, and
        has no public switch for it. Those two public hooks cannot do the job: the check fits in
        ``parse_arguments``, but the merge would still run and (tried on configs/demo.yaml) put the checkpoint's
        values back over resumable settings, set ``data.tokenizer_dir`` to a moved model's old
        ``checkpoint_dir`` through the argument link, and stop the run with a parser usage error when the
        checkpoint records a setting the module no longer has; undoing all that later would mean reversing a
        private step's side effects. Lightning's master branch has a public hook, ``adapt_checkpoint_hparams``
        (pull request 21408; not in 2.6.6): once released, this check can move to ``parse_arguments`` (before
        Lightning's own load, which would not name a corrupt file) and that hook return ``{}`` so that nothing is
        merged. Until then tests/test_cli.py (test_lightning_still_calls_the_resume_check) fails,
        saying so, if a Lightning release renames this method or stops calling it."""
        from .training.module import model_setting_differences
        from .artifacts.settings_check import refuse_config_change
        from .training.resume import load_checkpoint_file
        from .training.trainer_checks import spent_time_problem

        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        ckpt_path = self.config[subcommand].get("ckpt_path")
        # None; "last" or "best", which Lightning looks up; a DeepSpeed directory; or a missing file, which
        # Lightning reports: the module's on_load_checkpoint compares the settings of those.
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        checkpoint = load_checkpoint_file(ckpt_path)
        saved = checkpoint.get("hyper_parameters")
        if saved:
            refuse_config_change(model_setting_differences(saved, self.config[subcommand].model.as_dict()))
        # a time limit the checkpoint's run has spent already: Lightning would stop before the first step, exit 0
        if subcommand == "fit" and (problem := spent_time_problem(self.config[subcommand].get("trainer") or {},
                                                                   checkpoint, ckpt_path)):
            raise UserError(problem)

    def parse_arguments(self, parser, args) -> None:
        """The Trainer's settings, seed_everything and ``--ckpt_path`` checked once parsed, before anything is built
        or seeded (training.trainer_checks): every bad one named on one line, not Lightning's traceback (after the
        model loaded, for most)."""
        from .training.trainer_checks import ckpt_path_problem, seed_problem, trainer_problems

        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        problems = trainer_problems(config.get("trainer") or {}, subcommand)
        if problem := seed_problem(config.get("seed_everything")):
            problems.append(problem)
        if problem := ckpt_path_problem(config.get("ckpt_path"), subcommand):
            problems.append(problem)
        if problems:
            raise UserError("; ".join(problems))

    def instantiate_trainer(self, **kwargs):
        """Lightning's refusal of a trainer setting (no GPU backend, a precision plugin's missing package, a
        negative max_steps) as one line naming the trainer settings, not a traceback; under DeepSpeed, a
        checkpoint directory read with torch's weights-only loader (resume.read_deepspeed_checkpoints_safely)."""
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from .training.resume import read_deepspeed_checkpoints_safely

        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ImportError) as exc:
            raise UserError(f"the trainer settings are refused by Lightning: {exc} (python -m lightning_review "
                            f"{self.subcommand} --help lists the trainer.* settings)") from None
        read_deepspeed_checkpoints_safely(trainer.strategy)  # DeepSpeed's own loader would unpickle with code
        return trainer

    def after_instantiate_classes(self) -> None:
        """Missing tokenizer files are named before the model loads, not reported by transformers as a missing
        sentencepiece package when the data is set up."""
        from .artifacts.checkpoint_files import check_tokenizer_files

        super().after_instantiate_classes()
        if self.datamodule is not None and "tokenizer_dir" in self.datamodule.hparams:
            check_tokenizer_files(self.datamodule.hparams.tokenizer_dir)
