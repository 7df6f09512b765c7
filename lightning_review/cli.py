"""``python -m lightning_review``: LightningCLI for fit / validate / test / predict (trainer_cli.ReviewCLI), plus the
tool subcommands (export, export-adapter, cost, openai ...), plain functions with their own flags that start without
loading Lightning."""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import shlex
import sys
import warnings
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Callable, Iterator


# name -> (module, attribute): a function, or a dict of functions (subcommands); imported only when run.
TOOLS = {"export": (".export", "export_merged"), "export-adapter": (".export", "export_adapter"),
         "cost": (".openai_ft.commands", "cost"), "openai": (".openai_ft.commands", "COMMANDS"),
         "prepare": (".prepare", "prepare"), "evaluate": (".evaluate.command", "evaluate"),
         "generate": (".generation.command", "generate"),
         "perplexity": (".evaluate.perplexity_command", "perplexity"),
         "collect": (".collect.command", "collect")}


# tools whose packages come with an extra, not with the project: tool -> (the extra, the top-level modules of the
# extra's packages in setup.cfg: openreview-py is imported as openreview). A missing one of those is named with the
# pip command; any other missing module (one of ours, or a base dependency) is a bug and keeps its traceback.
TOOL_EXTRAS = {"collect": ("collect", ("openreview", "requests", "pypdf", "tenacity"))}


def missing_extra(tool: str, exc: ModuleNotFoundError) -> str | None:
    """The extra to install for the module ``exc`` did not find, or None where that module (its top-level package,
    ``exc.name``) is none of ``tool``'s extra's packages."""
    extra, packages = TOOL_EXTRAS.get(tool, (None, ()))
    top_level = (exc.name or "").partition(".")[0]
    return extra if top_level in packages else None


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


def tool_error_message(exc: BaseException, argv: list[str]) -> str:
    """The one line shown for a tool's error, with every API key replaced by its placeholder (``redact_keys``): a
    server or proxy may echo the request (its headers, an address with the key in its path) in its error."""
    from openai import APIConnectionError, APIStatusError

    from .openai_client import redact_keys, status_message, unreachable_message

    message = (unreachable_message(exc) if isinstance(exc, APIConnectionError)
               else status_message(exc) if isinstance(exc, APIStatusError) else str(exc))
    command = tool_command(argv[0])
    if isinstance(command, dict):  # a subcommand's own function
        command = command.get(argv[1]) if len(argv) > 1 else None
    return redact_keys(as_tool_flags(message, command))


TRAINER_COMMANDS = ("fit", "validate", "test", "predict")  # LightningCLI's subcommands


HELP_FLAGS = ("-h", "--help")
FLAG = re.compile(r"--?[A-Za-z]")  # a flag, not a value such as -1


def command_error(argv: list[str]) -> str | None:
    """``_command_error``'s line with every API key replaced by its placeholder (``redact_keys``): it repeats the
    command line's words, which can hold a key (a proxy's address with the key in its path, a key flag's value)."""
    from .openai_client import redact_keys

    error = _command_error(argv)
    return None if error is None else redact_keys(error)


def _command_error(argv: list[str]) -> str | None:
    """One line for a command line whose first word is not a command, or None when it is (or asks for help):

    - no command, or a misspelled one: every command (the trainer's and the tools') and the closest one, instead of
      LightningCLI's usage text, which lists only its own four subcommands (so that ``evaluat`` would be pointed at
      ``validate``);
    - flags before the command (``--model.lora_r 4 fit``, ``-c configs/7b.yaml fit``): the flags named and the
      command line with them after it, instead of jsonargparse's ``invalid choice: '4'`` (it reads the flag's value
      as the command) or its complaint about the config file's keys.

    Flags with no command after them are left to LightningCLI (its ``--help``, and its error for the others)."""
    commands = [*TRAINER_COMMANDS, *TOOLS]
    if not argv:
        listed = f"the commands are {', '.join(commands)} (each with --help)"
        return f"error: a command is needed, e.g. python -m lightning_review fit -c configs/demo.yaml; {listed}"
    if argv[0] in commands or argv[0] in HELP_FLAGS:
        return None
    if not argv[0].startswith("-"):
        listed = f"the commands are {', '.join(commands)} (each with --help)"
        close = difflib.get_close_matches(argv[0], commands, n=1, cutoff=0.6)
        return f"error: {argv[0]} is not a command; " + (f"did you mean {close[0]}? ({listed})" if close else listed)
    at = command_position(argv, commands)
    if at is None or any(word in HELP_FLAGS for word in argv[:at]):
        return None
    top, moved = _top_level_flags(argv[:at]) if argv[at] in TRAINER_COMMANDS else ([], argv[:at])
    flags = [word.split("=", 1)[0] for word in moved if FLAG.match(word)]  # --name=value named as --name
    if not flags:
        return None  # only LightningCLI's own top-level flags (-c with a config keyed by command, --print_config)
    named = flags[0] if len(flags) == 1 else f"{', '.join(flags[:-1])} and {flags[-1]}"
    verb, them = ("comes", "it") if len(flags) == 1 else ("come", "them")
    fixed = _shown_command_line([*top, argv[at], *_after_command(moved, argv[at + 1:])])
    return f"error: {named} {verb} before the command; put {them} after: python -m lightning_review {fixed}"


