"""Where operating commands may come from, kept across a clean restart in the state directory."""

from __future__ import annotations

from pathlib import Path

from unit_controller.authority import Authority, store_authority, stored_authority


def test_the_mode_is_kept_for_a_clean_start_only(tmp_path: Path) -> None:
    store_authority(tmp_path, Authority.REMOTE)
    assert stored_authority(tmp_path, clean=True) is Authority.REMOTE
    assert stored_authority(tmp_path, clean=False) is Authority.LOCAL


def test_a_mode_that_cannot_be_kept_leaves_the_next_start_local_not_the_older_mode(
    tmp_path: Path,
) -> None:
    store_authority(tmp_path, Authority.REMOTE)
    # A disk that refuses the new file (here: its temporary name taken by a folder).
    (tmp_path / ".authority.tmp").mkdir()
    store_authority(tmp_path, Authority.LOCAL)
    assert stored_authority(tmp_path, clean=True) is Authority.LOCAL
