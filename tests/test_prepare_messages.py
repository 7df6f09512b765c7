"""What ``prepare`` (and the DataModule under ``fit``) says about tokenizing: records tokenized now, read from the
tokenize cache, or both counts when one split was found and the other tokenized; never "from the tokenize cache" for
records it has just tokenized (prepare_data builds the cache entry, setup reads it back)."""

import json
import logging
import re

from tests.conftest import run_cli, write_jsonl


def papers(tag: str, n: int) -> list[dict]:
    return [{"id": f"{tag}{i}", "paper": f"We study graphs and molecules ({tag} {i}). " * (10 + i),
             "review": f"Review of {tag}{i}: clear writing, weak baselines, missing ablations."} for i in range(n)]


def info_lines(text: str) -> str:
    """The DataModule's lines about each split and prepare's summary line (not paths, which hold the test's name)."""
    return "\n".join(line for line in text.splitlines() if line.startswith(("[train]", "[val]"))
                     or "training records on" in line)


def test_prepare_says_tokenized_then_read_from_the_cache_then_both(tmp_path, tiny_llama_dir, monkeypatch, capsys,
                                                                   caplog):
    from lightning_review.cli import main

    train = write_jsonl(tmp_path / "train.jsonl", papers("t", 6))
    val_a = write_jsonl(tmp_path / "val_a.jsonl", papers("a", 2))
    val_b = write_jsonl(tmp_path / "val_b.jsonl", papers("b", 3))
    cache = tmp_path / "cache"  # empty: nothing has been tokenized yet
    args = [f"--data_file={train}", f"--tokenizer_dir={tiny_llama_dir}", "--max_seq_length=256", "--plot=false"]

    # the first prepare on fresh data, as a user runs it
    proc = run_cli("prepare", *args, f"--val_file={val_a}", f"--output_dir={tmp_path / 'first'}", cwd=tmp_path,
                   env={"LIGHTNING_REVIEW_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = info_lines(proc.stdout + proc.stderr)
    assert "from the tokenize cache" not in first, first
    assert "[train] tokenized 6 records (written to the tokenize cache): 6 examples" in first
    assert "[val] tokenized 2 records (written to the tokenize cache): 2 examples" in first
    assert "; tokenized 8 records (written to the tokenize cache); written to" in first
    stats = json.loads((tmp_path / "first" / "stats.json").read_text())
    assert (stats["train"]["records_tokenized"], stats["train"]["records_from_cache"]) == (6, 0)
    assert stats["train"]["tokenize_cache_hit"] == 0

    # the next two in this process (a subprocess costs about 20 s each); Lightning's logger does not propagate
    monkeypatch.setenv("LIGHTNING_REVIEW_CACHE", str(cache))
    logging.getLogger("lightning.pytorch").addHandler(caplog.handler)
    caplog.set_level(logging.INFO, "lightning.pytorch")
    try:
        def prepare(val, out):
            caplog.clear()
            stats = main(["prepare", *args, f"--val_file={val}", f"--output_dir={tmp_path / out}"])
            return info_lines("\n".join(caplog.messages) + "\n" + capsys.readouterr().out), stats

        second, stats = prepare(val_a, "second")
        assert "[train] read 6 records from the tokenize cache: 6 examples" in second, second
        assert "[val] read 2 records from the tokenize cache: 2 examples" in second
        assert "; read 8 records from the tokenize cache; written to" in second
        assert not re.search(r"tokenized \d+ records", second), second
        assert (stats["train"]["records_tokenized"], stats["train"]["records_from_cache"]) == (0, 6)
        assert stats["train"]["tokenize_cache_hit"] == 1

        mixed, stats = prepare(val_b, "mixed")  # the training split's entry is found, the new validation file's not
        assert "[train] read 6 records from the tokenize cache" in mixed, mixed
        assert "[val] tokenized 3 records (written to the tokenize cache): 3 examples" in mixed
        assert ("; tokenized 3 records (written to the tokenize cache), read 6 from the tokenize cache; written to"
                in mixed)
        assert (stats["val"]["records_tokenized"], stats["train"]["records_from_cache"]) == (3, 6)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(caplog.handler)


def test_the_datamodule_counts_what_prepare_data_tokenized_as_tokenized(tmp_path, tiny_llama_dir, monkeypatch):
    """fit's path: prepare_data builds the entry, setup reads it; the records were tokenized by this run."""
    from lightning_review.data.datamodule import ReviewDataModule

    monkeypatch.setenv("LIGHTNING_REVIEW_CACHE", str(tmp_path / "cache"))
    data = write_jsonl(tmp_path / "train.jsonl", papers("p", 5))

    def run():
        dm = ReviewDataModule(train_file=str(data), tokenizer_dir=str(tiny_llama_dir), max_seq_length=256,
                              val_fraction=0.0)
        dm.prepare_data()
        dm.setup("fit")
        return dm.stats["train"]

    first = run()
    assert (first["records_tokenized"], first["records_from_cache"], first["tokenize_cache_hit"]) == (5, 0, 0)
    again = run()
    assert (again["records_tokenized"], again["records_from_cache"], again["tokenize_cache_hit"]) == (0, 5, 1)
    # another process of the same machine (a DDP rank other than 0) runs setup alone and reads the entry
    other = ReviewDataModule(train_file=str(data), tokenizer_dir=str(tiny_llama_dir), max_seq_length=256,
                             val_fraction=0.0)
    other.setup("fit")
    assert other.stats["train"]["records_from_cache"] == 5
