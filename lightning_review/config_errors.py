"""A jsonargparse failure of fit / validate / test / predict, or of a tool command (prepare, evaluate, generate ...),
as one clear line: where the bad key or value is (the config file and its line, or the command-line flag), the dotted
key, and what to write instead; a missing required flag with what it is; a config file that does not exist.

jsonargparse says "Subcommand 'fit' does not accept option 'model.lora_rank'", "unrecognized arguments:
--model.lora_rank 8" or 'Parser key "model.lora_r": Expected a <class 'int'>. Got value: eight', after a hundred
lines of usage, and never which file or line. ``explain`` turns such a message into
``my.yaml:27: unknown key model.lora_rank; did you mean model.lora_r?`` from the parser's own keys (difflib) and the
config files on the command line (PyYAML's node marks give the line); it returns None for any other failure, which
keeps jsonargparse's own report. ``OneLineErrors`` is the parsers' error() that prints the line: ReviewArgumentParser
(trainer_cli) for the Lightning subcommands, ``ToolArgumentParser`` for the tools' auto_cli. The checks of the config
files themselves, before parsing, and a key's line in a file are config_files'."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
from importlib import import_module

from jsonargparse import ArgumentParser

from .config_files import (CONFIG_FLAGS, children, compose, config_file_problem, files_on_command_line,
                           find_key, subcommand_in, subparser, valid_keys)
from .config_files import yaml_line  # noqa: F401  (importable from here, as before the config files' checks moved)

UNKNOWN_IN_SUBCOMMAND = re.compile(r"^Subcommand '([\w-]+)' does not accept option '([^']+)'$")
UNKNOWN_IN_GROUP = re.compile(r"^Group '([^']+)' does not accept option '([^']+)'$")
UNKNOWN_BEFORE_SUBCOMMAND = re.compile(r"^Option '([^']+)' is not accepted before subcommand '([\w-]+)'$")
UNRECOGNIZED = re.compile(r"^unrecognized arguments: (.*)$", re.S)
BAD_VALUE = re.compile(r'^Parser key "([^"]+)":\s*(.*)$', re.S)
EXPECTED = re.compile(r"^Expected a (.+?)\. Got value: (.*)$", re.S)
UNION = re.compile(r"^Does not validate against any of the Union subtypes\s*Subtypes: \[(.*?)\]\s*Errors:", re.S)
GOT_VALUE = re.compile(r"(?:Got|Given) value: (.*)")
NOT_ACCEPTED = re.compile(r"^Option '([^']+)' is not accepted$")  # a key of a tool's config file
REQUIRED = re.compile(r"^the following arguments are required: (.*)$")
NO_VALUE = re.compile(r"^argument ([^:\s]+): expected one argument$")
NO_SUBCOMMAND = re.compile(r'^expected "subcommand" to be one of .*, but it was not provided\.$')
BAD_SUBCOMMAND = re.compile(r"^argument subcommand: invalid choice: '([^']*)' \(choose from (.*)\)$")
NO_FILE = re.compile(r"^(File does not exist|Path is not a file): '(.*)'$")
LINKED = re.compile(r'^Linked "([^"]+)" must be given via "([^"]+)"\.?$')
AMBIGUOUS = re.compile(r"^ambiguous option: (\S+?)(?:=\S*)? could match (.*)$")
NUMBER = re.compile(r"-\d[\d.e+-]*")
PROG = "python -m lightning_review "  # the tools' prog (cli.main): what follows is the command's name
NESTED_UNKNOWN = re.compile(r"Problem with given class_path '([\w.]+)':\s*Option '(?:init_args\.)?([\w.]+)' is not "
                            r"accepted")
BAD_CLASS = re.compile(r"Problem with given class_path '([\w.]+)':\s*(?:module '([\w.]+)' has no attribute '(\w+)'"
                       r"|No module named '([\w.]+)')")
LISTED = 16  # the most valid keys a message lists
ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "cf.", "vs."}  # a help's words whose period does not end its sentence


def explain(message: str, parser) -> str | None:
    """The clear line for jsonargparse's ``message`` raised by ``parser`` (the root parser of a LightningCLI or of a
    tool's auto_cli, or one of their subcommands' parsers), or None where it is not a bad key, flag or value, a
    missing required flag or a missing config file."""
    root = getattr(parser, "parent_parser", None) or parser
    args = [str(a) for a in (getattr(root, "args", None) or [])]
    subcommand = getattr(parser, "subcommand", None) or subcommand_in(root, args)
    message = message.strip()
    if match := UNKNOWN_IN_SUBCOMMAND.match(message):
        subcommand, key = match.groups()
        return _unknown_key(key, subparser(root, subcommand) or parser, args, subcommand)
    if match := UNKNOWN_IN_GROUP.match(message):
        return _unknown_key(f"{match[1]}.{match[2]}", _owner(match[1], parser, root, subcommand), args, subcommand)
    if match := NOT_ACCEPTED.match(message):
        return _unknown_key(match[1], subparser(root, subcommand) or parser, args, subcommand)
    if match := LINKED.match(message):
        return _linked(match[1], match[2], args, subcommand)
    if match := AMBIGUOUS.match(message):
        flags = ", ".join(flag.strip() for flag in match[2].split(","))
        of = f" of {command_name(root, subcommand)}" if command_name(root, subcommand) else ""
        return f"{match[1]}: unknown option{of} (abbreviations are not accepted); did you mean one of {flags}?"
    if match := UNKNOWN_BEFORE_SUBCOMMAND.match(message):
        return _before_subcommand(match[1], match[2], root, args)
    if match := UNRECOGNIZED.match(message):
        return _unrecognized(match[1], subparser(root, subcommand) or parser, command_name(root, subcommand))
    if match := REQUIRED.match(message):
        return _required(match[1], subparser(root, subcommand) or parser, subcommand, command_name(root, subcommand))
    if match := NO_VALUE.match(message):
        return f"{match[1].split('/')[-1]}: expects a value, none given"
    if NO_SUBCOMMAND.match(message) and command_name(root, None) and getattr(root, "_subcommands_action", None):
        return (f"{command_name(root, None)} needs a subcommand, one of "
                f"{', '.join(root._subcommands_action.choices)} (each with --help)")
    if (match := BAD_SUBCOMMAND.match(message)) and command_name(root, None):
        choices = [c.strip().strip("'") for c in match[2].split(",")]
        return f"{match[1]}: unknown subcommand of {command_name(root, None)}; {suggestion(match[1], choices)}"
    if match := BAD_VALUE.match(message):
        if (missing := NO_FILE.match(match[2].strip())) and match[1].rsplit(".", 1)[-1] == "config":
            return _no_config_file(missing[2], missing[1] == "File does not exist", args)
        return _bad_value(match[1], match[2], args, subcommand, subparser(root, subcommand) or parser)
    return None


def command_name(root, subcommand: str | None) -> str | None:
    """``prepare``, ``openai create`` (a tool's parser, whose prog is ``python -m lightning_review <tool>``) or
    ``fit`` (the LightningCLI's subcommand); None where neither is known."""
    prog = str(getattr(root, "prog", "") or "")
    tool = prog[len(PROG):].strip() if prog.startswith(PROG) else ""
    return " ".join(part for part in (tool, subcommand) if part) or None


class OneLineErrors:
    """A jsonargparse ArgumentParser's error() that prints ``explain``'s line, ``error: <line>``, and exits with
    argparse's status 2, without the usage; any other error keeps jsonargparse's report. The root parser's
    parse_args first checks the config files on the command line (``config_file_problem``): a file that is empty,
    not YAML or not a mapping, a duplicate key, a section that is not a mapping, a linked key set in the file."""

    def parse_args(self, args=None, *rest, **kwargs):
        if (getattr(self, "parent_parser", None) is None and getattr(self, "exit_on_error", True)
                and not jsonargparse_debug()):
            given = [str(a) for a in (sys.argv[1:] if args is None else args)]
            self._exit_with_line(lambda: config_file_problem(self, given))
        return super().parse_args(args, *rest, **kwargs)

    def _exit_with_line(self, line_of) -> None:
        """Print ``line_of()``'s line and exit with status 2 when it gives one; a failure of ``line_of`` itself
        never hides the parser's own report (the caller goes on to it)."""
        try:
            line = line_of()
        except Exception:
            line = None
        if line:
            sys.stderr.write(f"error: {line}\n")
            self.exit(2)

    def error(self, message: str, ex: Exception | None = None):
        # exit_on_error is False in the parsers jsonargparse nests inside a value: their errors are raised and
        # reach the subcommand's parser, which reports them. JSONARGPARSE_DEBUG asks for the exception itself.
        if getattr(self, "exit_on_error", True) and not jsonargparse_debug():
            self._exit_with_line(lambda: explain(message, self))
        super().error(message, ex)


class ToolArgumentParser(OneLineErrors, ArgumentParser):
    """The parser of a tool command (cli.main's auto_cli) and of its subcommands. Abbreviated flags are refused
    (allow_abbrev=False, jsonargparse 5's default): ``--judge`` is an unknown option, "did you mean --judges?", not
    silently --judges."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def jsonargparse_debug() -> bool:
    """Whether JSONARGPARSE_DEBUG is on (jsonargparse then raises its errors instead of reporting them)."""
    try:
        from jsonargparse._common import debug_mode_active

        return debug_mode_active()
    except Exception:  # a private helper: renamed, or a bad value, which jsonargparse itself reports
        return False


# --- the parser's keys --------------------------------------------------------------------------------------------

def _owner(section: str, parser, root, subcommand: str | None):
    """The parser whose keys hold ``section``: ``parser``, or the subcommand's where the root parser reports a
    subcommand's key (as it does with --print_config)."""
    sub = subparser(root, subcommand)
    if sub is not None and parser is root and not children(valid_keys(parser), section):
        return sub
    return parser


def bad_part(key: str, keys: list[str]) -> tuple[str, str, list[str]]:
    """(section, bad name, rest) of an unknown dotted key: the longest prefix that is a section of ``keys``, the
    first name after it that is not, and the names after that (``modle.lora_r``: "", "modle", ["lora_r"])."""
    parts = key.split(".")
    depth = 0
    while depth < len(parts) - 1 and children(keys, ".".join(parts[:depth + 1])):
        depth += 1
    return ".".join(parts[:depth]), parts[depth], parts[depth + 1:]


def suggestion(key: str, keys: list[str], flag: bool = False) -> str:
    """"did you mean <key>?" (``--<key>`` as a ``flag``) for the closest valid name in the bad key's section (the
    rest of the key kept where that makes a valid key), the same name in another section, or the section's names."""
    section, bad, rest = bad_part(key, keys)
    names = children(keys, section)
    prefix = f"{section}." if section else ""
    dash = "--" if flag else ""
    close = difflib.get_close_matches(bad, names, n=1, cutoff=0.6)
    if close:
        fixed = prefix + ".".join([close[0], *rest])
        return f"did you mean {dash}{fixed if fixed in keys else prefix + close[0]}?"
    elsewhere = [k for k in keys if k.rsplit(".", 1)[-1] == bad and k != key]
    if elsewhere:
        return f"did you mean {' or '.join(dash + k for k in elsewhere[:3])}?"
    listed = [dash + name for name in names] if flag and not section else names
    shown = ", ".join(listed[:LISTED]) + (f", ... ({len(names)} in all, --help lists them)" if len(names) > LISTED
                                          else "")
    if section:
        return f"no close match among the keys of {section}: {shown}"
    return f"the options are {shown}" if flag else f"the top-level keys are {shown}"


# --- where a key was given ----------------------------------------------------------------------------------------

def where(key: str, args: list[str], subcommand: str | None, value: str | None = None) -> str | None:
    """``file:line`` or ``--flag`` for the place that set ``key`` (a key of ``subcommand``) last: the command line
    is read in order, a later file or flag over an earlier one. With ``value``, the last place that gave that value
    (a file's value is checked when the file is read, before a later flag could replace it)."""
    import yaml

    start = args.index(subcommand) + 1 if subcommand in args else 0
    places = []  # (position on the command line, place, value given there)
    for i, arg in enumerate(args):
        flag, equals, given = arg.partition("=")
        if i >= start and flag == f"--{key}":
            places.append((i, f"--{key}", given if equals else (args[i + 1] if i + 1 < len(args) else None)))
    for i, path, inner in _file_keys(args, key, subcommand):
        found = find_key(compose(path), inner)
        if found:
            given = found[1].value if isinstance(found[1], yaml.ScalarNode) else None
            places.append((i, f"{path}:{found[0].start_mark.line + 1}", given))
    matching = [p for p in places if value is not None and p[2] == value]
    return max(matching or places)[1] if places else None


def _file_keys(args: list[str], key: str, subcommand: str | None):
    """(position, file, the key's parts inside that file) for each config file that could hold ``key``."""
    full = ([subcommand] if subcommand else []) + key.split(".")
    for i, path, prefix in files_on_command_line(args, subcommand):
        if full[:len(prefix)] == prefix and len(full) > len(prefix):
            yield i, path, full[len(prefix):]


# --- the messages -------------------------------------------------------------------------------------------------

def _unknown_key(key: str, parser, args, subcommand) -> str:
    """An unknown key in a config file (or an environment variable, said without a place): the file's line and the
    key, down to its first wrong name (``modle:``, not ``modle.checkpoint_dir``)."""
    keys = valid_keys(parser)
    section, bad, rest = bad_part(key, keys)
    wrong = f"{section}.{bad}" if section else bad
    place = where(wrong, args, subcommand) or where(key, args, subcommand)
    if place and place.startswith("--"):
        return f"{place}: unknown option of {subcommand}; {suggestion(key, keys, flag=True)}"
    return f"{place + ': ' if place else ''}unknown key {wrong}; {suggestion(wrong if rest else key, keys)}"


def _unrecognized(rest: str, parser, command: str | None) -> str | None:
    """Unknown flags (jsonargparse names the first): each with the closest valid one (``-c``, fit's short flag, is
    --config where only that is accepted). A value without a flag is named as such."""
    tokens = rest.split()
    flags = [token.split("=", 1)[0] for token in tokens if token.startswith("-") and not NUMBER.fullmatch(token)]
    of = f" of {command}" if command else ""
    if not flags:
        return f"{tokens[0]}: unexpected value{of}; every value follows its --flag" if tokens and command else None
    options = {option for action in parser._actions for option in action.option_strings}
    keys = valid_keys(parser) + (["config"] if "--config" in options else [])
    fixes = []
    for flag in flags:
        if flag == "-c" and "--config" in options:
            fix = "did you mean --config?"
        else:
            fix = suggestion(flag.lstrip("-"), keys, flag=True)
        fixes.append(f"{flag}: unknown option{of}; {fix}")
    return "; ".join(fixes)


def _required(names: str, parser, subcommand: str | None, command: str | None) -> str:
    """Required flags not given: each flag and, from its help, what it is."""
    prefix = f"{subcommand}." if subcommand else ""
    keys = [key.strip()[len(prefix):] if key.strip().startswith(prefix) else key.strip() for key in names.split(",")]
    helps = {action.dest: action.help for action in parser._actions if isinstance(action.help, str)}
    flags = [f"--{key}" for key in keys]
    what = [f"--{key}: {first_sentence(helps[key])}" for key in keys if helps.get(key)]
    by = f" by {command}" if command else ""
    if len(flags) == 1:
        return f"{flags[0]} is required{by}" + (f": {what[0].split(': ', 1)[1]}" if what else "")
    return f"{', '.join(flags[:-1])} and {flags[-1]} are required{by}" + (f". {' '.join(what)}" if what else "")


def first_sentence(help_text: str) -> str:
    """A parameter's help up to its first full stop, on one line, without the docstring's double backquotes. The
    period of an abbreviation (e.g., i.e., etc.) is not a full stop."""
    text = " ".join(help_text.replace("``", "").split())
    ends = (m.end() for m in re.finditer(r"\S*\.(?=\s)", text) if m[0].lstrip("([\"'").lower() not in ABBREVIATIONS)
    sentence = text[:next(ends, len(text))]
    return sentence if sentence.endswith(".") else sentence + "."


def _no_config_file(path: str, missing: bool, args: list[str]) -> str:
    """The config file given with -c / --config that does not exist (or is a directory): the flag, the path as
    given and, where that was relative, the path it was looked for at."""
    given = None
    for i, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        value = value if equals else (args[i + 1] if i + 1 < len(args) else "")
        if flag in CONFIG_FLAGS and value and os.path.abspath(value) == os.path.abspath(path):
            given = f"{flag} {value}"
            at = "" if os.path.abspath(value) == value else f" {path}"
    wrong = "does not exist" if missing else "is not a file" + (" (a directory)" if os.path.isdir(path) else "")
    return f"{given}: the config file{at} {wrong}" if given else f"the config file {path} {wrong}"


def _before_subcommand(key: str, subcommand: str, root, args) -> str | None:
    """A subcommand's key given before the subcommand (``-c my.yaml fit``, my.yaml holding fit's keys)."""
    sub = subparser(root, subcommand)
    if sub is None or key not in valid_keys(sub):
        return None
    place = where(key, args, None) or key
    return (f"{place}: {key} is a setting of {subcommand}, given before it: put -c FILE after the subcommand "
            f"(python -m lightning_review {subcommand} -c FILE) or nest the file's settings under {subcommand}:")


def type_name(text: str) -> str:
    """``<class 'int'>`` as ``int``, ``typing.Literal['a', 'b']`` as ``one of 'a', 'b'``, NoneType as null."""
    text = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", text.strip())
    text = re.sub(r"\btyping\.", "", text)
    text = re.sub(r"\b(?:[a-z_]\w*\.)+([A-Z]\w*)", r"\1", text)  # module paths of classes
    literal = re.fullmatch(r"Literal\[(.*)\]", text)
    return f"one of {literal[1]}" if literal else text.replace("NoneType", "null")


def environment_variable(key: str, parser) -> str | None:
    """The environment variable that set ``key`` of ``parser`` (``PL_FIT__TRAINER__MAX_STEPS``), where the parser
    reads them (JSONARGPARSE_DEFAULT_ENV=true, or default_env) and it is set; else None."""
    try:
        from types import SimpleNamespace

        from jsonargparse._formatters import get_env_var  # jsonargparse's own naming of a key's variable

        if not getattr(parser, "default_env", False):
            return None
        name = get_env_var(parser, SimpleNamespace(dest=key))
    except Exception:  # a private helper: renamed; the message then names no variable
        return None
    return name if name in os.environ else None


def _bad_value(key: str, detail: str, args, subcommand, parser=None) -> str | None:
    """A value of the wrong type (or an unknown init argument of a class_path value): where it was given, the key,
    the expected type and the value."""
    if match := NESTED_UNKNOWN.search(detail):
        return _nested_unknown(key, match[1], match[2], args, subcommand)
    if match := BAD_CLASS.search(detail):
        return _bad_class(key, match[1], match[2], match[4], args, subcommand)
    if match := EXPECTED.match(detail):
        expected, got = type_name(match[1]), match[2].strip()
    elif match := UNION.match(detail):
        expected = " or ".join(type_name(t) for t in _split_types(match[1]))
        got = got_match[1].strip() if (got_match := GOT_VALUE.search(detail)) else None
    else:
        return None
    if expected == "float" and got is not None and got.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        expected = "a finite float"  # jsonargparse refuses NaN and infinity: "expects float, got 'inf'" puzzled
    env = environment_variable(key, parser) if parser is not None else None
    if env is not None and (got is None or os.environ[env].strip() == got):
        # jsonargparse reads the variables before the config files: the file's line would be the wrong place
        place = f"the environment variable {env}"
    else:
        place = where(key, args, subcommand, value=got)
    got_text = f", got {got!r}" if got is not None else ""
    if place and place.startswith("--"):
        return f"{place} expects {expected}{got_text}"
    return f"{place + ': ' if place else ''}{key} expects {expected}{got_text}"


def _split_types(text: str) -> list[str]:
    """``list[X], <class 'Y'>, <class 'NoneType'>`` split at its top-level commas."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char in "[(") - (char in "])")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in (*parts, current) if p.strip()]


def _nested_unknown(key: str, class_path: str, name: str, args, subcommand) -> str:
    """An unknown init argument of a class given by class_path (a callback's, a logger's): its line in the file and
    the closest of the class's parameters."""
    place = None
    for _, path, inner in _file_keys(args, key, subcommand):
        line = _init_arg_line(path, inner, class_path, name)
        place = f"{path}:{line}" if line else place
    flags = (f"--{key}.{name}", f"--{key}.init_args.{name}")
    place = place or next((arg.split("=", 1)[0] for arg in args if arg.split("=", 1)[0] in flags), None)
    try:
        module, _, attribute = class_path.rpartition(".")
        params = [p.name for p in inspect.signature(getattr(import_module(module), attribute)).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
    except Exception:  # not importable: jsonargparse said so already; no suggestion
        params = []
    close = difflib.get_close_matches(name, params, n=1, cutoff=0.6)
    fix = f"; did you mean {close[0]}?" if close else (f"; it takes {', '.join(params[:LISTED])}" if params else "")
    return f"{place + ': ' if place else ''}unknown key {name} of {class_path} (in {key}){fix}"


def _init_arg_line(path: str, parts: list[str], class_path: str, name: str) -> int | None:
    """The line of ``name`` in the init_args of the item of ``parts`` (a class_path mapping, or a list of them) whose
    class_path is ``class_path``."""
    import yaml

    found = find_key(compose(path), parts)
    node = found[1] if found else None
    line = None
    for item in node.value if isinstance(node, yaml.SequenceNode) else [node]:
        if not isinstance(item, yaml.MappingNode):
            continue
        given = getattr((find_key(item, ["class_path"]) or (None, None))[1], "value", "")
        if given != class_path and class_path.rsplit(".", 1)[-1] != given:
            continue
        arg = find_key(item, ["init_args", name]) or find_key(item, [name])
        line = arg[0].start_mark.line + 1 if arg else line
    return line


def _linked(target: str, source: str, args, subcommand) -> str:
    """A key set from another (ReviewCLI's link_arguments) given itself."""
    place = where(target, args, subcommand) or f"--{target}"
    return f"{place}: {target} follows {source}; set {source} instead"


def _bad_class(key: str, class_path: str, module: str | None, no_module: str | None, args, subcommand) -> str:
    """A class_path (a callback's, a logger's) that does not import: its line in the file (or the flag) and the
    closest class of its module."""
    import yaml

    place = None
    for _, path, inner in _file_keys(args, key, subcommand):
        found = find_key(compose(path), inner)
        node = found[1] if found else None
        for item in node.value if isinstance(node, yaml.SequenceNode) else [node]:
            if isinstance(item, yaml.ScalarNode) and item.value == class_path:
                place = f"{path}:{item.start_mark.line + 1}"
            hit = find_key(item, ["class_path"]) if isinstance(item, yaml.MappingNode) else None
            if hit and getattr(hit[1], "value", None) == class_path:
                place = f"{path}:{hit[0].start_mark.line + 1}"
    place = place or next((arg.split("=", 1)[0].rstrip("+") for arg in args if arg.split("=", 1)[0].rstrip("+")
                           == f"--{key}"), None)
    fix = ""
    if module:
        attribute = class_path[len(module) + 1:].split(".", 1)[0]
        rest = class_path[len(module) + 1 + len(attribute):]
        try:
            loaded = import_module(module)
            names = sorted({n for n in [*dir(loaded), *getattr(loaded, "__all__", [])] if not n.startswith("_")})
        except Exception:
            names = []
        close = difflib.get_close_matches(attribute, names, n=1, cutoff=0.6)
        fix = f"; did you mean {module}.{close[0]}{rest}?" if close else f"; {module} has no {attribute}"
    elif no_module:
        fix = f"; there is no module {no_module}"
    return f"{place + ': ' if place else ''}unknown class {class_path} (in {key}){fix}"
