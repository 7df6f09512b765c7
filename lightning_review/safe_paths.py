"""Writing outputs without losing inputs: an output may never be one of the command's inputs, and every output is
written under a temporary name in its own directory and renamed when complete, so a crash or an error mid-write
leaves the previous file (or none) and never half a file."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import UserError


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal after resolving ``..`` and symlinks, or one file under two names
    (a hard link)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """``path`` or the nearest of its parents that exists, when that is not a directory (a file, or a link to
    none): what stops a directory from being made at ``path``; None where nothing does."""
    path = Path(path).expanduser()
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if candidate.is_dir() else candidate
    return None


def refuse_output_over_input(output: str | os.PathLike | None, inputs: Iterable[str | os.PathLike | None],
                             flag_name: str) -> None:
    """Raise UserError when ``output`` (set by ``flag_name``) is one of ``inputs``: writing it would destroy the
    input. Call it before anything is opened for writing. ``None`` entries are ignored."""
    if output is None:
        return
    for source in inputs:
        if source is not None and same_file(output, source):
            raise UserError(f"{flag_name}={output} is the input file {source}: writing it would destroy the input; "
                            f"give {flag_name} another path")


@contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """A file object on a temporary name next to ``path``; renamed over ``path`` when the block ends without an
    error, removed when it raises. A symlink at ``path`` is written through (its target is replaced)."""
    if "b" in mode:
        encoding = None
    target = Path(path).expanduser()
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open applies the umask, so the file gets the permissions an ordinary open would give it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``Path.write_text`` that never leaves half a file."""
    with atomic_writer(path) as f:
        f.write(text)


def refuse_unwritable_output(path: str | os.PathLike | None, flag_name: str, directory: bool = False,
                             files: Iterable[str] = ()) -> None:
    """Raise UserError, before any work, where ``path`` (set by ``flag_name``; a directory to create or fill when
    ``directory``, else a file) cannot be written: a file in the way of the directory or of one of its parents, or a
    directory where the file goes. ``files``: the names of the files a command writes in the directory ``path``
    (``directory`` only), each refused where a directory stands in its place, with advice for the directory's flag
    (the flag names the directory, not the file). Otherwise the write would fail (FileExistsError,
    IsADirectoryError) only at the end, after the work. ``None`` is ignored."""
    if path is None:
        return
    path = Path(path).expanduser()
    if files and not directory:
        raise ValueError("files are the names of files in a directory: give them with directory=True")
    if path.is_dir() and not directory:
        raise UserError(f"{flag_name}={path} is a directory, but a file is written there; give {flag_name} a file "
                        "path")
    if path.exists() and not path.is_dir() and directory:
        raise UserError(f"{flag_name}={path} is an existing file, not a directory; give {flag_name} a directory "
                        "(created if missing)")
    parent = file_in_the_way(path.parent)
    if parent is not None:
        raise UserError(f"{flag_name}={path} cannot be created: {parent} is a file, not a directory; give "
                        f"{flag_name} a path under a directory")
    for name in files:
        if (path / name).is_dir():
            raise UserError(f"{path / name} is a directory, but {flag_name}={path} has the file {name} written "
                            f"there; move or remove that directory, or give {flag_name} another directory")
