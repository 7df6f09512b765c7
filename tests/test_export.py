"""Exports: a training checkpoint -> a peft adapter -> a merged checkpoint that plain transformers loads."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from peft import PeftModel

from lightning_review.artifacts.model_limits import ROPE_POSITIONS
from lightning_review.model.loading import load_llama
from tests.conftest import ROOT, run_cli, write_jsonl

PLAIN_TRANSFORMERS = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
assert not any(name.startswith("lightning_review") for name in sys.modules), "needed lightning_review"
ids = torch.tensor([list(range(5, 305))])
torch.save({"logits": model(input_ids=ids).logits, "rope": model.config.rope_parameters}, sys.argv[2])
"""


@pytest.fixture(scope="module")
def trained_checkpoint(tiny_llama_dir, tmp_path_factory):
    """A checkpoint written by the command line (LightningCLI adds hyperparameters of its own to it)."""
    root = tmp_path_factory.mktemp("export_run")
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=3",
                   "--trainer.limit_val_batches=0", "--model.learning_rate=0.005", "--model.lora_r=4",
                   f"--trainer.default_root_dir={root}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(root.rglob("last.ckpt"))


def test_checkpoint_to_adapter_to_merged_model_keeps_the_logits(tiny_llama_dir, trained_checkpoint, tmp_path):
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    proc = run_cli("export-adapter", f"--checkpoint={trained_checkpoint}", f"--output_dir={adapter}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((adapter / "lightning_review.json").read_text())
    assert meta["rope_scaling_factor"] == 2.0  # 512 on a 256-context model
    proc = run_cli("export", f"--adapter_dir={adapter}", f"--output_dir={merged}", "--dtype=float32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    out = tmp_path / "merged_logits.pt"
    subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(merged), str(out)], check=True, cwd=tmp_path)
    plain = torch.load(out)
    assert plain["rope"]["rope_type"] == "linear" and plain["rope"]["factor"] == 2.0

    base = load_llama(tiny_llama_dir, quantize=False, model_max_length=512, dtype=torch.float32,
                      attn_implementation="sdpa")
    with torch.no_grad():
        plain_base = base(input_ids=torch.tensor([list(range(5, 305))])).logits
        with_adapter = PeftModel.from_pretrained(base, str(adapter))(input_ids=torch.tensor([list(range(5, 305))]))
    torch.testing.assert_close(plain["logits"], with_adapter.logits, atol=1e-4, rtol=1e-4)
    assert (plain["logits"] - plain_base).abs().max() > 1e-2  # the adapter really changed the model