def _after_command(moved: list[str], rest: list[str]) -> list[str]:
    """The words after the command once the ``moved`` ones are put there, so that each still means what it was
    typed for: later words win (jsonargparse), so a moved config file goes first, and a moved flag after the last
    config file of ``rest`` (``--model.lora_r 4 fit -c demo.yaml`` -> ``fit -c demo.yaml --model.lora_r 4``: before
    it, the file's value would replace the 4), yet before the flags typed after that file."""
    configs, flags, _ = _config_files(moved)
    last = _config_files(rest)[2]
    return [*configs, *rest[:last], *flags, *rest[last:]]


def _config_files(words: list[str]) -> tuple[list[str], list[str], int]:
    """(the config-file flags of ``words`` with their values, the other words, each in its order; where the last
    config file's words end, 0 without one)."""
    configs, others, end, at = [], [], 0, 0
    for chunk, path in _word_chunks(words):
        at += len(chunk)
        if path is None:
            others.extend(chunk)
        else:
            configs.extend(chunk)
            end = at
    return configs, others, end


def _word_chunks(words: list[str]) -> list[tuple[list[str], str | None]]:
    """``words`` cut into a config-file flag with its value (``-c a.yaml``, ``--config=a.yaml``; a last ``-c``
    alone) and its path ("" where none is given), and every other word alone, with None."""
    from .config_files import CONFIG_FLAGS

    chunks, i = [], 0
    while i < len(words):
        name, _, inline = words[i].partition("=")
        if name not in CONFIG_FLAGS:
            chunks.append((words[i:i + 1], None))
        elif inline or i + 1 == len(words):
            chunks.append((words[i:i + 1], inline))
        else:
            chunks.append((words[i:i + 2], words[i + 1]))
        i += len(chunks[-1][0])
    return chunks


def _shown_command_line(words: list[str]) -> str:
    """``words`` as a shell line, each key replaced before quoting: ``'<OPENAI_API_KEY>'`` stays one word, not a
    redirection, when the line is pasted."""
    from .openai_client import redact_keys

    return shlex.join(redact_keys(word) for word in words)


PRINT_CONFIG = "--print_config"  # with config_files.CONFIG_FLAGS, what LightningCLI takes before fit/validate/...
VALUELESS_FLAGS = (*HELP_FLAGS, PRINT_CONFIG)  # given alone before a command; every other flag takes a value


