"""Warnings of our own code, as a command shows them: one line ``warning: <message>`` on stderr, not Python's (or
Lightning's) ``/path/lightning_review/x.py:123: UserWarning: ...``; other libraries' warnings as they format them;
and nothing changed for the package imported or called as a library."""

import subprocess
import sys

from tests.conftest import ROOT, run_cli, write_jsonl


def test_prepare_shows_the_datamodules_warning_as_one_plain_line(tmp_path, tiny_llama_dir):
    rows = [{"id": f"p{i}", "paper": "We study graphs and molecules. " * 20,
             "review": f"Review {i}: clear writing, weak baselines."} for i in range(5)]
    rows.append({"id": "short", "paper": "A paper.", "review": "short"})
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    proc = run_cli("prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", "--max_seq_length=256",
                   "--on_bad_record=skip", "--plot=false", f"--output_dir={tmp_path / 'out'}", cwd=tmp_path,
                   env={"LIGHTNING_REVIEW_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"warning: {data}: 1 records not used: {{'review_too_short': 1}}" in proc.stderr.splitlines()
    assert "datamodule.py" not in proc.stderr and "UserWarning" not in proc.stderr, proc.stderr[-3000:]


def test_cost_shows_its_warning_as_one_plain_line(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [
        {"role": "user", "content": "word " * 50}, {"role": "assistant", "content": "A review."}]}])
    proc = run_cli("cost", f"--file={chat}", "--max_tokens=10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"warning: {chat}: 1 of 1 examples is over the limit of 10 tokens per example")


def test_other_libraries_warnings_keep_their_format():
    # In a process of its own: pytest records warnings instead of showing them.
    elsewhere = str(ROOT.parent / "site-packages" / "somelib" / "mod.py")
    ours = str(ROOT / "lightning_review" / "data" / "datamodule.py")
    code = ("import warnings\nfrom lightning_review import cli\nbefore = warnings.showwarning\n"
            "warnings.simplefilter('always')\n"
            "with cli.command_warnings():\n"
            f"    warnings.warn_explicit('ours says', UserWarning, {ours!r}, 12)\n"
            f"    warnings.warn_explicit('theirs says', DeprecationWarning, {elsewhere!r}, 34)\n"
            "assert warnings.showwarning is before\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == ["warning: ours says", f"{elsewhere}:34: DeprecationWarning: theirs says"]


def test_importing_the_package_changes_no_warning_setting():
    code = ("import warnings; shown, formatted = warnings.showwarning, warnings.formatwarning\n"
            "import lightning_review, lightning_review.cli, lightning_review.openai_ft.commands\n"
            "assert (warnings.showwarning, warnings.formatwarning) == (shown, formatted)\n"
            "from lightning_review.cli import main\n"
            "try:\n    main(['cost', '--tokens=1000', '--price_per_1k=1'])\nexcept SystemExit:\n    pass\n"
            "assert (warnings.showwarning, warnings.formatwarning) == (shown, formatted)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
