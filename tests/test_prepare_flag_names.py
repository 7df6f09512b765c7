"""The rejects-file and rating-line messages name each setting as the command the user ran spells it: prepare's (and
openai export's) flags, ``--rejects_file`` / ``--rating_line``, and fit's ``data.rejects_file`` / ``data.rating_line``.
prepare's said ``rejects_file=...`` and ``rating_line=...`` (or ``data.rating_line`` when prepare was called from
Python); each test runs the real commands."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_ft.commands import export
from lightning_review.prepare import prepare
from tests.conftest import ROOT, run_cli, write_jsonl

DEMO = str(ROOT / "configs" / "demo.yaml")


def rows(ratings) -> list[dict]:
    """A record a paper, each with the rating given (None: without one)."""
    return [{"id": f"p{i}", "paper": f"We study graphs and molecules ({i}). " * 12,
             "review": f"Review {i}: clear writing, weak baselines, missing ablations.",
             **({} if rating is None else {"rating": rating})} for i, rating in enumerate(ratings)]


def last_line(proc) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


def prepare_cli(tmp_path, tokenizer_dir, *flags):
    return run_cli("prepare", f"--tokenizer_dir={tokenizer_dir}", "--max_seq_length=256", "--plot=false",
                   f"--output_dir={tmp_path / 'out'}", *flags, cwd=tmp_path)


def fit_cli(tmp_path, *flags):
    return run_cli("fit", "-c", DEMO, f"--trainer.default_root_dir={tmp_path / 'runs'}", *flags, cwd=tmp_path)


def test_a_rejects_file_without_skip(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([None] * 3))
    rejects = tmp_path / "rj.jsonl"
    expected = ("{0}rejects_file={1} lists the records {0}on_bad_record=skip leaves out, but {0}on_bad_record is "
                "strict (it stops at the first bad record, naming it, and lists nothing): set {0}on_bad_record skip, "
                "or leave {0}rejects_file out")
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}", f"--rejects_file={rejects}"))
    assert line == "error: " + expected.format("--", rejects)
    with pytest.raises(UserError) as caught:  # said data.rejects_file, data.on_bad_record
        prepare(str(data), str(tiny_llama_dir), output_dir=str(tmp_path / "out"), rejects_file=str(rejects))
    assert str(caught.value) == expected.format("--", rejects)
    line = last_line(fit_cli(tmp_path, f"--data.train_file={data}", f"--data.rejects_file={rejects}"))
    assert line == "error: " + expected.format("data.", rejects)
    assert not rejects.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("val", [False, True])
def test_a_rejects_file_that_is_a_data_file(tmp_path, tiny_llama_dir, val):
    """prepare said ``rejects_file=...`` (and ``rejects_file (+ '.val')=...`` for the validation file's list)."""
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([None] * 3))
    flags = [f"--data_file={data}", "--on_bad_record=skip"]
    if val:
        other = write_jsonl(tmp_path / "val.jsonl.val", rows([None] * 2))
        flags += [f"--val_file={other}", f"--rejects_file={tmp_path / 'val.jsonl'}"]
        expected = f"--rejects_file (+ '.val')={other} is the input file {other}"
    else:
        flags.append(f"--rejects_file={data}")
        expected = f"--rejects_file={data} is the input file {data}"
    before = data.read_bytes()
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, *flags))
    assert line.startswith(f"error: {expected}: writing it would destroy the input; give --rejects_file"), line
    assert data.read_bytes() == before and not (tmp_path / "out").exists()


def test_a_rejects_file_that_is_the_output_dir(tmp_path, tiny_llama_dir):
    """It was written where the directory was to be made, and the run then failed writing stats.json into it."""
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([None] * 3))
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}", "--on_bad_record=skip",
                                 f"--rejects_file={tmp_path / 'out'}"))
    assert line == (f"error: --rejects_file={tmp_path / 'out'} is --output_dir, the directory prepare writes "
                    "stats.json in; give --rejects_file a path outside it")
    assert not (tmp_path / "out").exists()


def test_records_of_which_only_some_have_a_rating(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([6, None, 5]))
    expected = (f"{data}: 1 of 3 records have no rating (e.g. {data}:2), the others do; set {{0}}rating_line false to "
                "train without the rating line, or give every record a rating ({0}rating_line true then checks it)")
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}"))
    assert line == "error: " + expected.format("--")
    with pytest.raises(UserError) as caught:  # said data.rating_line
        prepare(str(data), str(tiny_llama_dir), max_seq_length=256, output_dir=str(tmp_path / "out"))
    assert str(caught.value) == expected.format("--")
    with pytest.raises(UserError) as caught:  # openai export's flag too
        export(str(data), str(tmp_path / "chat.jsonl"), truncate=False)
    assert str(caught.value) == expected.format("--")
    assert last_line(fit_cli(tmp_path, f"--data.train_file={data}")) == "error: " + expected.format("data.")
    assert not (tmp_path / "out").exists() and not (tmp_path / "chat.jsonl").exists()


