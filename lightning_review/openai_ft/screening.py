"""Before data leaves the machine: strings that look like secrets or e-mail addresses (the seed feared leaking its
main asset). Findings name the line and the kind, never the value."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

PATTERNS = {
    "OpenAI-style API key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"),
    "AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "bearer token": re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{20,}"),
    "e-mail address": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
}


def screen_file(path: str | Path) -> list[tuple[int, str]]:
    """(line number, kind) of every suspicious string in the file."""
    findings = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            findings += [(lineno, kind) for kind, pattern in PATTERNS.items() if pattern.search(line)]
    return findings


def describe(findings: list[tuple[int, str]], path: str | Path) -> str:
    counts = Counter(kind for _, kind in findings)
    lines = sorted({n for n, _ in findings})
    shown = ", ".join(map(str, lines[:15])) + (" ..." if len(lines) > 15 else "")
    return (f"{path}: " + "; ".join(f"{n} line(s) with what looks like an {kind}" if kind[0] in "aeiouAEIOU" else
                                    f"{n} line(s) with what looks like a {kind}" for kind, n in counts.items())
            + f" (lines {shown}). Check them before the file leaves this machine.")
