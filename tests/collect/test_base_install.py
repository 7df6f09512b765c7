"""collect on a base install, without the collect extra's packages (setup.cfg: openreview-py, requests, pypdf,
tenacity), simulated by a None entry in sys.modules for each (an import of it fails as a missing module does):
``--help`` works, and a run ends in one line naming the extra, before it writes anything."""

import os
import subprocess
import sys

import pytest

from lightning_review.cli import TOOL_EXTRAS
from tests.conftest import ROOT

EXTRA_PACKAGES = TOOL_EXTRAS["collect"][1]  # checked against setup.cfg's extra in tests/test_cli.py
PIP_LINE = "pip install -e \".[collect]\" from the project's directory"


def without_the_extra(*args, cwd):
    code = ("import runpy, sys\n"
            f"sys.modules.update(dict.fromkeys({EXTRA_PACKAGES!r}))\n"
            f"sys.argv = ['lightning_review', *{list(args)!r}]\n"
            "runpy.run_module('lightning_review', run_name='__main__', alter_sys=True)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_help_works_without_the_extra(tmp_path):
    proc = without_the_extra("collect", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: python -m lightning_review collect") and "--venue" in proc.stdout
    assert "--pdf_backend" in proc.stdout and "error" not in proc.stderr


@pytest.mark.parametrize("flags, missing", [
    (["--venue=ICLR.cc/2024/Conference"], "openreview"),
    (["--pdf_dir=pdfs", "--reviews_file=reviews.jsonl"], "pypdf"),
])
def test_a_run_without_the_extra_is_one_line_naming_it_and_writes_nothing(tmp_path, flags, missing):
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "reviews.jsonl").write_text('{"id": "a", "reviews": [{"text": "Fine."}]}\n')
    proc = without_the_extra("collect", *flags, "--output_file=papers.jsonl", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: collect needs the module '{missing}', which is not installed: "
                                        + PIP_LINE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pdfs", "reviews.jsonl"]  # no output, lock or cache
