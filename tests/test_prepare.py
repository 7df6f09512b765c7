"""``prepare``: statistics as JSON and a PNG, the tokenize cache that training then hits."""

import json

import pytest

from tests.conftest import ROOT, SHARED_DATA, run_cli, write_jsonl


def test_prepare_writes_stats_and_histogram_and_training_hits_its_cache(tmp_path, tiny_llama_dir):
    rows = [{"id": f"p{i}", "paper": "We study graphs and molecules. " * (20 + 10 * i),
             "review": f"Review {i}: clear writing, weak baselines, missing ablations."} for i in range(12)]
    rows.append({"paper": "A paper.", "review": "short"})
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    env = {"LIGHTNING_REVIEW_CACHE": str(tmp_path / "cache")}
    proc = run_cli("prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", "--max_seq_length=256",
                   "--val_fraction=0.2", "--on_bad_record=skip", f"--rejects_file={tmp_path / 'rejects.jsonl'}",
                   f"--output_dir={tmp_path / 'out'}", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["read"]["train_file"]["rejected"] == {"review_too_short": 1}
    assert stats["train"]["records"] + stats["val"]["records"] == 12
    assert stats["train"]["paper_tokens"]["max"] > 256 and stats["train"]["papers_truncated"] > 0
    assert 0 < stats["train"]["packing_efficiency"] <= 1
    assert (tmp_path / "out" / "lengths.png").read_bytes()[:4] == b"\x89PNG"
    assert "rejects.jsonl" in stats["read"]["train_file"]["rejects_file"]

    proc = run_cli("fit", "-c", "configs/demo.yaml", f"--data.train_file={data}", "--data.max_seq_length=256",
                   "--data.val_fraction=0.2", "--data.on_bad_record=skip", "--trainer.max_steps=1",
                   "--trainer.limit_val_batches=0", f"--trainer.default_root_dir={tmp_path}", "--model.lora_r=4",
                   cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "examples (from the tokenize cache)" in proc.stdout + proc.stderr


def test_prepare_on_the_real_peerread_sample(tmp_path, tiny_llama_dir):
    if not SHARED_DATA.exists():
        pytest.skip("the PeerRead sample in ../shared/data is absent")
    proc = run_cli("prepare", f"--data_file={SHARED_DATA}", f"--tokenizer_dir={tiny_llama_dir}",
                   "--max_seq_length=4096", f"--output_dir={tmp_path}", "--val_fraction=0.2", cwd=tmp_path,
                   env={"LIGHTNING_REVIEW_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["train"]["papers"] + stats["val"]["papers"] == stats["read"]["train_file"]["papers"]
    assert stats["train"]["review_tokens"]["p50"] > 0
