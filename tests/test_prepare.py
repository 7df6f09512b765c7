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
    assert f"[train] read {stats['train']['records']} records from the tokenize cache: " in proc.stdout + proc.stderr
    # the progress bar of a run bounded by max_steps (max_epochs -1): the steps, not Rich's "Epoch 0/-2"
    assert "/-2" not in proc.stdout and "Epoch 0 " in proc.stdout and "step: 1/1" in proc.stdout, proc.stdout


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


def reviewed_papers(n=6, reviews=2):
    return [{"id": f"p{i}", "paper": "We study graphs and molecules. " * (20 + 5 * i) + "\n" * r,
             "review": f"Review {r} of paper {i}: clear writing, weak baselines, missing ablations."}
            for i in range(n) for r in range(reviews)]


def test_prepare_without_validation_papers_and_counts_papers_by_id(tmp_path, tiny_llama_dir):
    from lightning_review.prepare import prepare

    data = write_jsonl(tmp_path / "pairs.jsonl", reviewed_papers())
    stats = prepare(str(data), str(tiny_llama_dir), max_seq_length=256, output_dir=str(tmp_path / "out"),
                    val_fraction=0.0)
    assert stats["train"]["records"] == 12 and stats["train"]["papers"] == 6
    assert stats["val"]["records"] == 0 and stats["val"]["example_tokens"] == {"count": 0}
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["train"]["papers"] == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lengths.png", "stats.json"]


def test_prepare_never_writes_over_its_data(tmp_path, tiny_llama_dir):
    from lightning_review.errors import UserError
    from lightning_review.prepare import prepare

    (tmp_path / "out").mkdir()
    data = write_jsonl(tmp_path / "out" / "stats.json", reviewed_papers())
    (tmp_path / "alias.jsonl").symlink_to(data)
    before = data.read_bytes()
    with pytest.raises(UserError, match=r"^--output_dir=.*stats\.json is the input file .*; give --output_dir another "
                                        r"path$"):  # the flag as typed, as prepare's other messages name it
        prepare(str(data), str(tiny_llama_dir), max_seq_length=256, output_dir=str(tmp_path / "out"))
    with pytest.raises(UserError, match=r"rejects_file=.*alias\.jsonl is the input file .*stats\.json"):
        prepare(str(data), str(tiny_llama_dir), max_seq_length=256, output_dir=str(tmp_path / "elsewhere"),
                on_bad_record="skip", rejects_file=str(tmp_path / "alias.jsonl"))
    assert data.read_bytes() == before and not (tmp_path / "elsewhere").exists()


