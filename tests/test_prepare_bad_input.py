"""``prepare`` refuses, before it reads or tokenizes anything, what would fail or be ignored only at the end: an
output_dir it cannot write, a rejects file without the skip policy, a tokenizer directory that does not exist. Each as
one line naming prepare's own flag."""

import pytest

from lightning_review.cli import main
from lightning_review.errors import UserError
from lightning_review.prepare import prepare
from lightning_review.safe_paths import refuse_unwritable_output


def test_refuse_unwritable_output(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(UserError, match=r"out=.*afile is an existing file, not a directory; give out a directory"):
        refuse_unwritable_output(tmp_path / "afile", "out", directory=True)
    with pytest.raises(UserError, match=r"out=.*afile/sub/x cannot be created: .*afile is a file, not a directory"):
        refuse_unwritable_output(tmp_path / "afile" / "sub" / "x", "out", directory=True)
    with pytest.raises(UserError, match=r"out=.*afile/x cannot be created: .*afile is a file"):
        refuse_unwritable_output(tmp_path / "afile" / "x", "out")
    with pytest.raises(UserError, match=r"out=.*adir is a directory, but a file is written there; give out a file"):
        refuse_unwritable_output(tmp_path / "adir", "out")
    for path, directory in ((tmp_path / "adir", True), (tmp_path / "new" / "deeper", True),
                            (tmp_path / "afile", False), (tmp_path / "adir" / "new.json", False), (None, False)):
        refuse_unwritable_output(path, "out", directory=directory)


@pytest.mark.parametrize("output_dir, message", [
    # the flag as typed, --output_dir, as prepare's other messages and the other commands name it (was "output_dir=")
    ("afile", r"^--output_dir=.*afile is an existing file, not a directory; give --output_dir a directory"),
    ("afile/sub", r"^--output_dir=.*afile/sub cannot be created: .*afile is a file, not a directory; give "
                  r"--output_dir a path"),
    # was "output_dir=out/stats.json is a directory ...; give output_dir a file path": a file for a directory
    ("out", r"out/stats\.json is a directory, but --output_dir=.*out has the file stats\.json written there; move or "
            r"remove that directory, or give --output_dir another directory$"),
])
def test_an_output_dir_that_cannot_be_written_is_refused_before_the_data_is_read(tmp_path, tiny_llama_dir,
                                                                                  output_dir, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out" / "stats.json").mkdir(parents=True)
    with pytest.raises(UserError, match=message):  # the data file does not exist: it was never opened
        prepare(str(tmp_path / "absent.jsonl"), str(tiny_llama_dir), output_dir=str(tmp_path / output_dir))


def test_a_directory_where_lengths_png_goes_is_refused_only_when_the_plot_is_written(tmp_path, tiny_llama_dir):
    (tmp_path / "out" / "lengths.png").mkdir(parents=True)
    with pytest.raises(UserError, match=r"out/lengths\.png is a directory, but --output_dir=.*out has the file "
                                        r"lengths\.png written there; move or remove that directory"):
        prepare(str(tmp_path / "absent.jsonl"), str(tiny_llama_dir), output_dir=str(tmp_path / "out"))
    with pytest.raises(UserError, match="absent.jsonl"):  # plot=False writes no lengths.png: on to the data file
        prepare(str(tmp_path / "absent.jsonl"), str(tiny_llama_dir), output_dir=str(tmp_path / "out"), plot=False)


def test_a_rejects_file_without_skip_is_refused_naming_prepares_flags(tmp_path, tiny_llama_dir):
    with pytest.raises(SystemExit) as caught:
        main(["prepare", f"--data_file={tmp_path / 'absent.jsonl'}", f"--tokenizer_dir={tiny_llama_dir}",
              f"--rejects_file={tmp_path / 'rj.jsonl'}", f"--output_dir={tmp_path / 'o'}"])
    message = str(caught.value)
    assert message.startswith("error: --rejects_file=") and "rj.jsonl lists the records --on_bad_record=skip" in message
    assert message.endswith("set --on_bad_record skip, or leave --rejects_file out") and "data." not in message
    assert not (tmp_path / "rj.jsonl").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("make, message", [(lambda p: None, "no such directory"),
                                           (lambda p: p.write_text("x"), "a file, not a directory")])
def test_a_tokenizer_dir_that_is_no_directory_is_named_so(tmp_path, make, message):
    make(tmp_path / "nope")
    with pytest.raises(SystemExit) as caught:
        main(["prepare", f"--data_file={tmp_path / 'absent.jsonl'}", f"--tokenizer_dir={tmp_path / 'nope'}",
              f"--output_dir={tmp_path / 'o'}"])
    assert str(caught.value).startswith(f"error: {tmp_path / 'nope'}: {message}; point the tokenizer directory "
                                        "(prepare's --tokenizer_dir, fit's model.checkpoint_dir) at the model's "
                                        "checkpoint directory")


def test_a_val_file_that_is_the_data_file_is_refused(tmp_path, tiny_llama_dir):
    data = tmp_path / "pairs.jsonl"
    data.write_text("")
    with pytest.raises(UserError, match="--val_file=.* is --data_file: every validation paper would be a training"):
        prepare(str(data), str(tiny_llama_dir), val_file=str(tmp_path / "." / "pairs.jsonl"),
                output_dir=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["stats.json", "lengths.png"])
def test_a_rejects_file_that_is_an_output_of_prepare_is_refused(tmp_path, tiny_llama_dir, name):
    # it was accepted: stats.json replaced the rejects list (or lengths.png), exit 0
    with pytest.raises(UserError, match=f"--rejects_file=.*{name} is the {name} prepare writes in --output_dir"):
        prepare(str(tmp_path / "absent.jsonl"), str(tiny_llama_dir), output_dir=str(tmp_path / "o"),
                on_bad_record="skip", rejects_file=str(tmp_path / "o" / name))


def test_a_max_seq_length_beyond_ropes_float32_positions_is_refused_naming_prepares_flag(tmp_path, tiny_llama_dir):
    """It was accepted, and every example packed into one row of 99999999999999 tokens (packing efficiency 0.0%)."""
    with pytest.raises(SystemExit) as caught:
        main(["prepare", f"--data_file={tmp_path / 'absent.jsonl'}", f"--tokenizer_dir={tiny_llama_dir}",
              "--max_seq_length=99999999999999", f"--output_dir={tmp_path / 'o'}"])
    assert str(caught.value).startswith("error: --max_seq_length must be at most 16,777,216 (2**24) tokens a row, got "
                                        "99999999999999: the model's RoPE takes positions as float32")
    assert "data." not in str(caught.value)