def command_position(argv: list[str], commands: list[str]) -> int | None:
    """Where the command is: the first word that is neither a flag nor the value of the flag before it, so that a
    value named as a command (``--trainer.default_root_dir test fit``) is not read as the command. A flag takes the
    next word as its value (jsonargparse's flags, booleans too, all take one) unless it holds it (``--key=value``),
    is one of VALUELESS_FLAGS, or the next word is a flag. None when that word is not a command, or there is none."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if not FLAG.match(word):
            return i if word in commands else None
        takes_value = "=" not in word and word not in VALUELESS_FLAGS
        i += 2 if takes_value and i + 1 < len(argv) and not FLAG.match(argv[i + 1]) else 1
    return None


def _top_level_flags(words: list[str]) -> tuple[list[str], list[str]]:
    """(LightningCLI's own top-level flags with their values, everything else) of the words before a trainer
    command: ``-c all.yaml fit`` is a config whose top-level keys are the commands, and stays where it is; a config
    of one command's own keys (``-c configs/7b.yaml fit``) goes after it, where it was meant to be."""
    top, moved = [], []
    for chunk, path in _word_chunks(words):
        printing = chunk[0].partition("=")[0] == PRINT_CONFIG
        top_level = printing or (path is not None and not _keyed_by_something_else(path))
        (top if top_level else moved).extend(chunk)
    return top, moved


def _keyed_by_something_else(path: str) -> bool:
    """Whether the config file at ``path`` is a mapping whose keys are not commands (a config of one command,
    given before it). A file that cannot be read or parsed is left to LightningCLI's own message."""
    import yaml

    from .config_files import compose

    node = compose(path) if path else None
    return isinstance(node, yaml.MappingNode) and any(
        key.value not in (*TRAINER_COMMANDS, "subcommand") for key, _ in node.value)


PACKAGE_DIR = Path(__file__).resolve().parent


def _ours(filename: str) -> bool:
    """Whether a warning was raised in this package's code (its file is under the package's directory)."""
    try:
        return Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        return False


@contextmanager
def command_warnings() -> Iterator[None]:
    """While a command runs, a warning raised by this package's code shows as the one line ``warning: <message>``
    on stderr, not Python's ``/path/lightning_review/x.py:123: UserWarning: <message>`` and its source line (nor
    Lightning's format, which takes every path with "lightning" in it for its own); any other warning shows as its
    library or Python formats it. Installed by ``main`` alone and put back when the command ends, so that importing
    or calling the package as a library changes no warning. A ``showwarning``, not a ``formatwarning``: Lightning,
    imported by some commands only once they run, replaces ``warnings.formatwarning`` on import."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not _ours(filename):
            return shown(message, category, filename, lineno, file, line)
        stream = sys.stderr if file is None else file
        if stream is None:  # pythonw: no console
            return
        try:
            stream.write(f"warning: {message}\n")
        except OSError:  # the console is gone: as Python's own showwarning, nothing to say it on
            pass

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:  # unless the command installed its own since
            warnings.showwarning = shown


# bitsandbytes (imported by peft, and by transformers for 4-bit weights) logs this once per process on every CPU with
# AVX512-BF16 where the optional ``kernels`` package (a faster CPU 4-bit matmul from the Hub) is not installed: noise
# for a command run on the CPU, where 4-bit weights are for tests and demos, not speed.
BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_CPU_KERNEL_NOTE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class QuietBitsandbytesCpuKernelNote(logging.Filter):
    """Drops bitsandbytes' "Failed to load CPU gemm_4bit_forward ..." record, and only that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(BNB_CPU_KERNEL_NOTE)


@contextmanager
def quiet_bitsandbytes_cpu_kernel_note() -> Iterator[None]:
    """While a command runs, a filter on bitsandbytes' CPU-backend logger (the record is logged on that logger
    itself, so a filter there sees it) drops that one note; its other messages, and every other logger, are left as
    they are. Installed by ``main`` alone and removed when the command ends, as ``command_warnings``: importing the
    package as a library changes no logger."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    note = QuietBitsandbytesCpuKernelNote()
    logger.addFilter(note)
    try:
        yield
    finally:
        logger.removeFilter(note)


def main(args: list[str] | None = None):
    with command_warnings(), quiet_bitsandbytes_cpu_kernel_note():
        return _main(args)


def _main(args: list[str] | None = None):
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"Tool subcommands (each with --help): {', '.join(TOOLS)}")
    error = command_error(argv)
    if error is not None:
        print(error, file=sys.stderr)
        raise SystemExit(2)  # a usage error, as argparse's
    if argv and argv[0] in TOOLS:
        from jsonargparse import auto_cli

        from .config_errors import PROG, ToolArgumentParser

        try:  # a bad flag or value, a missing required flag or config file: one line (config_errors.explain)
            return auto_cli(tool_command(argv[0]), args=argv[1:], as_positional=False,
                            parser_class=ToolArgumentParser, prog=f"{PROG}{argv[0]}")
        except ModuleNotFoundError as exc:
            extra = missing_extra(argv[0], exc)
            if extra is None:  # not the extra's: a module of ours (a bug), or a base dependency gone
                raise
            raise SystemExit(f"error: {argv[0]} needs the module {exc.name!r}, which is not installed: "
                             f"pip install -e \".[{extra}]\" from the project's directory") from None
        except _user_errors() as exc:  # a clear one-line error, not a traceback, for bad input or a refused request
            raise SystemExit(f"error: {tool_error_message(exc, argv)}") from None
    from .data.datamodule import ReviewDataModule
    from .training.module import LongQLoRAModule
    from .trainer_cli import ReviewCLI

    return ReviewCLI(LongQLoRAModule, ReviewDataModule, save_config_kwargs={"overwrite": True}, args=args)