def test_the_rating_line_asked_for_records_without_a_rating(tmp_path, tiny_llama_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([None, None]))
    expected = (f"{data}:1: no rating, but {{0}}rating_line is on (the target ends with the reviewer's rating); give "
                "the record a 'rating', or set {0}rating_line false")
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}", "--rating_line=true"))
    assert line == "error: " + expected.format("--")
    with pytest.raises(UserError) as caught:  # said data.rating_line
        prepare(str(data), str(tiny_llama_dir), max_seq_length=256, output_dir=str(tmp_path / "out"),
                rating_line=True)
    assert str(caught.value) == expected.format("--")
    with pytest.raises(UserError) as caught:
        export(str(data), str(tmp_path / "chat.jsonl"), truncate=False, rating_line=True)
    assert str(caught.value) == expected.format("--")
    line = last_line(fit_cli(tmp_path, f"--data.train_file={data}", "--data.rating_line=true"))
    assert line == "error: " + expected.format("data.")


def test_a_rating_line_for_the_text_task(tmp_path, tiny_llama_dir):
    """prepare said ``rating_line=True ... leave rating_line out``; fit has no such setting pair to refuse."""
    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": "A long document about graphs. " * 20}])
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}", "--task=text",
                                 "--rating_line=false"))
    assert line == ("error: --rating_line=false is for the review task (it ends each review target with its rating); "
                    "the text task trains on documents without targets: leave --rating_line out")


def test_the_readers_spell_the_settings_as_their_caller_says(tmp_path):
    """evaluate reads its human file with read_records: its --rejects_file (fit's DataModule keeps data.)."""
    from lightning_review.data.rating_line import resolve_rating_line
    from lightning_review.data.readers import read_records, rejects_file_problem

    data = write_jsonl(tmp_path / "h.jsonl", rows([None]))
    with pytest.raises(UserError, match=r"^--rejects_file=.*h\.jsonl is the input file .*give --rejects_file"):
        read_records(data, rejects_file=data, prefix="--")
    with pytest.raises(UserError, match=r"^data\.rejects_file=.*h\.jsonl is the input file"):  # said rejects_file=
        read_records(data, rejects_file=data)
    assert rejects_file_problem("r", "strict").startswith("data.rejects_file=r lists the records data.on_bad_record")
    assert rejects_file_problem("r", "strict", "--").endswith("set --on_bad_record skip, or leave --rejects_file out")
    assert rejects_file_problem("r", "skip", "--") is None
    with pytest.raises(UserError, match=r"set --rating_line false to train"):
        resolve_rating_line(None, [r for r in read_records(write_jsonl(tmp_path / "m.jsonl", rows([1, None])))
                                   .records], "m.jsonl", "--")


def test_evaluates_rejects_file_that_is_its_human_file(tmp_path):
    """read_records named it ``rejects_file=``, a flag evaluate does not have; now ``data.rejects_file``, which the
    command line's error shows as evaluate's own ``--rejects_file``."""
    human = write_jsonl(tmp_path / "human.jsonl", [{"id": "p0", "review": "The paper is clear enough."}])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "p0", "review": "The paper is clear."}])
    before = human.read_bytes()
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   '--judges=["embedding"]', f"--output_dir={tmp_path / 'ev'}", "--on_bad_record=skip",
                   f"--rejects_file={human}", cwd=tmp_path)
    assert last_line(proc) == (f"error: --rejects_file={human} is the input file {human}: writing it would destroy "
                               "the input; give --rejects_file another path")
    assert human.read_bytes() == before


def test_a_rejects_file_that_is_a_directory(tmp_path, tiny_llama_dir):
    """The DataModule's check named fit's data.rejects_file; prepare runs the same check with its flag's spelling."""
    data = write_jsonl(tmp_path / "pairs.jsonl", rows([None] * 3))
    (tmp_path / "rj").mkdir()
    line = last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}", "--on_bad_record=skip",
                                 f"--rejects_file={tmp_path / 'rj'}"))
    assert line.startswith(f"error: --rejects_file={tmp_path / 'rj'} is a directory"), line
    assert "data." not in line and not (tmp_path / "out").exists()
