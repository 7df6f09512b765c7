"""The config files on a command line, checked before jsonargparse parses them, and where a key is in one.

jsonargparse loads a YAML file into a dict and reports what it then finds wrong with the keys, without the file's
lines: a key given twice silently keeps the last, an empty file or a list is "not a mapping" at no line, plain text
is a string value. ``config_file_problem`` reads each config file on the command line itself, with PyYAML's node
tree, and names the file and the line of the first problem: not YAML, empty, not a mapping, a duplicate key (with
the first one's line), a section given as a value or a list, a linked key (model.max_seq_length) set in the file.
``compose``, ``find_key`` and ``yaml_line`` map a dotted key to its line in a file, which config_errors' messages
use for a bad key or value. A module apart from config_errors.py, which words the errors jsonargparse raises:
reading and checking the files is a job of its own, and config_errors only uses its results (imports from here).
Nothing here imports config_errors."""

from __future__ import annotations

from pathlib import Path

A_CONFIG = "a config file must be a YAML mapping of keys to values (key: value, a section's keys indented under it)"
CONFIG_FLAGS = ("-c", "--config")
NOT_KEYS = {"help", "config", "print_config", "print_shtab"}


# --- the parser's keys --------------------------------------------------------------------------------------------

def subparser(root, subcommand: str | None):
    """The parser of ``subcommand`` (fit's), or None."""
    action = getattr(root, "_subcommands_action", None)
    return action.choices.get(subcommand) if action is not None and subcommand else None


def subcommand_in(root, args: list[str]) -> str | None:
    """The first of ``args`` that is one of the root parser's subcommands, or None."""
    action = getattr(root, "_subcommands_action", None)
    if action is None:
        return None
    return next((a for a in args if a in action.choices), None)


def valid_keys(parser) -> list[str]:
    """Every dotted key ``parser`` accepts (``model.lora_r``, ``trainer.callbacks``), not help or config flags."""
    keys = set()
    for action in parser._actions:
        dest = action.dest
        if not isinstance(dest, str) or dest in NOT_KEYS or dest.endswith(".help") or dest == "==SUPPRESS==":
            continue
        keys.add(dest)
    return sorted(keys)


def children(keys: list[str], section: str) -> list[str]:
    """The names one level under ``section`` ("" for the top level)."""
    prefix = f"{section}." if section else ""
    return sorted({k[len(prefix):].split(".")[0] for k in keys if k.startswith(prefix) and len(k) > len(prefix)})


# --- the config files on the command line -------------------------------------------------------------------------

def files_on_command_line(args: list[str], subcommand: str | None) -> list[tuple[int, str, list[str]]]:
    """(position, file, key of the file's top level) of each config file on the command line, keys counted from the
    root parser: ``-c`` / ``--config`` before the subcommand is at the top (its ``fit:`` holds fit's keys), after it
    at ``[fit]``; ``fit ... --model model.yaml`` is at ``[fit, model]``."""
    start = args.index(subcommand) if subcommand in args else len(args)
    files = []
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        flag, _, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        value = value or (args[i + 1] if i + 1 < len(args) else "")
        inside = [subcommand] if i > start and subcommand else []
        if flag in CONFIG_FLAGS and value:
            files.append((i, value, inside))
        elif inside and flag.startswith("--") and value.endswith((".yaml", ".yml", ".json")) and Path(value).is_file():
            files.append((i, value, inside + flag[2:].split(".")))
    return files


def compose(path: str):
    """The YAML (or JSON) file's node tree, with line marks; None where it cannot be read."""
    import yaml

    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def find_key(node, parts: list[str]):
    """(key node, value node) of ``parts`` (nested mappings or dotted keys, as jsonargparse reads them) under
    ``node``, the last one where a mapping repeats a key (the one loaded); None where the key is not there."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for key_node, value in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        names = str(key_node.value).split(".")
        if parts[:len(names)] == names:
            found = (key_node, value) if len(names) == len(parts) else find_key(value, parts[len(names):]) or found
    return found


def yaml_line(path: str, parts: list[str]) -> int | None:
    """The 1-based line of the key ``parts`` in the file, or None."""
    found = find_key(compose(path), parts)
    return found[0].start_mark.line + 1 if found else None


# --- their problems -----------------------------------------------------------------------------------------------

def _all_keys(root) -> list[str]:
    """The root parser's keys and, for each subcommand, ``fit`` and ``fit.<key>``."""
    keys = valid_keys(root)
    action = getattr(root, "_subcommands_action", None)
    for name, sub in (action.choices.items() if action is not None else []):
        keys += [name] + [f"{name}.{key}" for key in valid_keys(sub)]
    return keys