def test_export_adapter_refuses_a_file_that_is_no_training_checkpoint(tmp_path):
    bad = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}}, bad)
    proc = run_cli("export-adapter", f"--checkpoint={bad}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode != 0 and "not a lightning_review training checkpoint" in proc.stderr


def test_export_adapter_names_an_empty_checkpoint_as_corrupt(tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.touch()  # what a run killed while writing its checkpoint leaves
    proc = run_cli("export-adapter", f"--checkpoint={bad}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: corrupt checkpoint, the file is empty")
    assert "Traceback" not in proc.stderr and not (tmp_path / "a").exists()


def test_export_without_tokenizer_files_fails_before_merging(tiny_llama_dir, trained_checkpoint, tmp_path):
    from lightning_review.export import export_adapter, export_merged
    from lightning_review.artifacts.checkpoint_files import CheckpointError

    base = tmp_path / "base"
    base.mkdir()
    for name in ("config.json", "model.safetensors"):
        (base / name).symlink_to(tiny_llama_dir / name)
    adapter = export_adapter(str(trained_checkpoint), str(tmp_path / "adapter"))
    with pytest.raises(CheckpointError, match="no tokenizer files"):
        export_merged(str(adapter), str(tmp_path / "merged"), checkpoint_dir=str(base))
    assert not (tmp_path / "merged").exists()


def test_export_into_a_file_is_refused_before_loading_not_a_silent_success(trained_checkpoint, tmp_path):
    adapter = tmp_path / "adapter"
    assert run_cli("export-adapter", f"--checkpoint={trained_checkpoint}", f"--output_dir={adapter}",
                   cwd=tmp_path).returncode == 0
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for command, source in (("export", f"--adapter_dir={adapter}"), ("export-adapter",
                                                                     f"--checkpoint={trained_checkpoint}")):
        proc = run_cli(command, source, f"--output_dir={taken}", cwd=tmp_path)
        assert proc.returncode == 1, command  # export used to exit 0 having written nothing
        assert proc.stderr.strip().splitlines()[-1] == (f"error: --output_dir={taken} is an existing file, not a "
                                                        "directory; give --output_dir a directory (created if missing)")
        assert "Traceback" not in proc.stderr and taken.read_text() == "a file"


def test_an_export_never_goes_into_or_over_its_inputs(tiny_llama_dir, trained_checkpoint, tmp_path):
    from lightning_review.errors import UserError
    from lightning_review.export import export_adapter, export_merged

    adapter = export_adapter(str(trained_checkpoint), str(tmp_path / "adapter ü"))
    before = sorted(p.name for p in adapter.iterdir())
    for output, where in ((adapter, "is --adapter_dir"), (adapter / "merged", "is inside --adapter_dir"),
                          (tmp_path, "holds --adapter_dir"), (tiny_llama_dir, "is the base model")):
        with pytest.raises(UserError, match=f"--output_dir={output} {where}"):
            export_merged(str(adapter), str(output), dtype="float32", overwrite=True)
    assert sorted(p.name for p in adapter.iterdir()) == before  # no config.json or model weights mixed in
    with pytest.raises(UserError, match=f"--output_dir={tiny_llama_dir} is the base model"):
        export_adapter(str(trained_checkpoint), str(tiny_llama_dir), overwrite=True)
    assert not (tiny_llama_dir / "adapter_config.json").exists()


def test_an_existing_export_is_replaced_only_with_overwrite_and_whole(trained_checkpoint, tmp_path):
    from lightning_review.errors import UserError
    from lightning_review.export import export_adapter, export_merged

    adapter = export_adapter(str(trained_checkpoint), str(tmp_path / "adapter"))
    merged = tmp_path / "merged"
    merged.mkdir()
    stale = merged / "model.safetensors.index.json"  # from an earlier, sharded export: transformers would read it
    stale.write_text("{}")
    with pytest.raises(UserError, match="exists and is not empty; give --overwrite true"):
        export_merged(str(adapter), str(merged), dtype="float32")
    assert stale.exists()
    export_merged(str(adapter), str(merged), dtype="float32", overwrite=True)
    assert not stale.exists() and (merged / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left aside
    with pytest.raises(UserError, match="exists and is not empty"):
        export_adapter(str(trained_checkpoint), str(adapter))


def test_an_export_that_fails_while_writing_leaves_no_directory(trained_checkpoint, tmp_path, monkeypatch):
    from lightning_review.export import export_adapter
    from lightning_review.training.module import LongQLoRAModule

    def fail_halfway(self, directory):
        (directory / "adapter_config.json").write_text("{}")
        raise OSError("No space left on device")

    monkeypatch.setattr(LongQLoRAModule, "save_adapter", fail_halfway)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="No space left"):
        export_adapter(str(trained_checkpoint), str(out / "adapter"))
    assert list(out.iterdir()) == []  # no half adapter that export or generate would read later


@pytest.mark.parametrize("make, expected", [
    (lambda d: (d / "adapter_config.json").write_text("{}"), "an adapter directory, not a training checkpoint"),
    (lambda d: (d / "config.json").write_text("{}"), "a model checkpoint directory, not a training checkpoint"),
    (lambda d: None, "not a DeepSpeed checkpoint directory (no 'latest' file in it)")])
def test_a_directory_that_is_no_deepspeed_checkpoint_is_named(tmp_path, make, expected):
    given = tmp_path / "given"
    given.mkdir()
    make(given)
    proc = run_cli("export-adapter", f"--checkpoint={given}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {given}: {expected}")
    assert not (tmp_path / "a").exists()


def test_an_adapter_on_another_base_is_one_line_naming_both(trained_checkpoint, tiny_llama_dir, tmp_path):
    wider = tmp_path / "wider"
    shutil.copytree(tiny_llama_dir, wider)
    config = json.loads((wider / "config.json").read_text())
    config.update(hidden_size=2 * config["hidden_size"], intermediate_size=2 * config["intermediate_size"])
    (wider / "config.json").write_text(json.dumps(config))
    proc = run_cli("export-adapter", f"--checkpoint={trained_checkpoint}", f"--output_dir={tmp_path / 'a'}",
                   f"--checkpoint_dir={wider}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # was torch's size mismatch, a line per tensor
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {trained_checkpoint}: its weights do not fit the base model {wider} (")
    assert last.endswith("give --checkpoint_dir the base the run trained on (or leave it out: the checkpoint "
                         "records it)") and not (tmp_path / "a").exists()

    from lightning_review.export import export_adapter

    adapter = export_adapter(str(trained_checkpoint), str(tmp_path / "adapter"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "r": 2 * config["r"]}))
    for command in ("export", "perplexity"):
        args = (["--output_dir", str(tmp_path / "m"), "--dtype", "float32"] if command == "export" else
                ["--data_file", str(write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "paper": "x " * 80}])),
                 "--lengths", "64", "--output_dir", str(tmp_path / "m")])
        proc = run_cli(command, "--adapter_dir", str(adapter), *args, cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, command
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {adapter}: its weights do not fit the base model builtin:tiny-llama"), last
        assert "leave adapter_config.json as training wrote it" in last and not (tmp_path / "m").exists()


@pytest.mark.parametrize("make", [lambda d: None, lambda d: (d / "global_step3").mkdir(),
                                  lambda d: ((d / "global_step3").mkdir(),
                                             (d / "global_step3" / "mp_rank_00_model_states.pt").write_text("junk"))])
def test_a_broken_deepspeed_directory_is_one_line(tmp_path, make):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "latest").write_text("global_step3")
    make(ds)
    proc = run_cli("export-adapter", f"--checkpoint={ds}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # the junk shard was an UnpicklingError traceback
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {ds}: a corrupt or incomplete DeepSpeed "
                                                           "checkpoint directory (DeepSpeed cannot consolidate it: ")
    assert not (tmp_path / "a").exists()


