"""benchmarks/unsloth_step.py without unsloth (CPU): the jobs it takes from a train_step.py JSON, the baseline's
trainable-parameter count it checks unsloth against, and the side-by-side it writes."""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
unsloth_step = pytest.importorskip("unsloth_step")


def test_jobs_are_train_steps_own_lengths():
    """A committed train_step.py run: its 8192 job (warm-up + timed rows) and its mix lengths, label for label."""
    like_file = BENCHMARKS / "results" / "train_step_fused_13b_h200.json"
    like = json.loads(like_file.read_text())
    args = unsloth_step.parse_args(["--like", str(like_file)])
    assert (args.shape, args.warmup, args.steps, args.review_fraction) == ("13b", 1, 3, 0.1)
    jobs = dict(unsloth_step.jobs_of(args, like))
    assert jobs == {"seq_8192": [8192] * 4, "mix_16384": like["mix_lengths"]}
    assert set(jobs) <= set(like)  # the labels under which train_step.py filed the same jobs
    assert args.lora_dropout == 0.05  # a run from before train_step.py --lora_dropout: its fixed 0.05


def test_a_setting_that_contradicts_the_like_run_is_refused(tmp_path):
    like_file = BENCHMARKS / "results" / "train_step_fused_13b_h200.json"
    with pytest.raises(SystemExit, match="ran lora_dropout=0.05"):
        unsloth_step.parse_args(["--like", str(like_file), "--lora_dropout", "0"])
    assert unsloth_step.parse_args(["--like", str(like_file), "--shape", "13b"]).shape == "13b"  # agrees: fine
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"seq_8192": {}}))
    with pytest.raises(SystemExit, match="not a train_step.py JSON"):
        unsloth_step.parse_args(["--like", str(other)])


def test_expected_trainable_is_what_peft_trains_for_the_baseline():
    """The count unsloth's setup is checked against: peft's LoRA r=64 on the 7 projections + embeddings + norms."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from lightning_review.model.loading import EMBEDDINGS_AND_NORMS, LORA_TARGETS

    config = LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(
        r=64, lora_alpha=16, target_modules=LORA_TARGETS, modules_to_save=EMBEDDINGS_AND_NORMS))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert unsloth_step.expected_trainable(config, 64) == trainable


def test_compare_reports_speedups_beside_unsloth():
    entries = {"baseline": {"tokens_per_s": 4000.0}, "ours:width=fit": {"tokens_per_s": 6000.0},
               "unsloth": {"tokens_per_s": 5000.0}}
    unsloth_step.compare(entries, "unsloth")
    assert entries["speedup unsloth"] == 1.25
    assert entries["ours over unsloth"] == {"ours:width=fit": 1.2}
    oom = {"baseline": {"tokens_per_s": 4000.0}, "unsloth": {"oom": True}}
    unsloth_step.compare(oom, "unsloth")
    assert set(oom) == {"baseline", "unsloth"}  # an OOM gets no ratio


def test_help_runs_without_unsloth(capsys):
    with pytest.raises(SystemExit) as exit_:
        unsloth_step.parse_args(["--help"])
    assert exit_.value.code == 0
    assert "--like" in capsys.readouterr().out
    assert "unsloth" not in sys.modules
