"""The storage root is checked before Prefect starts: a file, a folder under a file, an unwritable
folder are one line each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prefmill.errors import StorageError
from prefmill.flows.startup import check_root


def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError) as err:
        check_root(str(tmp_path / "f"))
    assert str(err.value) == f"storage root {tmp_path / 'f'} is a file, not a folder: pass --root a folder"
    with pytest.raises(StorageError, match=r"is under .*/f, which is a file, not a folder"):
        check_root(str(tmp_path / "f" / "data"))


@pytest.mark.skipif(sys.platform != "linux", reason="sysfs refuses new folders, even to root")
def test_root_that_cannot_be_written() -> None:
    with pytest.raises(StorageError) as err:
        check_root("/sys/prefmill-no-such-root/data")
    assert "cannot be written (permission denied): pass --root a folder you can write" in str(err.value)


def test_good_root_is_checked_without_creating_anything(tmp_path: Path) -> None:
    check_root(str(tmp_path / "new" / "root"))  # the nearest existing folder is probed
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())
    (tmp_path / "old").mkdir()
    check_root(str(tmp_path / "old"))
    assert not list((tmp_path / "old").iterdir())
    check_root("memory://anything")  # object storage is not probed here
