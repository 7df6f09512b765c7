"""The command line, as a user runs it: subprocesses of ``python -m lightning_review``."""

import json
import shutil

import pytest

from tests.conftest import ROOT, run_cli


def test_demo_config_fits_and_writes_an_adapter(tmp_path):
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=6",
                   "--trainer.val_check_interval=3", "--trainer.limit_val_batches=2",  # 2 of the 8 val batches
                   f"--trainer.default_root_dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    adapters = list(tmp_path.rglob("adapter/adapter_model.safetensors"))
    assert len(adapters) == 1
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    events = next(tmp_path.rglob("events.out.tfevents.*"))
    tags = {v.tag for e in EventFileLoader(str(events)).Load() for v in e.summary.value}
    assert {"train_loss", "data/train_packing_efficiency", "data/train_papers_truncated"} <= tags
    assert "packing efficiency" in proc.stdout + proc.stderr
    config = next(tmp_path.rglob("config.yaml")).read_text()
    assert "checkpoint_dir: builtin:tiny-llama" in config


def test_print_config_shows_every_option_as_flag(tmp_path):
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--model.lora_r=4", "--print_config",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lora_r: 4" in proc.stdout and "s2_group_size" in proc.stdout and "max_seq_length: 512" in proc.stdout


def test_validate_and_predict_run(tmp_path):
    papers = tmp_path / "papers.jsonl"
    papers.write_text(json.dumps({"id": "x1", "paper": "We propose graph diffusion for molecule design."}) + "\n")
    out = tmp_path / "reviews.jsonl"
    common = ["-c", str(ROOT / "configs" / "demo.yaml"), f"--trainer.default_root_dir={tmp_path}",
              "--trainer.callbacks=[]", "--trainer.limit_val_batches=2"]
    proc = run_cli("validate", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "val_loss" in proc.stdout
    proc = run_cli("test", *common, "--trainer.limit_test_batches=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test_loss" in proc.stdout
    proc = run_cli("predict", *common, f"--data.predict_file={papers}", "--model.max_new_tokens=8",
                   "--trainer.callbacks+=lightning_review.ReviewWriter", f"--trainer.callbacks.output_file={out}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(out.read_text().splitlines()[0])
    assert row["id"] == "x1" and 0 < row["generated_tokens"] <= 8


@pytest.mark.parametrize("setup, message", [
    (lambda d, tiny: None, "no config.json"),
    (lambda d, tiny: (d / "config.json").write_text('{"model_type": "bert"}'), "model_type is 'bert'"),
    # transformers would say "install sentencepiece or tiktoken", which does not help
    (lambda d, tiny: shutil.copy(tiny / "config.json", d), "ckpt: no tokenizer files (expected tokenizer.json or"),
])
def test_bad_checkpoint_dir_is_a_clear_error(tiny_llama_dir, tmp_path, setup, message):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    setup(ckpt, tiny_llama_dir)
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), f"--model.checkpoint_dir={ckpt}",
                   cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {ckpt}")
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_api_address_where_nothing_listens_is_named_without_the_key(tmp_path):
    """Any API command (here ``openai list``): one line naming the address it tried; neither the key nor a password
    in the address is shown."""
    import socket

    from tests.conftest import run_cli

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"OPENAI_API_KEY": "sk-test-secret-key", "OPENAI_BASE_URL": f"http://user:pw-secret@127.0.0.1:{port}/v1"}
    done = run_cli("openai", "list", cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 1
    assert f"no answer from http://127.0.0.1:{port}/v1" in done.stderr
    assert "Traceback" not in done.stderr
    assert "sk-test-secret-key" not in done.stderr + done.stdout and "pw-secret" not in done.stderr + done.stdout


def test_every_tool_in_the_table_imports_and_answers_help(capsys):
    """The tool table is strings loaded on demand: a renamed module or function would only fail when a user runs
    it. Each entry (and each subcommand of a table of them) must import and print its help."""
    import pytest

    from lightning_review.cli import TOOLS, main, tool_command

    for name in TOOLS:
        command = tool_command(name)
        subcommands = list(command) if isinstance(command, dict) else [None]
        for sub in subcommands:
            with pytest.raises(SystemExit) as done:
                main([name, *([sub] if sub else []), "--help"])
            assert done.value.code == 0, (name, sub)
            assert "usage:" in capsys.readouterr().out


def test_a_user_mistake_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch):
    import pytest

    from lightning_review import cli
    from lightning_review.errors import UserError

    def mistake(flag: int = 0):
        raise UserError("--flag must be positive")

    def bug(flag: int = 0):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(cli, "tool_command", lambda name: mistake)
    with pytest.raises(SystemExit, match="^error: --flag must be positive$"):
        cli.main(["cost"])
    monkeypatch.setattr(cli, "tool_command", lambda name: bug)
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(["cost"])


def test_a_tool_whose_extra_is_not_installed_names_the_pip_command(monkeypatch):
    """collect's packages (openreview-py, requests, pypdf) come with the ``collect`` extra: without them the user
    gets the pip command, not an import traceback; a missing module of a tool without an extra is a bug and keeps it."""
    import pytest

    from lightning_review import cli

    def needs_openreview(output_file: str = "x"):
        raise ModuleNotFoundError("No module named 'openreview'", name="openreview")

    monkeypatch.setattr(cli, "tool_command", lambda name: needs_openreview)
    with pytest.raises(SystemExit, match=r"collect needs the module 'openreview'.*pip install -e \"\.\[collect\]\""):
        cli.main(["collect"])
    with pytest.raises(ModuleNotFoundError):
        cli.main(["cost"])


@pytest.mark.parametrize("name, extra", [
    ("openreview", True), ("openreview.api", True), ("requests", True), ("requests.adapters", True),
    ("pypdf", True), ("tenacity", True),
    # a module of ours (a renamed or misspelt import: a bug), a base dependency, or an error without a name
    ("lightning_review.collect.clinet", False), ("tqdm", False), ("openreviewx", False), (None, False),
])
def test_collect_blames_its_extra_only_for_a_module_of_the_extras_packages(monkeypatch, name, extra):
    """Any missing module during collect was blamed on the collect extra, our own included: a bug was answered with
    'pip install -e ".[collect]"', which changes nothing, and its traceback was lost."""
    from lightning_review import cli

    def missing(output_file: str = "x"):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(cli, "tool_command", lambda tool: missing)
    if extra:
        with pytest.raises(SystemExit) as caught:
            cli.main(["collect"])
        assert str(caught.value) == (f"error: collect needs the module {name!r}, which is not installed: "
                                     "pip install -e \".[collect]\" from the project's directory")
    else:
        with pytest.raises(ModuleNotFoundError) as caught:  # surfaces as the bug it is, with its traceback
            cli.main(["collect"])
        assert caught.value.name == name


def test_a_missing_module_of_ours_in_collect_is_a_traceback_not_the_extras_pip_line(tmp_path):
    """As a user runs it: one of collect's own modules missing (simulated by a None entry in sys.modules) ends in
    the ModuleNotFoundError's traceback naming it, not in the collect extra's pip command."""
    import os
    import subprocess
    import sys

    code = ("import runpy, sys\n"
            "sys.modules['lightning_review.collect.client'] = None\n"
            "sys.argv = ['lightning_review', 'collect', '--venue=ICLR.cc/2024/Conference', '--output_file=p.jsonl']\n"
            "runpy.run_module('lightning_review', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "Traceback" in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1].startswith("ModuleNotFoundError: import of lightning_review.collect.client")
    assert "pip install" not in proc.stderr


def test_the_collect_extras_modules_are_setup_cfgs_collect_extra():
    """cli.TOOL_EXTRAS names the extra's packages by the modules they install: each distribution of setup.cfg's
    collect extra provides one of them, and each of them comes from one of those distributions."""
    import configparser
    import re
    from importlib.metadata import packages_distributions

    from lightning_review.cli import TOOL_EXTRAS

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    wanted = {re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower()
              for line in config["options.extras_require"]["collect"].splitlines() if line.strip()}
    extra, modules = TOOL_EXTRAS["collect"]
    provided = {module: {d.lower() for d in dists} for module, dists in packages_distributions().items()}
    assert extra == "collect"
    assert {dist for module in modules for dist in provided.get(module, ())} & wanted == wanted
    assert all(provided.get(module, set()) & wanted for module in modules)


def test_lightning_still_calls_the_resume_check(monkeypatch):
    """ReviewCLI._parse_ckpt_path replaces a private LightningCLI method (Lightning 2.6 has no public hook that does
    its job; its docstring says why). If a Lightning release renames it or stops calling it, a resume with other
    model settings would silently run with the checkpoint's: this test fails first, naming the method."""
    import sys

    from lightning.pytorch.cli import LightningCLI

    from lightning_review.data.datamodule import ReviewDataModule
    from lightning_review.trainer_cli import ReviewCLI
    from lightning_review.training.module import LongQLoRAModule

    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None)), (
        "LightningCLI has no _parse_ckpt_path any more: ReviewCLI's override (the resume settings check) is never "
        "called; move the check to the hook Lightning offers now (see trainer_cli.ReviewCLI._parse_ckpt_path)")

    class Called(Exception):
        pass

    def called(self):
        raise Called

    def not_called(self):
        raise AssertionError("LightningCLI reached before_instantiate_classes without calling _parse_ckpt_path: "
                             "ReviewCLI's resume settings check no longer runs (see trainer_cli.ReviewCLI)")

    monkeypatch.setattr(sys, "argv", ["lightning_review"])
    monkeypatch.setattr(ReviewCLI, "_parse_ckpt_path", called)
    monkeypatch.setattr(ReviewCLI, "before_instantiate_classes", not_called)  # nothing is built either way
    with pytest.raises(Called):
        ReviewCLI(LongQLoRAModule, ReviewDataModule, args=["fit", "-c", str(ROOT / "configs" / "demo.yaml")])


def test_a_tool_commands_error_names_its_own_flags_not_fits_config_keys(tmp_path, tiny_llama_dir):
    """prepare reads data with fit's readers, whose errors say data.task / data.rating_line: under prepare they
    must name --task / --rating_line; a key prepare has no flag for stays as it is."""
    from lightning_review.cli import as_tool_flags, main
    from lightning_review.prepare import prepare

    data = tmp_path / "docs.jsonl"
    data.write_text('{"text": "a long document without a review"}\n')
    with pytest.raises(SystemExit) as exc:
        main(["prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", f"--output_dir={tmp_path / 'o'}"])
    message = str(exc.value)
    assert "docs.jsonl:1" in message and "(--task text)" in message and "data.task" not in message
    assert as_tool_flags("set data.rating_line false or data.packed_width", prepare) == (
        "set --rating_line false or data.packed_width")
