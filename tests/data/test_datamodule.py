import re

import pytest

from lightning_review.data.datamodule import ReviewDataModule, split_by_paper
from lightning_review.data.records import Record
from lightning_review.errors import UserError
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


REVIEW = "Summary: fine. Weaknesses: the baselines are weak and the ablation is missing."


def test_split_is_by_paper_id_so_whitespace_variants_never_leak_into_validation():
    recs = [Record(id=f"p{p}", paper_id=f"p{p}", paper=f"Paper {p}." + "\n" * r, review=f"review {r}")
            for p in range(10) for r in range(3)]
    for seed in range(5):
        train, val = split_by_paper(recs, 0.3, seed=seed)
        assert len(train) + len(val) == 30 and len(val) == 9
        assert not {r.paper_id for r in train} & {r.paper_id for r in val}


def test_one_paper_stays_for_training_whatever_the_fraction():
    recs = [Record(id="a", paper="Paper.", review="r1"), Record(id="b", paper="Paper.\n", review="r2")]
    train, val = split_by_paper(recs, 0.9, seed=0)
    assert len(train) == 2 and val == []


def test_a_file_of_one_paper_says_validation_is_left_without_a_paper(tmp_path, tiny_llama_dir):
    """Five ids with one paper text are one paper (no leak into validation), so val_fraction finds nothing to hold
    out: said, not a run that silently never validates (found by a hostile test)."""
    rows = [{"id": f"p{i}", "paper": "One paper text under five ids.", "review": f"{REVIEW} ({i})"} for i in range(5)]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "one.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=256, val_fraction=0.1)
    with pytest.warns(UserWarning, match=r"one\.jsonl: its 5 records are reviews of one paper .* data\.val_fraction "
                                         r"0\.1 leaves no validation paper"):
        splits = dm.split_records()
    assert len(splits["train"]) == 5 and splits["val"] == []


def test_a_rejects_file_that_is_a_data_file_is_refused_at_construction(tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", [{"paper": "p", "review": REVIEW}])
    (tmp_path / "link.jsonl").symlink_to(data)
    val = write_jsonl(tmp_path / "v.jsonl", [{"paper": "q", "review": REVIEW}])
    before = data.read_bytes()
    with pytest.raises(UserError, match=r"^data\.rejects_file=.*link\.jsonl is the input file .*g\.jsonl"):
        ReviewDataModule(train_file=str(data), rejects_file=str(tmp_path / "link.jsonl"))
    with pytest.raises(UserError, match=r"^data\.rejects_file \(\+ '\.val'\)=.*v\.jsonl\.val is the input file"):
        ReviewDataModule(train_file=str(data), val_file=str(tmp_path / "v.jsonl.val"),
                         rejects_file=str(tmp_path / "v.jsonl"))
    assert data.read_bytes() == before and val.is_file()


@pytest.mark.parametrize("rows, message", [
    ([], r"empty\.jsonl: no records found \(an empty file\?\)"),
    ([{"paper": "p", "review": "short"}], r"empty\.jsonl: no record can be used, all 1 were rejected "
                                          r"\(\{'review_too_short': 1\}\), listed in .*rejects"),
])
def test_no_usable_record_is_an_error_naming_the_file(tmp_path, tiny_llama_dir, rows, message):
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "empty.jsonl", rows)),
                          tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, on_bad_record="skip",
                          rejects_file=str(tmp_path / "rejects.jsonl"))
    with pytest.raises(UserError, match=message):
        dm.setup("fit")


def test_nothing_that_fits_max_seq_length_is_an_error_saying_what_to_raise(tmp_path, tiny_llama_dir):
    rows = [{"id": f"r{i}", "paper": "A paper on graphs. " * 60, "review": REVIEW * 8} for i in range(3)]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=64, val_fraction=0.0)
    with pytest.raises(UserError, match=r"t\.jsonl: nothing to train on: none of its 3 training records fits "
                                        r"data\.max_seq_length=64 .* raise data\.max_seq_length to at least (\d+)"
                       ) as info:
        dm.setup("fit")
    needed = int(re.search(r"at least (\d+)", str(info.value)).group(1))
    fits = ReviewDataModule(train_file=str(tmp_path / "t.jsonl"), tokenizer_dir=str(tiny_llama_dir),
                            max_seq_length=needed, val_fraction=0.0, tokenize_cache=False)
    fits.setup("fit")  # the length the message asks for is enough, and no less would do
    assert fits.stats["train"]["examples"] == 3
    with pytest.raises(UserError, match="nothing to train on"):
        ReviewDataModule(train_file=str(tmp_path / "t.jsonl"), tokenizer_dir=str(tiny_llama_dir),
                         max_seq_length=needed - 1, val_fraction=0.0, tokenize_cache=False).setup("fit")
    with pytest.raises(UserError, match="no training rows"):
        ReviewDataModule(train_file=str(tmp_path / "t.jsonl")).train_dataloader()


