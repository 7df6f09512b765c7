"""host_overhead.py: one LoRA call's host time, peft's forward and the fused path's (whole, and its autograd function
alone), written with the command that made them; the fused path is the one timed (a Fused layer of the model)."""

import json

import host_overhead


def test_times_peft_and_the_fused_path_and_writes_them(tmp_path, monkeypatch):
    from lightning_review.model import fused_lora

    applied = []
    real = fused_lora._FusedLoRA.apply
    monkeypatch.setattr(fused_lora._FusedLoRA, "apply", lambda *a: applied.append(1) or real(*a))
    out = tmp_path / "host.json"
    result = host_overhead.main(["--no-quantize", "--calls", "20", "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["command"].endswith(f"--out {out}") and result["quantize"] is False
    for key in ("peft_forward_us", "fused_call_us", "fused_apply_alone_us"):
        assert result[key] > 0
    assert abs(result["fused_checks_us"] - (result["fused_call_us"] - result["fused_apply_alone_us"])) < 0.2
    assert len(applied) >= 2 * 22  # the whole path and the function alone both ran it (warm-up included)
