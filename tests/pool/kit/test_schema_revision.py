"""The Alembic-free revision check agrees with Alembic, and says "not known" when unsure."""

from __future__ import annotations

from pathlib import Path

from pool.kit.db import Database
from pool.kit.migrate import downgrade, head_revision, upgrade
from pool.kit.schema_revision import VERSIONS, at_newest_revision, newest_revision


def test_the_newest_revision_is_alembics_head() -> None:
    assert newest_revision() == head_revision()


def _write(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        f'"""{name}"""\n\nrevision = {revision}\ndown_revision = {down}\n', encoding="utf-8"
    )


def test_a_branch_or_a_merge_is_not_known(tmp_path: Path) -> None:
    _write(tmp_path, "a", '"a"', "None")
    _write(tmp_path, "b", '"b"', '"a"')
    assert newest_revision(tmp_path) == "b"
    _write(tmp_path, "c", '"c"', '"a"')  # two heads
    assert newest_revision(tmp_path) is None
    _write(tmp_path, "d", '"d"', '("b", "c")')  # a merge
    assert newest_revision(tmp_path) is None
    (tmp_path / "e.py").write_text("revision = make_one()\ndown_revision = 'd'\n")
    assert newest_revision(tmp_path) is None


def test_the_real_migrations_are_one_straight_chain() -> None:
    assert len(list(VERSIONS.glob("*.py"))) > 1
    assert newest_revision(VERSIONS) is not None


async def test_only_a_database_at_the_newest_revision_is_at_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}", pool_size=1)
    try:
        assert not await at_newest_revision(db)  # no revision table yet
        await upgrade(db)
        assert await at_newest_revision(db)
        await downgrade(db, "-1")
        assert not await at_newest_revision(db)
    finally:
        await db.dispose()