def test_a_recorded_base_that_is_gone_is_named_as_the_adapters(tmp_path):
    from lightning_review.artifacts.checkpoint_files import CheckpointError
    from lightning_review.export import export_merged
    from tests.artifacts.test_adapter_record import META, make_adapter

    adapter = make_adapter(tmp_path / "adapter", meta={**META, "checkpoint_dir": str(tmp_path / "moved" / "base")})
    with pytest.raises(CheckpointError, match=f"lightning_review.json records the base model .*moved/base.*, which "
                                              "cannot be used here .*no such directory.*; if the base moved, give "
                                              "its directory as --checkpoint_dir"):
        export_merged(str(adapter), str(tmp_path / "merged"))
    assert not (tmp_path / "merged").exists()


def with_model_max_length(checkpoint, path, length):
    """A copy of ``checkpoint`` whose hyperparameters record ``length`` as model_max_length (an edited or foreign
    checkpoint: training refuses to run with a length the adapter record could not hold)."""
    ckpt = torch.load(checkpoint, weights_only=False)
    ckpt["hyper_parameters"]["model_max_length"] = length
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("length, problem", [
    (2**24 + 1, f"16777217, more than 16,777,216 (2**24): {ROPE_POSITIONS}"),  # model_limits' shared reason
    (True, "True, not a positive whole number or null")])
def test_a_checkpoint_whose_model_max_length_no_adapter_record_holds_is_refused(trained_checkpoint, tmp_path, length,
                                                                                 problem):
    bad = with_model_max_length(trained_checkpoint, tmp_path / "edited.ckpt", length)
    proc = run_cli("export-adapter", f"--checkpoint={bad}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: its hyper_parameters' 'model_max_length' (model.model_max_length) is {problem}; an adapter "
        "exported from it could not be loaded; export a checkpoint of a run trained with model.model_max_length at "
        "most 16,777,216, or null")
    assert not (tmp_path / "a").exists()  # no adapter that export, generate or perplexity would refuse later


def test_a_checkpoint_at_the_bound_exports_an_adapter_that_loads(trained_checkpoint, tmp_path):
    from lightning_review.artifacts.adapter_record import read_adapter_meta
    from lightning_review.export import export_adapter

    edge = with_model_max_length(trained_checkpoint, tmp_path / "edge.ckpt", 2**24)
    adapter = export_adapter(str(edge), str(tmp_path / "adapter"))
    assert read_adapter_meta(adapter)["model_max_length"] == 2**24


def test_exports_warn_nothing_about_deprecated_checkpointing(trained_checkpoint, tmp_path):
    """export-adapter (its peft skeleton) and export (PeftModel.from_pretrained) wrap a model with peft, which reads
    transformers 5.24's deprecated is_gradient_checkpointing: that FutureWarning is not the user's to see."""
    import warnings

    from lightning_review.export import export_adapter, export_merged

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        adapter = export_adapter(str(trained_checkpoint), str(tmp_path / "adapter"))
        merged = export_merged(str(adapter), str(tmp_path / "merged"), dtype="float32")
    assert (merged / "config.json").is_file()