def test_the_training_file_as_validation_file_is_refused_before_anything_is_read(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"id": "a", "paper": "Paper A.", "review": REVIEW}])
    (tmp_path / "link.jsonl").symlink_to(train)
    for val in (train, tmp_path / "link.jsonl", tmp_path / "." / "train.jsonl"):
        with pytest.raises(UserError, match=r"data\.val_file=.* is data\.train_file: every validation paper would "
                                            r"be a training paper; leave data\.val_file out"):
            ReviewDataModule(train_file=str(train), val_file=str(val))


def test_a_validation_file_with_training_papers_is_called_out(tmp_path, tiny_llama_dir):
    train = write_jsonl(tmp_path / "train.jsonl", [{"id": "a", "paper": "Paper A.", "review": REVIEW},
                                                   {"id": "b", "paper": "Paper B.", "review": REVIEW}])
    val = write_jsonl(tmp_path / "val.jsonl", [{"id": "a", "paper": "Paper A.\n", "review": REVIEW + " Again."},
                                               {"id": "c", "paper": "Paper C.", "review": REVIEW}])
    dm = ReviewDataModule(train_file=str(train), val_file=str(val), tokenizer_dir=str(tiny_llama_dir))
    with pytest.warns(UserWarning, match=r"val\.jsonl: 1 of 2 validation records are reviews of papers in "
                                         r".*train\.jsonl .*val\.jsonl:1"):
        dm.split_records()
    assert dm.stats["val_records_of_training_papers"] == 1


def test_text_task_trains_on_the_papers_joined_into_full_rows(tmp_path, tiny_llama_dir):
    """Context extension: each paper once (three reviews do not make three copies), the papers joined with EOS
    into rows of exactly max_seq_length, every token labelled and one position run per row."""
    from transformers import AutoTokenizer

    papers = [f"Paper {i}. " + " ".join(["We evaluate sparse mixture of experts on three public corpora."] * 12)
              for i in range(3)]
    rows = [{"id": f"p{i}#{j}", "paper": paper, "review": f"Review {j} of paper {i}: the baselines are weak."}
            for i, paper in enumerate(papers) for j in range(3)]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=128, val_fraction=0.0, batch_size=1, task="text")
    dm.setup("fit")
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    stream_tokens = sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in papers) + 2
    assert dm.stats["train"]["papers"] == 3
    assert dm.stats["train"]["stream_tokens"] == stream_tokens
    assert dm.stats["train"]["examples"] == stream_tokens // 128
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (1, 128)
    assert batch["doc_lens"] == [[128]] and batch["position_ids"][0].tolist() == list(range(128))
    assert (batch["labels"] == batch["input_ids"]).all()


def test_text_task_with_too_little_text_says_so(tmp_path, tiny_llama_dir):
    rows = [{"id": "p", "paper": "A short paper.", "review": "A review long enough to keep, surely."}]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=128, val_fraction=0.0, task="text")
    with pytest.raises(UserError, match="less than one row of data.max_seq_length=128"):
        dm.setup("fit")


def test_token_lengths_count_the_paper_and_the_review_of_each_example(tmp_path, tokenizer, tiny_llama_dir):
    rows = [{"id": f"r{i}", "paper": f"A paper on graphs, number {i}. " * (i + 1), "review": REVIEW} for i in range(3)]
    dm = ReviewDataModule(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), tokenizer_dir=str(tiny_llama_dir),
                          max_seq_length=512, val_fraction=0.0, tokenize_cache=False)
    dm.setup("fit")
    lengths = dm.token_lengths("train")
    encoder = dm.prompt_tokenizer()
    records = dm.split_records()["train"]
    assert lengths["paper_tokens"].tolist() == [len(tokenizer(r.paper, add_special_tokens=False)["input_ids"])
                                                for r in records]
    assert lengths["review_tokens"].tolist() == [len(encoder.review_ids(r.review)) for r in records]
    assert dm.token_lengths("val")["example_tokens"].size == 0  # no validation papers: empty, not an error


