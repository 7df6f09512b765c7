"""A checkpoint's recorded settings against this run's: every difference listed, and a resume with others refused.

Used by the model (its hyperparameters), the DataModule (its data settings) and the CLI (before the model loads).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..errors import UserError


class ConfigMismatchError(UserError):
    """A run was resumed from a checkpoint written with another model or data configuration."""


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str,
                       ignore: Iterable[str] = (), defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``prefix.key: saved -> current`` for every setting that differs (keys in ``ignore`` may change freely).

    A setting the checkpoint does not record (added to the project after it was written) is no difference when the
    current value is its default (``defaults``): the checkpoint's run behaved as that default does."""
    skip = set(ignore)
    defaults = defaults or {}
    keys = sorted((set(saved) | set(current)) - skip)
    return [f"{prefix}.{key}: {saved.get(key)!r} in the checkpoint, {current.get(key)!r} now"
            for key in keys if saved.get(key) != current.get(key)
            and not (key not in saved and key in defaults and current.get(key) == defaults[key])]


def parameter_defaults(cls: type) -> dict[str, Any]:
    """The defaults of a class's constructor arguments."""
    import inspect

    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def refuse_config_change(differences: list[str]) -> None:
    if differences:
        raise ConfigMismatchError(
            "refusing to resume: this run's configuration differs from the checkpoint's:\n  " +
            "\n  ".join(differences) + "\nResume with the checkpoint's settings (its run directory has config.yaml) "
            "or start a new run without --ckpt_path.")
