"""The cache directory from $LIGHTNING_REVIEW_CACHE: a file there is named with the variable, before any write."""

import pytest

from lightning_review.artifacts.cache import cache_dir
from lightning_review.errors import UserError


@pytest.mark.parametrize("below", ["", "sub/dir"])
def test_a_cache_variable_at_or_under_a_file_is_refused_naming_it(tmp_path, monkeypatch, below):
    afile = tmp_path / "afile"
    afile.write_text("x")
    given = afile / below if below else afile
    monkeypatch.setenv("LIGHTNING_REVIEW_CACHE", str(given))
    with pytest.raises(UserError, match=rf"LIGHTNING_REVIEW_CACHE={given}: {afile} is a file, not a directory; "
                                        "point LIGHTNING_REVIEW_CACHE at a directory"):
        cache_dir()


def test_a_missing_cache_directory_is_fine_and_an_empty_variable_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_REVIEW_CACHE", str(tmp_path / "new" / "cache"))
    assert cache_dir() == tmp_path / "new" / "cache"
    monkeypatch.setenv("LIGHTNING_REVIEW_CACHE", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "lightning_review"
