import random

import pytest

from lightning_review.data.packing import collate_rows, pack_best_fit_decreasing, packing_efficiency


def test_bins_respect_capacity_and_hold_every_example_once():
    rng = random.Random(0)
    lengths = [rng.randint(10, 900) for _ in range(500)]
    bins = pack_best_fit_decreasing(lengths, 1024)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 1024 for b in bins)
    # never more bins than the volume bound allows by much (best-fit decreasing is within 11/9 OPT + 1)
    assert len(bins) <= 11 / 9 * (sum(lengths) / 1024) + 2


def test_too_long_example_is_an_error():
    with pytest.raises(ValueError, match="example 1 has 300 tokens"):
        pack_best_fit_decreasing([10, 300], 256)


def test_collate_restarts_positions_per_document_and_pads():
    rows = [[{"input_ids": [1, 5, 6], "prompt_length": 1}, {"input_ids": [1, 7], "prompt_length": 1}],
            [{"input_ids": [1, 9, 9, 9], "prompt_length": 1}]]
    batch = collate_rows(rows, pad_id=0, row_length=8)
    assert batch["doc_lens"] == [[3, 2], [4]]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 0, 0, 0]
    assert batch["input_ids"][1].tolist() == [1, 9, 9, 9, 0, 0, 0, 0]
    assert batch["labels"][0].tolist() == [-100, 5, 6, -100, 7, -100, -100, -100]
    assert collate_rows(rows, pad_id=0, multiple_of=64)["input_ids"].shape == (2, 64)


def test_packing_efficiency_on_demo_data(tokenizer):
    from lightning_review.data.prompt import ReviewPromptTokenizer
    from lightning_review.demo import demo_records

    enc = ReviewPromptTokenizer(tokenizer, max_seq_length=2048)
    lengths = [len(enc(r["paper"], r["review"]).input_ids) for r in demo_records()]
    bins = pack_best_fit_decreasing(lengths, 2048)
    assert packing_efficiency(lengths, bins, 2048) >= 0.95
