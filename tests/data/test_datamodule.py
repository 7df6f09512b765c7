import pytest

from lightning_review.data.datamodule import ReviewDataModule, split_by_paper
from lightning_review.data.records import Record
from tests.conftest import write_jsonl


def test_split_never_separates_reviews_of_one_paper():
    recs = [Record(id=f"{p}-{r}", paper=f"paper {p}", review=f"review {r}") for p in range(30) for r in range(3)]
    train, val = split_by_paper(recs, 0.2, seed=1)
    assert len(train) + len(val) == 90 and val
    assert not {r.paper_key for r in train} & {r.paper_key for r in val}


def test_setup_reports_truncation_and_packs(tmp_path, tiny_llama_dir):
    long_paper = " ".join(["We compare contrastive pretraining with prior work on speech recognition."] * 80)
    rows = [{"id": f"r{i}", "paper": long_paper if i % 2 else "A short paper on code generation.",
             "review": f"Summary {i}: fine. Weaknesses: the baselines are weak."} for i in range(12)]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=256, val_fraction=0.0, batch_size=2)
    dm.setup("fit")
    assert dm.stats["train"]["papers_truncated"] == 6
    assert dm.stats["train"]["paper_tokens_removed"] > 0
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (2, 256)
    assert all(sum(lens) <= 256 for lens in batch["doc_lens"])


def test_bad_data_file_names_the_line(tmp_path, tiny_llama_dir):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"paper": "p", "review": "A review long enough to keep."}, {"paper": "p2"}])
    dm = ReviewDataModule(train_file=str(path), tokenizer_dir=str(tiny_llama_dir), max_seq_length=256)
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: missing field 'review'"):
        dm.setup("fit")
