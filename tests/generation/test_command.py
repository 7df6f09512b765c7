"""The generate command on the local backend: an interrupted run resumes and ends with what an uninterrupted run
writes; repeated paper ids; every paper needs an id; no output may be an input."""

import json
import os
import re

import pytest

from lightning_review.errors import UserError
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


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(adapter_dir, papers_file, tmp_path):
    papers = tmp_path / "papers.jsonl"
    papers.write_bytes(papers_file.read_bytes())
    (tmp_path / "link.jsonl").symlink_to(papers)
    os.link(papers, tmp_path / "hard.jsonl")
    (tmp_path / "sub").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    common = dict(adapter_dir=str(adapter_dir), dtype="float32", max_new_tokens=4, overwrite=True)
    for output in [papers, tmp_path / "link.jsonl", tmp_path / "hard.jsonl", tmp_path / "sub" / ".." / "papers.jsonl"]:
        with pytest.raises(UserError, match=rf"output_file={re.escape(str(output))} is the input file .*papers.jsonl"):
            generate(str(papers), str(output), **common)
    adapter_file = next(p for p in adapter_dir.iterdir() if p.is_file())
    adapter_bytes = adapter_file.read_bytes()
    with pytest.raises(UserError, match=rf"output_file=.* is the input file {re.escape(str(adapter_file))}"):
        generate(str(papers), str(adapter_file), **common)
    locked = tmp_path / "r.jsonl.lock"  # the lock beside r.jsonl would truncate papers of this name
    locked.write_bytes(papers.read_bytes())
    with pytest.raises(UserError, match=r"output_file=.*r.jsonl.lock is the input file .*r.jsonl.lock"):
        generate(str(locked), str(tmp_path / "r.jsonl"), **common)
    assert locked.read_bytes() == papers.read_bytes()
    locked.unlink()
    with pytest.raises(UserError, match="cache_file=.* is the input file .*papers.jsonl"):
        generate(str(papers), str(tmp_path / "r.jsonl"), api_model="gpt-4", cache_file=str(papers), overwrite=True)
    assert papers.read_bytes() == papers_file.read_bytes() and adapter_file.read_bytes() == adapter_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, lock or partial file was made


def test_papers_without_an_id_are_refused_naming_the_first_line_and_the_count(tmp_path):
    rows = [{"id": "a", "paper": "P"}, {"paper": "Q"}, {"id": "", "paper": "R"}, {"id": None, "paper": "S"},
            {"id": 7, "paper": "T"}]
    papers = write_jsonl(tmp_path / "papers.jsonl", rows)
    with pytest.raises(UserError, match=r"papers.jsonl:2: no 'id' .*; 3 of 5 papers lack one\. evaluate matches"):
        unique_papers(str(papers))
    with pytest.raises(UserError, match=r"papers.jsonl:2: no 'id'"):
        generate(str(papers), str(tmp_path / "r.jsonl"), api_model="gpt-4")
    assert not (tmp_path / "r.jsonl").exists()  # refused before anything is written
    assert unique_papers(str(write_jsonl(tmp_path / "ok.jsonl", [rows[0], rows[4]]))) == ([("a", "P"), ("7", "T")], 0)
    # the project's id convention: "q#2" is a line of paper q (evaluate matches the human reviews of q by "q")
    reviews_of_q = write_jsonl(tmp_path / "q.jsonl", [{"id": "q#1", "paper": "Q"}, {"id": "q#2", "paper": "Q"}])
    assert unique_papers(str(reviews_of_q)) == ([("q", "Q")], 1)
    with pytest.raises(UserError, match=r"q.jsonl:1: no 'id'"):
        unique_papers(str(write_jsonl(tmp_path / "q.jsonl", [{"id": "#1", "paper": "Q"}])))
