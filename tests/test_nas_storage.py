import socket

import pytest

from cl_nas.nas import StorageError, mask_url, open_storage


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "url,masked",
    [
        ("postgresql://nas:pa%40ss@db:5432/x", "postgresql://nas:***@db:5432/x"),
        ("postgresql+psycopg2://u:secret@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("mysql://root:@h/db", "mysql://root:***@h/db"),
        ("sqlite:///runs/nas/optuna.db", "sqlite:///runs/nas/optuna.db"),
        ("postgresql://user@h/db", "postgresql://user@h/db"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_unreachable_postgres_is_a_clear_error_without_the_password():
    url = f"postgresql://nas:Sup3r-s3cret@127.0.0.1:{_closed_port()}/optuna"
    with pytest.raises(StorageError) as err:
        open_storage(url, connect_timeout=3)
    message = str(err.value)
    assert message.startswith("storage postgresql://nas:***@127.0.0.1:") and "cannot connect" in message
    assert "Sup3r-s3cret" not in message and "Sup3r" not in repr(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained driver error to leak it


@pytest.mark.parametrize(
    "url,message",
    [
        ("not a url", "not a database URL"),
        ("postgres://u:pw@h/db", "write postgresql://"),
        ("redis://u:pw@h/0", "unsupported database 'redis'"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(StorageError, match=message) as err:
        open_storage(url)
    assert ":pw@" not in str(err.value)


def test_sqlite_default_creates_its_folder_and_beats(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'a' / 'b' / 'nas.db'}", heartbeat_interval=7)
    assert (tmp_path / "a" / "b" / "nas.db").is_file()
    assert storage.get_heartbeat_interval() == 7 and storage.get_heartbeat_stale_trial_callback() is not None
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="cannot create the folder"):
        open_storage(f"sqlite:///{tmp_path / 'file' / 'nas.db'}")
    with pytest.raises(ValueError, match="grace period"):
        open_storage("sqlite://", heartbeat_interval=10, grace_period=5)
