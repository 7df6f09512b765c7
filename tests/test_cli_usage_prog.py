"""The trainer commands' usage lines name the command a user types (``python -m lightning_review fit``), as the tool
commands' do, not ``__main__.py`` (argparse's default: the script's file name)."""

from tests.conftest import run_cli


def test_the_trainer_usage_names_python_m_lightning_review(tmp_path):
    proc = run_cli("fit", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: python -m lightning_review [options] fit"), proc.stdout[:200]
    assert "__main__.py" not in proc.stdout