def _sections(root) -> set[str]:
    """The dotted keys that are sections (``fit.model``): keys with keys under them, given as a mapping (a group or
    a nested config), not a typed value."""
    from jsonargparse._actions import _ActionConfigLoad

    keys = _all_keys(root)
    action = getattr(root, "_subcommands_action", None)
    names = set(action.choices) if action is not None else set()
    typed = set()
    for prefix, parser in [("", root)] + [(f"{n}.", p) for n, p in (action.choices.items() if action else [])]:
        typed |= {prefix + a.dest for a in parser._actions
                  if isinstance(a.dest, str) and not isinstance(a, _ActionConfigLoad) and a.option_strings}
    return {k for k in keys if children(keys, k) and (k in names or k not in typed)}


def _links(root) -> list[tuple[str, str]]:
    """(full target, full source) of each link applied on parse (``fit.model.max_seq_length``,
    ``fit.data.max_seq_length``)."""
    links = []
    action = getattr(root, "_subcommands_action", None)
    for prefix, parser in [("", root)] + [(f"{n}.", p) for n, p in (action.choices.items() if action else [])]:
        group = getattr(parser, "_links_group", None)
        for link in (group._group_actions if group is not None else []):
            if getattr(link, "apply_on", None) == "parse" and len(link.source) == 1:
                links.append((prefix + link.target[0], prefix + link.source[0][0]))
    return links


def _kind(node) -> str:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        return "empty" if node.tag.endswith(":null") else f"a value ({str(node.value)[:40]})"
    return "not a mapping"


def _duplicates(node, path: list[str], found: list):
    """(line, first line, dotted key) of every key given twice in one mapping, anywhere under ``node``."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicates(item, path, found)
    if not isinstance(node, yaml.MappingNode):
        return
    seen = {}
    for key_node, value in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            name = str(key_node.value)
            line = key_node.start_mark.line + 1
            if name in seen and name != "<<":
                found.append((line, seen[name], ".".join([*path, name])))
            seen.setdefault(name, line)
            _duplicates(value, [*path, name], found)


def config_file_problem(root, args: list[str]) -> str | None:
    """The first problem of the config files on ``args`` (-c / --config, a section's file as ``--model m.yaml``),
    as one line naming the file and the line, or None; a file that does not exist is left to the parser."""
    import yaml

    subcommand = subcommand_in(root, args)
    files = files_on_command_line(args, subcommand)
    if not files:
        return None
    sections, links = _sections(root), _links(root)
    parsers = [root, subparser(root, subcommand)]
    options = {o for parser in parsers if parser is not None for a in parser._actions for o in a.option_strings}
    for i, path, inside in files:
        if args[i].partition("=")[0] not in options:  # ``prepare -c``: an unknown flag, which the parser reports
            continue
        if inside and ".".join(inside) not in sections:  # a value that is a file (a list of callbacks): not a config
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            line = f":{mark.line + 1}" if mark is not None else ""
            return f"{path}{line}: not valid YAML ({problem}); {A_CONFIG}"
        # the key of this file's top level, as a key of the subcommand (``model`` for --model m.yaml; "" for -c)
        within = inside[1:] if subcommand and inside[:1] == [subcommand] else inside
        if node is None:
            return f"{path}: the config file is empty; {A_CONFIG}"
        if not isinstance(node, yaml.MappingNode):
            return (f"{path}:{node.start_mark.line + 1}: the config file is {_kind(node)}, not a mapping of keys; "
                    f"{A_CONFIG}")
        found = []
        _duplicates(node, within, found)
        if found:
            line, first, key = min(found)
            return f"{path}:{line}: duplicate key {key} (first at line {first})"
        for section in sorted(sections):
            parts = section.split(".")
            if parts[:len(inside)] != inside or len(parts) == len(inside):
                continue
            hit = find_key(node, parts[len(inside):])
            if hit and not isinstance(hit[1], yaml.MappingNode):
                name = ".".join(parts[1:] if subcommand and parts[0] == subcommand else parts)
                return (f"{path}:{hit[0].start_mark.line + 1}: section {name} is {_kind(hit[1])}, not a mapping of "
                        f"its keys; give its keys indented under it (key: value), or delete the line")
        for target, source in links:
            parts = target.split(".")
            if parts[:len(inside)] != inside or len(parts) == len(inside):
                continue
            hit = find_key(node, parts[len(inside):])
            if hit:
                drop = 1 if subcommand and parts[0] == subcommand else 0
                target_key = ".".join(parts[drop:])
                source_key = ".".join(source.split(".")[drop:])
                return (f"{path}:{hit[0].start_mark.line + 1}: {target_key} follows {source_key}; set {source_key} "
                        f"instead")
    return None
