"""The rating line: one rule writes it into every training target (tokenize cache, DataModule, OpenAI export) and
one rule reads it back; on by default exactly when every record has a rating."""

import json

import pytest

from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.data.prompt import ReviewPromptTokenizer
from lightning_review.data.rating_line import parse_rating, resolve_rating_line, training_target
from lightning_review.data.records import Record
from lightning_review.data.token_cache import load_or_build
from lightning_review.errors import UserError
from lightning_review.openai_ft.commands import export
from tests.conftest import write_jsonl

REVIEW = "The method is sound but the evaluation is thin; add the ablation of the loss."


def rec(i, rating=7.0, where=None):
    return Record(id=f"p{i}#0", paper=f"Paper {i} studies graph diffusion for image segmentation.", review=REVIEW,
                  rating=rating, paper_id=f"p{i}", where=where)


def test_the_target_ends_with_the_rating_line_that_parse_reads_back():
    target = training_target(rec(0, 6.5), True)
    assert target == REVIEW + "\n\nRating: 6.5"
    assert training_target(rec(0, 7.0), True).endswith("\n\nRating: 7")
    assert training_target(rec(0, 7.0), False) == REVIEW
    for rating in (1, 4, 6.5, 10):
        assert parse_rating(training_target(rec(0, rating), True)) == rating


@pytest.mark.parametrize("text, rating", [
    ("Good paper.\nRating: 8", 8.0),
    ("Good paper.\n**Rating:** 6 / 10\n", 6.0),
    ("Good paper.\nrating: 3.5", 3.5),
    ("Rating: 6: Marginally above acceptance threshold", 6.0),
    ("Rating: 2\nMore text.\nRating: 9", 9.0),  # the last line that states one
    ("I would give it a rating: 7 if the proofs held.", None),  # inside a sentence: no rating line
    ("Rating: 4/5", None),  # another scale: not guessed
    ("Rating: 11/10", None),  # off the scale it names
    ("Rating: 11/10\nRating: 8/10", 8.0),
    ("Rating: seven", None),
    ("No rating at all.", None),
])
def test_parse_accepts_only_a_line_that_states_the_rating(text, rating):
    assert parse_rating(text) == rating


def test_default_is_on_when_every_record_has_a_rating_and_mixed_data_is_refused():
    assert resolve_rating_line(None, [rec(0), rec(1)], "f") is True
    assert resolve_rating_line(None, [rec(0, None), rec(1, None)], "f") is False
    assert resolve_rating_line(False, [rec(0), rec(1, None)], "f") is False
    with pytest.raises(UserError, match=r"f: 1 of 2 records have no rating \(e.g. data.jsonl:2\).*rating_line false"):
        resolve_rating_line(None, [rec(0), rec(1, None, "data.jsonl:2")], "f")
    with pytest.raises(UserError, match=r"data.jsonl:5: no rating, but data.rating_line is on"):
        resolve_rating_line(True, [rec(0), rec(1, None, "data.jsonl:5")], "f")


def test_the_tokenize_cache_key_changes_with_the_setting(tokenizer, tmp_path):
    encoder = ReviewPromptTokenizer(tokenizer, max_seq_length=256)
    recs = [rec(i) for i in range(3)]
    plain, hit = load_or_build(encoder, recs, tmp_path, progress=False, rating_line=False)
    rated, hit_rated = load_or_build(encoder, recs, tmp_path, progress=False, rating_line=True)
    assert not hit and not hit_rated and len(list(tmp_path.iterdir())) == 2
    _, hit_again = load_or_build(encoder, recs, tmp_path, progress=False, rating_line=True)
    assert hit_again
    _, hit_rerated = load_or_build(encoder, [rec(0, 3.0), *recs[1:]], tmp_path, progress=False, rating_line=True)
    assert not hit_rerated  # same papers and reviews, another rating: another target
    expected = encoder(recs[0].paper, training_target(recs[0], True))
    assert rated.example(0)["input_ids"].tolist() == expected.input_ids
    assert len(rated.example(0)["input_ids"]) > len(plain.example(0)["input_ids"])


def rows(n, rating=lambda i: 3 + i % 5):
    return [{"id": f"p{i}", "paper": f"Paper {i} studies graph diffusion for segmentation. " * 5,
             "review": f"Review {i}: " + REVIEW, "rating": rating(i)} for i in range(n)]


def test_the_datamodule_trains_on_the_rating_line_by_default(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "d.jsonl", rows(6))
    dm = ReviewDataModule(train_file=str(data), tokenizer_dir=tiny_llama_dir, max_seq_length=256, val_fraction=0.34,
                          tokenize_cache=False)
    dm.setup("fit")
    assert dm.rating_line is True
    tok = dm.tokenizer
    example = dm.train_rows[0][0]
    labelled = tok.decode(example["input_ids"][example["prompt_length"]:], skip_special_tokens=True)
    record = next(r for r in dm.split_records()["train"] if r.id == example["id"])
    assert parse_rating(labelled) == record.rating
    sample = dm.review_samples(1)[0]
    assert sample["rating"] == dm.split_records()["val"][0].rating and "Rating:" not in sample["review"]
    assert sample["paper"] == dm.split_records()["val"][0].paper  # the judge leaves restatements of it out

    off = ReviewDataModule(train_file=str(data), tokenizer_dir=tiny_llama_dir, max_seq_length=256,
                           val_fraction=0.34, tokenize_cache=False, rating_line=False)
    off.setup("fit")
    example = off.train_rows[0][0]
    assert parse_rating(tok.decode(example["input_ids"][example["prompt_length"]:], skip_special_tokens=True)) is None


def test_the_datamodule_refuses_data_where_only_some_records_have_a_rating(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "d.jsonl", rows(4, rating=lambda i: None if i == 2 else 5))
    dm = ReviewDataModule(train_file=str(data), tokenizer_dir=tiny_llama_dir, max_seq_length=256, tokenize_cache=False)
    with pytest.raises(UserError, match=r"1 of 4 records have no rating \(e.g. .*d.jsonl:3\)"):
        dm.setup("fit")


def test_the_openai_export_writes_local_training_target(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", rows(3))
    counts = export(str(data), str(tmp_path / "chat.jsonl"), truncate=False)
    answers = [json.loads(line)["messages"][-1]["content"] for line in (tmp_path / "chat.jsonl").read_text().splitlines()]
    assert counts["rating_line"] and [parse_rating(a) for a in answers] == [3, 4, 5]
    export(str(data), str(tmp_path / "plain.jsonl"), truncate=False, rating_line=False)
    plain = [json.loads(line)["messages"][-1]["content"] for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert plain == [r["review"] for r in rows(3)]