def test_packed_rows_can_be_as_wide_as_their_documents(tmp_path, tiny_llama_dir):
    """packed_width=documents: no row padded past its documents (rounded up to pad_to_multiple_of), the same
    documents in the same rows as with fixed-width rows."""
    rows = [{"id": f"r{i}", "paper": "A short paper on code generation. " * (1 + i % 3),
             "review": f"Summary {i}: fine. Weaknesses: the baselines are weak."} for i in range(6)]
    data = str(write_jsonl(tmp_path / "t.jsonl", rows))
    batches = {}
    for width in ("max_seq_length", "documents"):
        dm = ReviewDataModule(train_file=data, tokenizer_dir=str(tiny_llama_dir), max_seq_length=1024,
                              val_fraction=0.0, batch_size=1, packed_width=width)
        dm.setup("fit")
        batches[width] = list(dm.train_dataloader())
    for fixed, fitted in zip(batches["max_seq_length"], batches["documents"], strict=True):
        used = sum(fitted["doc_lens"][0])
        assert fixed["input_ids"].shape[1] == 1024
        assert fitted["input_ids"].shape[1] == -(-used // 64) * 64 < 1024
        assert fitted["doc_lens"] == fixed["doc_lens"]
        assert fitted["input_ids"][0, :used].tolist() == fixed["input_ids"][0, :used].tolist()


def _text_dm(path, tiny_llama_dir, **kw):
    return ReviewDataModule(train_file=str(path), tokenizer_dir=str(tiny_llama_dir), max_seq_length=64,
                            val_fraction=0.0, task="text", **kw)


def test_text_task_reads_documents_without_reviews_in_paper_or_text(tmp_path, tiny_llama_dir, tokenizer):
    """Context extension on one's own long documents: ``{"text": ...}`` and ``{"paper": ...}`` lines without a
    review are read, each once, joined with EOS (in the split's seeded order); the review task still refuses the
    same file."""
    docs = [f"Document {i}. " + " ".join([f"Long text about topic {i} that goes on and on."] * 6) for i in range(3)]
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "d0", "paper": docs[0]}, {"text": docs[1]},
                                                 {"id": "d2", "text": docs[2], "review": "Too short."}])
    dm = _text_dm(path, tiny_llama_dir)
    dm.setup("fit")
    order = [r.paper for r in dm.split_records()["train"]]
    assert sorted(order) == docs
    encoded = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in order]
    stream = encoded[0] + [tokenizer.eos_token_id] + encoded[1] + [tokenizer.eos_token_id] + encoded[2]
    assert dm.stats["train"]["papers"] == 3 and dm.stats["train"]["stream_tokens"] == len(stream)
    rows = sorted((row[0] for row in dm.train_rows), key=lambda ex: int(ex["id"].rsplit("-", 1)[1]))
    assert [ex["input_ids"].tolist() for ex in rows] == [stream[i:i + 64] for i in range(0, len(stream) - 63, 64)]
    assert dm.stats["read"]["train_file"]["rejected"] == {}  # the short review is not read, so not refused
    with pytest.raises(UserError, match=r"docs\.jsonl:1: missing field 'review'"):
        ReviewDataModule(train_file=str(path), tokenizer_dir=str(tiny_llama_dir), max_seq_length=64).setup("fit")
    text_only = write_jsonl(tmp_path / "text.jsonl", [{"text": docs[1]}])
    with pytest.raises(UserError, match=r"text\.jsonl:1: missing field 'paper' .*read by the text task only "
                                        r"\(data\.task text\)"):
        ReviewDataModule(train_file=str(text_only), tokenizer_dir=str(tiny_llama_dir),
                         max_seq_length=64).setup("fit")


@pytest.mark.parametrize("line, message", [
    ({"id": "x", "body": "A long document."}, r"no document: the text task reads the field 'paper' or 'text' of each "
                                              r"line .*add one or remove the line"),
    ({"paper": "A long document.", "text": "Another."}, r"both 'paper' and 'text'.*keep one of the two fields"),
    ({"text": "  "}, r"field 'text' is empty; give it text or remove the line"),
])
def test_text_task_line_without_one_document_is_named(tmp_path, tiny_llama_dir, line, message):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": "A first document of some length."}, line])
    with pytest.raises(UserError, match=r"docs\.jsonl:2: " + message):
        _text_dm(path, tiny_llama_dir).setup("fit")
    skipping = _text_dm(path, tiny_llama_dir, on_bad_record="skip", rejects_file=str(tmp_path / "rejects.jsonl"))
    assert len(skipping.split_records()["train"]) == 1  # counted and listed, not silently dropped
    assert sum(skipping.stats["read"]["train_file"]["rejected"].values()) == 1
    assert "docs.jsonl:2" in (tmp_path / "rejects.jsonl").read_text()


def test_text_task_documents_have_no_review_samples(tmp_path, tiny_llama_dir):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Document {i} text."} for i in range(4)])
    dm = ReviewDataModule(train_file=str(path), tokenizer_dir=str(tiny_llama_dir), max_seq_length=64,
                          val_fraction=0.5, task="text")
    assert len(dm.split_records()["val"]) == 2 and dm.review_samples(2) == []
