"""benchmarks/unsloth_step.py without unsloth (CPU): the jobs it takes from a train_step.py JSON, the baseline's
trainable-parameter count it checks unsloth against, the side-by-side it writes, and that its model is timed by
train_step.py's own step loop (a tiny model standing in for unsloth's)."""

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
    jobs = {label: (lengths, row) for label, lengths, row in unsloth_step.jobs_of(args, like)}
    assert jobs == {"seq_8192": ([8192] * 4, 8192), "mix_16384": (like["mix_lengths"], 16384)}
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


def test_unsloth_is_timed_by_train_steps_own_loop(tiny_train_step_run, tiny_llama_dir, step_probe, tmp_path):
    """time_jobs on a tiny train_step.py run (--like), a probed tiny model standing in for unsloth's: the jobs,
    steps, timing and summary are train_step's (a warm-up timed, another optimizer, a summary of its own fail)."""
    import train_step
    from transformers import AutoConfig

    like = tiny_train_step_run.result
    args = unsloth_step.parse_args(["--like", str(tiny_train_step_run.path), "--out", str(tmp_path / "unsloth.json")])
    args.device = "cpu"
    jobs = unsloth_step.jobs_of(args, like)
    assert jobs == tiny_train_step_run.jobs
    loads = []

    def load(checkpoint, context, device, quantize):
        loads.append((checkpoint, context, device, quantize))
        model = train_step.load_baseline(checkpoint, context, device, False, lora_dropout=args.lora_dropout)
        return step_probe.instrument(model)

    result = {"args": vars(args)}
    unsloth_step.time_jobs(args, like, jobs, tiny_llama_dir, AutoConfig.from_pretrained(tiny_llama_dir), result, load,
                           lambda model: {"trainable_params": sum(p.numel() for p in model.parameters()
                                                                  if p.requires_grad)})
    written = json.loads(Path(args.out).read_text())
    assert written == result
    assert loads == [(tiny_llama_dir, 256, "cpu", True)]  # once, 4-bit as the baseline on the GPU
    assert step_probe.calls == step_probe.expected_calls(jobs, args.review_fraction)
    assert step_probe.optimizers == len(jobs) and step_probe.optimizer_steps == len(step_probe.calls)
    for label, lengths, _ in jobs:
        entries = written[label]
        step_probe.assert_timed_as_documented(entries["unsloth"], lengths)
        assert set(entries["unsloth"]) == set(entries["baseline"])  # train_step's summary, field for field
        assert entries["baseline"] == like[label]["baseline"]  # the --like run's entry beside it
        assert entries["speedup unsloth"] == round(entries["unsloth"]["tokens_per_s"]
                                                   / entries["baseline"]["tokens_per_s"], 3)
    assert written["setup"]["trainable_params"] > 0 and set(written["load_s"]) == {"unsloth"}
    assert "unsloth" not in sys.modules
