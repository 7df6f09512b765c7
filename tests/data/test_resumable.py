"""The training sampler: a seeded order per epoch, disjoint shards per rank, and a start in the middle."""

import pytest

from lightning_review.data.resumable import ResumableLoader, ResumableSampler


def test_shards_cover_every_row_once_and_order_depends_on_epoch():
    rows = list(range(10))
    shards = [list(ResumableSampler(rows, num_replicas=2, rank=r, seed=3)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == rows and len(shards[0]) == len(shards[1]) == 5
    sampler = ResumableSampler(rows, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == rows


def test_uneven_rows_are_balanced_by_repeating_and_counted():
    sampler = ResumableSampler(list(range(7)), num_replicas=2, rank=1, seed=0)
    assert sampler.repeated_rows == 1 and len(list(sampler)) == 4


def loader(rows, done):
    return ResumableLoader(rows, sampler=ResumableSampler(rows, seed=5), batches_done=lambda: done, batch_size=2,
                           collate_fn=list)


def test_loader_resumes_after_the_batches_already_trained():
    rows = list(range(10))
    full = [b for b in loader(rows, 0)]
    state = loader(rows, 2).state_dict()
    resumed = loader(rows, 0)
    resumed.load_state_dict(state)
    assert list(resumed) == full[2:]
    assert len(resumed) == len(full)  # Lightning counts the restored batches itself


def test_state_saved_at_the_end_of_an_epoch_resumes_at_the_next_one():
    rows = list(range(6))
    state = loader(rows, 3).state_dict()  # 3 batches of 2: the whole epoch
    resumed = loader(rows, 0)
    resumed.load_state_dict(state)
    assert resumed.sampler.epoch == 1 and len(list(resumed)) == 3


def test_resuming_on_other_data_is_refused():
    state = loader(list(range(10)), 1).state_dict()
    with pytest.raises(ValueError, match="num_rows: 10 in the checkpoint, 12 now"):
        loader(list(range(12)), 0).load_state_dict(state)
