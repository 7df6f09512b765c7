"""Outputs never overwrite inputs, and an output is whole or absent: never half written."""

import os

import pytest

from lightning_review.errors import UserError
from lightning_review.safe_paths import (atomic_writer, refuse_output_over_input, refuse_unwritable_output, same_file,
                                         write_text_atomic)


def test_one_file_under_other_names_is_the_same_file(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("x\n")
    (tmp_path / "link.jsonl").symlink_to(data)
    os.link(data, tmp_path / "hard.jsonl")
    (tmp_path / "sub").mkdir()
    assert same_file(data, tmp_path / "link.jsonl")
    assert same_file(data, tmp_path / "hard.jsonl")
    assert same_file(data, tmp_path / "sub" / ".." / "data.jsonl")
    assert not same_file(data, tmp_path / "other.jsonl")  # does not exist yet
    with pytest.raises(UserError, match=r"rejects_file=.*link\.jsonl is the input file .*data\.jsonl.*another path"):
        refuse_output_over_input(tmp_path / "link.jsonl", [None, data], "rejects_file")
    refuse_output_over_input(tmp_path / "rejects.jsonl", [data], "rejects_file")
    refuse_output_over_input(None, [data], "rejects_file")
    assert data.read_text() == "x\n"


def test_an_error_while_writing_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "stats.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]


def test_a_symlinked_output_is_written_through_and_gets_ordinary_permissions(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "out.png"
    link.symlink_to(real)
    with atomic_writer(link, "wb") as f:
        f.write(b"\x89PNG")
    assert link.is_symlink() and real.read_bytes() == b"\x89PNG"
    fresh = tmp_path / "new" / "file.txt"
    write_text_atomic(fresh, "a")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_directory_where_a_file_of_an_output_directory_goes_is_named_with_the_directorys_advice(tmp_path):
    out = tmp_path / "out"
    (out / "b.json").mkdir(parents=True)
    with pytest.raises(UserError) as caught:
        refuse_unwritable_output(out, "--output_dir", directory=True, files=("a.json", "b.json"))
    assert str(caught.value) == (f"{out / 'b.json'} is a directory, but --output_dir={out} has the file b.json "
                                 "written there; move or remove that directory, or give --output_dir another "
                                 "directory")
    refuse_unwritable_output(out, "--output_dir", directory=True, files=("a.json",))  # a.json is free
    refuse_unwritable_output(tmp_path / "new", "--output_dir", directory=True, files=("b.json",))  # to be made
    # a file flag's own path that is a directory: that flag is given a file path
    with pytest.raises(UserError, match=r"^--cache_file=.*b\.json is a directory, but a file is written there; "
                                        r"give --cache_file a file path$"):
        refuse_unwritable_output(out / "b.json", "--cache_file")
