"""bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community ..." warning (logged on its CPU
backend's logger when it is imported, on a CPU with AVX512-BF16 and without the optional ``kernels`` package) is
not shown by a command: cli.main filters that one record while the command runs, and nothing else."""

import logging
import subprocess
import sys

import pytest

from lightning_review.cli import BNB_CPU_KERNEL_NOTE, BNB_CPU_LOGGER, quiet_bitsandbytes_cpu_kernel_note
from tests.conftest import ROOT, run_cli, write_jsonl


def test_bitsandbytes_alone_says_it():
    """What the filter is for: a bare import shows the line (the command test below would prove nothing without)."""
    proc = subprocess.run([sys.executable, "-c", "import bitsandbytes"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if BNB_CPU_KERNEL_NOTE not in proc.stderr:
        pytest.skip("bitsandbytes logs nothing here (no AVX512-BF16, or the kernels package is installed)")
    assert BNB_CPU_KERNEL_NOTE not in proc.stdout


def test_a_command_loading_4bit_weights_on_the_cpu_does_not_show_it(tmp_path, tiny_llama_dir):
    papers = write_jsonl(tmp_path / "papers.jsonl", [{"id": "a", "paper": "graphs and words " * 40}])
    proc = run_cli("perplexity", f"--data_file={papers}", f"--checkpoint_dir={tiny_llama_dir}", "--lengths=64",
                   "--quantize=true", "--device=cpu", "--plot=false", f"--output_dir={tmp_path / 'o'}",
                   cwd=tmp_path, fresh=True)  # fresh: a forked zygote could have imported bitsandbytes already
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gemm_4bit_forward" not in proc.stdout + proc.stderr


def test_only_that_message_of_that_logger_is_dropped_and_only_while_a_command_runs(caplog):
    logger = logging.getLogger(BNB_CPU_LOGGER)
    note = BNB_CPU_KERNEL_NOTE + ": No module. Please make sure you already `pip install kernels`"
    with caplog.at_level(logging.WARNING):
        with quiet_bitsandbytes_cpu_kernel_note():
            logger.warning(note)
            logger.warning("another bitsandbytes warning")
            logging.getLogger("elsewhere").warning(BNB_CPU_KERNEL_NOTE + " said by someone else")
        logger.warning(note)  # after the command: the library's logger as it was
    assert [r.getMessage() for r in caplog.records] == [
        "another bitsandbytes warning", BNB_CPU_KERNEL_NOTE + " said by someone else", note]
    assert not any(type(f).__name__ == "QuietBitsandbytesCpuKernelNote" for f in logger.filters)
