"""Which file a SQLite URL names: the lock, the secret key file and the backup all look there."""

from pathlib import Path

from pool.kit.writer_lock import lock_file, serving, sqlite_file, writer_lock


def test_a_query_is_not_part_of_the_sqlite_file() -> None:
    assert sqlite_file("sqlite:///data/a.db?timeout=30") == Path("data/a.db")
    assert sqlite_file("sqlite:////srv/addrpool/a.db") == Path("/srv/addrpool/a.db")
    assert lock_file(Path("data/a.db")) == Path("data/a.db.lock")


def test_postgresql_has_no_file_to_lock() -> None:
    assert sqlite_file("postgresql://u@h/db") is None


def test_serving_says_whether_a_server_holds_the_lock_and_never_keeps_it(tmp_path: Path) -> None:
    """What an import asks before each chunk: is anybody there to wait for it?"""
    database = tmp_path / "a.db"
    url = f"sqlite:///{database}"
    assert not serving(database)  # no server ever ran here
    with writer_lock(url):
        assert serving(database)
    assert not serving(database)
    with writer_lock(url):  # asking did not keep a server from starting
        pass
