"""The tokenize cache: the same examples as the one-by-one tokenizer, hit on a second run, rebuilt on change."""

import numpy as np

from lightning_review.data.prompt import ReviewPromptTokenizer
from lightning_review.data.records import Record
from lightning_review.data.token_cache import load_or_build, tokenize_records


def records():
    long_paper = "We compare contrastive pretraining with prior work on speech recognition. " * 60
    return [Record(id=f"r{i}", paper=long_paper if i % 2 else f"A short paper {i}.",
                   review=f"Review {i}: the method is sound but the evaluation is thin." * (1 + 30 * (i == 4)))
            for i in range(9)]


def test_batched_examples_equal_the_one_by_one_tokenizer(tokenizer):
    encoder = ReviewPromptTokenizer(tokenizer, max_seq_length=256)
    recs = records()
    tokenized = tokenize_records(encoder, recs, batch_size=4, progress=False)
    expected = [encoder(r.paper, r.review) for r in recs]
    assert tokenized.meta["too_long"] == [i for i, e in enumerate(expected) if e is None] == [4]
    for k, index in enumerate(tokenized.meta["record_index"]):
        example = tokenized.example(k)
        assert example["input_ids"].tolist() == expected[index].input_ids
        assert tokenized.labels(k).tolist() == expected[index].labels
        assert tokenized.meta["paper_tokens_removed"][k] == expected[index].paper_tokens_removed


def test_cache_is_hit_then_rebuilt_when_template_or_tokenizer_changes(tokenizer, tmp_path):
    recs = records()
    first, hit = load_or_build(ReviewPromptTokenizer(tokenizer, max_seq_length=256), recs, tmp_path, progress=False)
    assert not hit
    again, hit = load_or_build(ReviewPromptTokenizer(tokenizer, max_seq_length=256), recs, tmp_path, progress=False)
    assert hit and np.array_equal(first.ids, again.ids)
    _, hit = load_or_build(ReviewPromptTokenizer(tokenizer, "Another system prompt.", 256), recs, tmp_path,
                           progress=False)
    assert not hit  # another template
    tokenizer2 = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer2.add_tokens(["<new_token>"])
    _, hit = load_or_build(ReviewPromptTokenizer(tokenizer2, max_seq_length=256), recs, tmp_path, progress=False)
    assert not hit  # another tokenizer
    _, hit = load_or_build(ReviewPromptTokenizer(tokenizer, max_seq_length=256), recs[:-1], tmp_path, progress=False)
    assert not hit  # other records
    assert len(list(tmp_path.iterdir())) == 4 and not list(tmp_path.glob(".building-*"))
