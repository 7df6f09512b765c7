"""The generate command on the local backend: an interrupted run resumes and ends with what an uninterrupted run
writes; repeated paper ids."""

import json

import pytest

from lightning_review.generation import local
from lightning_review.generation.command import generate, parse_shard, unique_papers
from tests.conftest import write_jsonl


def reviews(path):
    return {r["id"]: r["review"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("decoding", [dict(batch_size=2), dict(batch_size=1, temperature=1.2, seed=3)],
                         ids=["greedy", "sampled"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(adapter_dir, papers_file, tmp_path, monkeypatch,
                                                                  decoding):
    common = dict(adapter_dir=str(adapter_dir), dtype="float32", max_new_tokens=12, **decoding)
    whole = tmp_path / "whole.jsonl"
    generate(str(papers_file), str(whole), **common)

    original, batches = local.LocalGenerator.generate, []

    def crash_on_second_batch(self, batch):
        batches.append(batch)
        if len(batches) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or the job's time ran out
        return original(self, batch)

    monkeypatch.setattr(local.LocalGenerator, "generate", crash_on_second_batch)
    resumed = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate(str(papers_file), str(resumed), **common)
    done = decoding["batch_size"]  # the first batch was written, the crash came at the second
    assert len(reviews(resumed)) == done
    monkeypatch.setattr(local.LocalGenerator, "generate", original)
    summary = generate(str(papers_file), str(resumed), **common)
    assert summary["already_written"] == done and summary["written"] == 5 - done
    assert reviews(resumed) == reviews(whole)
    assert len(resumed.read_text().splitlines()) == 5


def test_repeated_ids_are_reviewed_once_unless_they_name_different_papers(tmp_path):
    same = write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "paper": "P"}, {"id": "x", "paper": "P"},
                                              {"id": "y", "paper": "Q"}])
    assert unique_papers(str(same)) == ([("x", "P"), ("y", "Q")], 1)
    clash = write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "paper": "P"}, {"id": "x", "paper": "R"}])
    with pytest.raises(ValueError, match="b.jsonl:2: id 'x' was used before for another paper"):
        unique_papers(str(clash))


def test_shards_split_the_papers_between_processes_without_overlap(adapter_dir, papers_file, tmp_path):
    outputs = [tmp_path / f"shard{i}.jsonl" for i in range(2)]
    for i, out in enumerate(outputs):
        generate(str(papers_file), str(out), adapter_dir=str(adapter_dir), dtype="float32", max_new_tokens=4,
                 shard=f"{i}/2")
    ids = [set(reviews(out)) for out in outputs]
    assert ids[0] == {"p0", "p2", "p4"} and ids[1] == {"p1", "p3"}
    with pytest.raises(ValueError, match="shard must be i/n"):
        parse_shard("2/2")
