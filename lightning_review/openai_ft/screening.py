"""Before data leaves the machine: strings that look like secrets or e-mail addresses (the seed feared leaking its
main asset). Findings name the line and the kind, never the value.

JSON lines are screened after decoding their strings, so a key written after an escaped newline (``"...\\nghp_..."``)
or with ``\\u`` escapes is seen as it would be used. The token formats are those the issuers publish (and secret
scanners such as gitleaks and trufflehog match): each pattern wants the issuer's prefix followed by a long run of
token characters (and a digit after ``sk-`` and ``xox?-``, prefixes that hyphenated prose also makes), so words in
prose (``hf_model``, ``sk-learn-compatible-estimators``, ``xoxo-and-best-wishes``) are not findings.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class SecretKind:
    label: str  # what a user reads: "Hugging Face token"
    pattern: re.Pattern


# Not after a letter, digit or underscore: a prefix inside a longer word is not a token's start.
_START = r"(?<![A-Za-z0-9_])"
# kind (the name --allow_secret_kinds takes) -> label and pattern
KINDS: dict[str, SecretKind] = {
    "openai_key": SecretKind("OpenAI-style API key",
                             re.compile(_START + r"sk-(?!ant-)(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}")),
    "anthropic_key": SecretKind("Anthropic API key", re.compile(_START + r"sk-ant-[A-Za-z0-9_-]{20,}")),
    "huggingface_token": SecretKind("Hugging Face token", re.compile(_START + r"hf_[A-Za-z0-9]{30,}")),
    "github_token": SecretKind("GitHub token", re.compile(
        _START + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9]{20,}_[A-Za-z0-9]{40,})")),
    "aws_access_key": SecretKind("AWS access key id", re.compile(_START + r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])")),
    "slack_token": SecretKind("Slack token", re.compile(_START + r"(?:xox[abposr]|xapp)-\d[0-9A-Za-z-]{18,}")),
    "google_api_key": SecretKind("Google API key", re.compile(_START + r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    "private_key": SecretKind("private key block", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    "bearer_token": SecretKind("bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{20,}")),
    "email": SecretKind("e-mail address", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
}


def screen_text(text: str) -> list[str]:
    """The kinds of suspicious strings in ``text``, each once, in KINDS order."""
    return [kind for kind, secret in KINDS.items() if secret.pattern.search(text)]


def screen_file(path: str | Path) -> list[tuple[int, str]]:
    """(line number, kind) of every suspicious string in the file."""
    findings = []
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            findings += [(lineno, kind) for kind in screen_text(_decoded(line))]
    return findings


def _decoded(line: str) -> str:
    """A JSON line's keys and strings, decoded and one per line; any other line as it is."""
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    return "\n".join(_strings(obj))


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _article(label: str) -> str:
    return "an" if label[0] in "aeiouAEIOU" else "a"


def describe(findings: list[tuple[int, str]], path: str | Path) -> str:
    """One line: how many lines hold each kind, and which lines (the values are never shown)."""
    counts = Counter(kind for _, kind in findings)
    lines = sorted({n for n, _ in findings})
    shown = ", ".join(map(str, lines[:15])) + (" ..." if len(lines) > 15 else "")
    return (f"{path}: " + "; ".join(f"{n} line(s) with what looks like {_article(KINDS[kind].label)} "
                                    f"{KINDS[kind].label} ({kind})" for kind, n in counts.items())
            + f" (lines {shown})")


def listed(findings: list[tuple[int, str]], limit: int = 10) -> str:
    """``line N: label (kind)`` for the first ``limit`` findings, '; '-separated, with a count of the rest."""
    shown = "; ".join(f"line {n}: {KINDS[kind].label} ({kind})" for n, kind in findings[:limit])
    return shown + (f"; and {len(findings) - limit} more" if len(findings) > limit else "")
