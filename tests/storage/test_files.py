"""obslib.storage.files: the refusals before writing, and a write that is whole or nothing."""

from __future__ import annotations

import pytest

from obslib.errors import UsageError
from obslib.storage import files


def test_a_folder_or_a_missing_folder_is_refused_before_any_work(tmp_path) -> None:
    with pytest.raises(UsageError, match="is a folder; name the rule file to write"):
        files.target_file(tmp_path, "rule file")
    with pytest.raises(UsageError, match="does not exist"):
        files.target_file(tmp_path / "nope" / "x.yml")
    assert files.target_file(tmp_path / "x.yml") == tmp_path / "x.yml"


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path) -> None:
    target = tmp_path / "rules.yml"
    target.write_text("old")
    assert files.write_atomically(target, "new") == target
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yml"]