def test_prepare_on_an_empty_file_is_one_line_and_exit_1(tmp_path, tiny_llama_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    proc = run_cli("prepare", f"--data_file={empty}", f"--tokenizer_dir={tiny_llama_dir}",
                   f"--output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {empty}: no records found (an empty file?)" in proc.stderr
    assert not (tmp_path / "out").exists()


DOCUMENT = "Long documents about graphs and molecules, read for context extension. "


def text_task_files(tmp_path):
    """The same three documents (no reviews) in every format the readers take, with the mapping each needs."""
    import csv

    docs = [DOCUMENT * (4 + i) for i in range(3)]
    (tmp_path / "csv").mkdir()
    with (tmp_path / "csv" / "docs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "text"])
        writer.writeheader()
        writer.writerows({"key": f"c{i}", "text": d} for i, d in enumerate(docs))
    (tmp_path / "docs.json").write_text(json.dumps([{"body": d} for d in docs]))
    peerread = tmp_path / "peerread"
    (peerread / "reviews").mkdir(parents=True)
    (peerread / "parsed_pdfs").mkdir()
    for i, d in enumerate(docs):
        (peerread / "reviews" / f"{i}.json").write_text(json.dumps({"id": str(i), "reviews": [
            {"comments": "A reviewer's comments.", "RECOMMENDATION": 5}]}))
        (peerread / "parsed_pdfs" / f"{i}.pdf.json").write_text(json.dumps({"metadata": {"abstractText": d}}))
    return {
        "jsonl": (write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": d} for i, d in enumerate(docs)]),
                  None),
        "chat": (write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": d}]} for d in docs]),
                 None),
        "paper_reviews": (write_jsonl(tmp_path / "papers.jsonl",
                                      [{"id": f"p{i}", "paper": d, "reviews": []} for i, d in enumerate(docs)]), None),
        "csv": (tmp_path / "csv" / "docs.csv", {"id": "key"}),
        "json": (tmp_path / "docs.json", {"paper": "body"}),
        "peerread": (peerread, None),
    }, docs


def test_prepare_text_task_reports_documents_in_every_format(tmp_path, tokenizer, tiny_llama_dir):
    from lightning_review.data.readers import detect_format
    from lightning_review.prepare import prepare

    files, docs = text_task_files(tmp_path)
    lengths = sorted(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in docs)
    for fmt, (path, mapping) in files.items():
        assert detect_format(path) == fmt
        stats = prepare(str(path), str(tiny_llama_dir), max_seq_length=64, output_dir=str(tmp_path / "out" / fmt),
                        val_fraction=0.0, column_mapping=mapping, plot=False, task="text")
        train = stats["train"]
        assert stats["task"] == "text" and "rating_line" not in stats, fmt
        assert (train["records"], train["papers"], train["document_tokens"]["count"]) == (3, 3, 3), fmt
        assert (train["document_tokens"]["min"], train["document_tokens"]["max"]) == (lengths[0], lengths[-1]), fmt
        assert train["stream_tokens"] == sum(lengths) + 2, fmt  # an end-of-sequence between documents
        assert train["examples"] * 64 + train["tokens_left_out"] == train["stream_tokens"], fmt


def test_prepare_text_task_names_bad_documents_and_counts_skipped_ones(tmp_path, tiny_llama_dir):
    from lightning_review.data.records import RecordError
    from lightning_review.errors import UserError
    from lightning_review.prepare import prepare

    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": DOCUMENT * 5}, {"title": "no document"},
                                                 {"text": DOCUMENT * 6}])
    with pytest.raises(RecordError, match=r"docs\.jsonl:2: no document: the text task reads the field 'paper' or "
                                          r"'text' of each line .*add one or remove the line"):
        prepare(str(data), str(tiny_llama_dir), max_seq_length=64, output_dir=str(tmp_path / "out"), task="text")
    with pytest.raises(RecordError, match=r"docs\.jsonl:1: missing field 'paper' .*data\.task text"):
        prepare(str(data), str(tiny_llama_dir), max_seq_length=64, output_dir=str(tmp_path / "out"))  # review task
    with pytest.raises(UserError, match=r"^--rating_line=true is for the review task.*leave --rating_line out$"):
        prepare(str(data), str(tiny_llama_dir), output_dir=str(tmp_path / "out"), task="text", rating_line=True)
    assert not (tmp_path / "out").exists()
    stats = prepare(str(data), str(tiny_llama_dir), max_seq_length=64, output_dir=str(tmp_path / "out"),
                    val_fraction=0.0, on_bad_record="skip", plot=False, task="text")
    assert stats["read"]["train_file"]["rejected"] == {"missing_paper": 1} and stats["train"]["papers"] == 2


def test_prepare_text_task_from_the_command_line(tmp_path, tiny_llama_dir, capsys):
    from lightning_review.cli import main

    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": DOCUMENT * (5 + i)} for i in range(4)])
    main(["prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", "--max_seq_length=64", "--task=text",
          "--val_fraction=0.25", f"--output_dir={tmp_path / 'out'}"])  # in this process: a subprocess costs 20 s
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["task"] == "text" and stats["train"]["papers"] == 3 and stats["val"]["papers"] == 1
    out = capsys.readouterr().out
    assert "3 training documents (3 records); document tokens p50/p90/max" in out
    assert f"rows of 64 ({stats['train']['tokens_left_out']:,} tokens of the tail left out)" in out
    assert (tmp_path / "out" / "lengths.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["prepare", f"--data_file={data}", f"--tokenizer_dir={tiny_llama_dir}", "--task=texts"])
    assert "error: --task expects one of 'review', 'text', got 'texts'" in capsys.readouterr().err
