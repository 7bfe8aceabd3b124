import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from cl_nas.nas import StorageError, mask_url, open_storage

REPO = Path(__file__).resolve().parents[1]


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


QUEUE_WORKER = """
import sys, time
import optuna
from cl_nas.nas import open_queue, open_storage, run_worker
study = open_queue(open_storage(sys.argv[1]), "race", [{"x": i} for i in range(40)],
                   sampler=optuna.samplers.RandomSampler(), pruner=optuna.pruners.NopPruner())


def objective(trial):
    time.sleep(0.01)
    return trial.suggest_int("x", 0, 100)


print(run_worker(study, objective, poll_seconds=0.1))
"""


@pytest.mark.slow
def test_workers_sharing_a_sqlite_file_never_run_a_trial_twice(tmp_path):
    # without BEGIN IMMEDIATE, two workers read the same WAITING trial and both run it (optuna then fails
    # with "Cannot tell a COMPLETE trial" in one of them)
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", QUEUE_WORKER, url], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(4)]  # fmt: skip
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, outputs
    assert sum(int(out.strip().splitlines()[-1]) for out in outputs) == 40  # each slot run by exactly one worker
    trials = optuna.load_study(study_name="race", storage=url).get_trials()
    slotted = [t for t in trials if "slot" in t.user_attrs]
    assert sorted(t.user_attrs["slot"] for t in slotted) == list(range(40))
    assert {t.state for t in slotted} == {optuna.trial.TrialState.COMPLETE}
    # a worker that saw the last queued trial just before another took it makes a surplus trial, which fails
    assert all(t.state == optuna.trial.TrialState.FAIL and t.user_attrs["surplus"] for t in trials if t not in slotted)
