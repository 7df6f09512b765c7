"""``python -m lightning_review``: LightningCLI for fit / validate / test / predict (trainer_cli.ReviewCLI), plus the
tool subcommands (export, export-adapter, cost, openai ...), plain functions with their own flags that start without
loading Lightning."""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from importlib import import_module
from typing import Callable


# name -> (module, attribute): a function, or a dict of functions (subcommands); imported only when run.
TOOLS = {"export": (".export", "export_merged"), "export-adapter": (".export", "export_adapter"),
         "cost": (".openai_ft.commands", "cost"), "openai": (".openai_ft.commands", "COMMANDS"),
         "prepare": (".prepare", "prepare"), "evaluate": (".evaluate.command", "evaluate"),
         "generate": (".generation.command", "generate"),
         "perplexity": (".evaluate.perplexity_command", "perplexity"),
         "collect": (".collect.command", "collect")}


# tools whose packages come with an extra, not with the project: a missing one is named with the pip command
TOOL_EXTRAS = {"collect": "collect"}


def tool_command(name: str) -> Callable | dict[str, Callable]:
    module, attribute = TOOLS[name]
    return getattr(import_module(module, __package__), attribute)


def _user_errors() -> tuple[type[BaseException], ...]:
    from openai import OpenAIError

    from .errors import UserError
    from .openai_ft.jobs import FineTuneFailed
    from .openai_ft.tokens import EncodingUnavailableError

    # A ValueError that is not a UserError is our bug (or a library's): it keeps its traceback.
    return (UserError, FileNotFoundError, FineTuneFailed, EncodingUnavailableError, OpenAIError)


def as_tool_flags(message: str, command: Callable | None) -> str:
    """``data.<name>`` in an error written for fit's config, as the flag ``--<name>`` where the tool command has a
    parameter of that name (prepare's ``--task``, ``--rating_line``, ...), so the fix names a flag the user can give."""
    if command is None:
        return message
    names = set(inspect.signature(command).parameters)
    return re.sub(r"\bdata\.(\w+)", lambda m: f"--{m.group(1)}" if m.group(1) in names else m.group(0), message)


TRAINER_COMMANDS = ("fit", "validate", "test", "predict")  # LightningCLI's subcommands


def unknown_command(name: str | None) -> str:
    """One line for a missing or misspelled command, instead of LightningCLI's usage text, which lists only its own
    four subcommands (so that ``evaluat`` would be pointed at ``validate``)."""
    commands = [*TRAINER_COMMANDS, *TOOLS]
    listed = f"the commands are {', '.join(commands)} (each with --help)"
    if name is None:
        return f"error: a command is needed, e.g. python -m lightning_review fit -c configs/demo.yaml; {listed}"
    close = difflib.get_close_matches(name, commands, n=1, cutoff=0.6)
    return f"error: {name} is not a command; " + (f"did you mean {close[0]}? ({listed})" if close else listed)


def main(args: list[str] | None = None):
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"Tool subcommands (each with --help): {', '.join(TOOLS)}")
    if not argv or (not argv[0].startswith("-") and argv[0] not in TOOLS and argv[0] not in TRAINER_COMMANDS):
        print(unknown_command(argv[0] if argv else None), file=sys.stderr)
        raise SystemExit(2)  # a usage error, as argparse's
    if argv and argv[0] in TOOLS:
        from jsonargparse import auto_cli

        from .config_errors import PROG, ToolArgumentParser

        try:  # a bad flag or value, a missing required flag or config file: one line (config_errors.explain)
            return auto_cli(tool_command(argv[0]), args=argv[1:], as_positional=False,
                            parser_class=ToolArgumentParser, prog=f"{PROG}{argv[0]}")
        except ModuleNotFoundError as exc:
            extra = TOOL_EXTRAS.get(argv[0])
            if extra is None:
                raise
            raise SystemExit(f"error: {argv[0]} needs the module {exc.name!r}, which is not installed: "
                             f"pip install -e \".[{extra}]\" from the project's directory") from None
        except _user_errors() as exc:  # a clear one-line error, not a traceback, for bad input or a refused request
            from openai import APIConnectionError

            from .openai_client import unreachable_message

            message = unreachable_message(exc) if isinstance(exc, APIConnectionError) else str(exc)
            command = tool_command(argv[0])
            if isinstance(command, dict):  # a subcommand's own function
                command = command.get(argv[1]) if len(argv) > 1 else None
            raise SystemExit(f"error: {as_tool_flags(message, command)}") from None
    from .data.datamodule import ReviewDataModule
    from .training.module import LongQLoRAModule
    from .trainer_cli import ReviewCLI

    return ReviewCLI(LongQLoRAModule, ReviewDataModule, save_config_kwargs={"overwrite": True}, args=args)
