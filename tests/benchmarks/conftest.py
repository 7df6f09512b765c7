"""The step protocol benchmarks/RESULTS.md documents for issue 19 (the baseline and unsloth: one document an optimizer
step, bf16 autocast, torch AdamW, --warmup steps untimed, --steps timed, median step, tokens/s of real tokens),
checked on a tiny CPU model. A probe on the model's forward and on torch.optim.AdamW records what each step did and
drives time.perf_counter: each job's first step takes WARMUP_S of that clock (a compiling warm-up), the later ones
STEP_S in turn, so that the figures a job reports are exact and a timed warm-up shows, however loaded the CPU."""

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

WARMUP_S = 100.0
STEP_S = (0.1, 0.2, 0.6)  # the median (0.2) is not the mean


class StepProbe:
    def __init__(self):
        self.calls: list[tuple[int, int, object]] = []  # (tokens, labelled tokens, autocast dtype) per forward
        self.optimizers = 0
        self.optimizer_steps = 0
        self.now = 0.0
        self._step_in_job = 0

    def clock(self) -> float:
        return self.now

    def instrument(self, model):
        def before_forward(module, args, kwargs):
            ids, labels = kwargs["input_ids"], kwargs["labels"]
            assert ids.shape[0] == 1  # one document a step
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
            self.calls.append((ids.shape[1], int((labels != -100).sum()), dtype))
            i = self._step_in_job
            self.now += WARMUP_S if i == 0 else STEP_S[(i - 1) % len(STEP_S)]
            self._step_in_job += 1

        model.register_forward_pre_hook(before_forward, with_kwargs=True)
        return model

    def expected_calls(self, jobs, review_fraction: float) -> list[tuple[int, int, object]]:
        """One forward per document of each job, its last review_fraction labelled, under bf16 autocast."""
        return [(n, max(1, int(n * review_fraction)), torch.bfloat16) for _, lengths, _ in jobs for n in lengths]

    def assert_timed_as_documented(self, entry: dict, lengths: list[int]) -> None:
        """One warm-up step (untimed), then len(STEP_S) timed: each step's time, their median, real tokens/s."""
        timed = lengths[1:]
        assert len(timed) == len(STEP_S)
        assert (entry["rows"], entry["warmup_rows"], entry["steps"]) == (len(lengths), 1, len(timed))
        assert entry["step_s"] == list(STEP_S)  # the warm-up's WARMUP_S is not among them
        assert entry["median_step_s"] == 0.2
        assert entry["tokens_per_s"] == pytest.approx(sum(timed) / sum(STEP_S), abs=0.1)


def probing(monkeypatch) -> StepProbe:
    """A probe, with torch.optim.AdamW replaced by a subclass that counts optimizers and their steps for it (a new
    optimizer starts a job), and time.perf_counter by its clock."""
    probe = StepProbe()
    adamw = torch.optim.AdamW

    class ProbedAdamW(adamw):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            probe.optimizers += 1
            probe._step_in_job = 0

        def step(self, closure=None):
            probe.optimizer_steps += 1
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "AdamW", ProbedAdamW)
    monkeypatch.setattr(time, "perf_counter", probe.clock)
    return probe


@pytest.fixture
def step_probe(monkeypatch) -> StepProbe:
    return probing(monkeypatch)


@pytest.fixture(scope="session")
def tiny_train_step_run(tiny_llama_dir, tmp_path_factory) -> SimpleNamespace:
    """train_step.py --shape tiny --device cpu with the baseline alone (unquantized), its model probed, once per
    session: its JSON (result), the probe, and the jobs it ran (as train_step.document_jobs built them)."""
    import train_step

    out = tmp_path_factory.mktemp("train_step") / "train_step.json"
    load_baseline = train_step.load_baseline
    with pytest.MonkeyPatch.context() as monkeypatch:
        probe = probing(monkeypatch)
        monkeypatch.setattr(train_step, "load_baseline", lambda *a, **k: probe.instrument(load_baseline(*a, **k)))
        train_step.main(["--shape", "tiny", "--device", "cpu", "--variants", "baseline", "--no-quantize",
                         "--seqs", "48", "--mix", "3", "--mix_row", "64", "--steps", "3", "--warmup", "1",
                         "--out", str(out)])
    result = json.loads(out.read_text())
    jobs = train_step.document_jobs([48], 4, result["mix_lengths"], 64)
    return SimpleNamespace(result=result, probe=probe, jobs=jobs, path=out)
