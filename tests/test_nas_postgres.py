"""NAS studies on a real PostgreSQL server, started here: shared by worker processes, one killed mid-trial.

The fixture runs ``initdb`` and ``pg_ctl`` from the installed server binaries (``scripts/ensure_postgres.sh``
installs them) on a free port in a temporary folder, as the ``postgres`` user when the tests run as root
(the server refuses to run as root), with password authentication, and stops it afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cl_nas.nas import StorageError, convnet_space, open_storage, queue_status

pytestmark = pytest.mark.slow  # every test here starts other processes

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "s3cret-Pa55"


def _server_binaries() -> Path:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    found = Path(versions[-1]).parent if versions else None
    if found is None and shutil.which("initdb") and shutil.which("pg_ctl"):
        found = Path(shutil.which("initdb")).parent
    if found is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/ensure_postgres.sh")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """``postgresql://nas:PASSWORD@127.0.0.1:PORT/postgres`` of a throwaway server."""
    bin_dir = _server_binaries()
    root = Path(tempfile.mkdtemp(prefix="cl_nas_pg_"))  # not pytest's tmp_path: the postgres user must enter it
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text(PASSWORD)
    if as_user:
        os.chown(root / "pw", pwd.getpwnam("postgres").pw_uid, -1)
    port = _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "nas", f"--pwfile={root / 'pw'}", "-A", "scram-sha-256")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
    pg(str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://nas:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_wrong_password_is_reported_masked(postgres_url):
    url = postgres_url.replace(PASSWORD, "wrong-Pa55")
    with pytest.raises(StorageError) as err:
        open_storage(url)
    message = str(err.value)
    assert "password authentication failed" in message and "nas:***@127.0.0.1" in message
    assert "wrong-Pa55" not in message and PASSWORD not in message


def _worker(url: str, log: Path, *flags: str) -> subprocess.Popen:
    argv = [
        sys.executable, str(REPO / "benchmarks" / "nas.py"), "--dataset", "digits", "--proxy", "random",
        "--ipc", "50", "--epochs", "200", "--trials", "4", "--controls", "--space", "depth=1,2",
        "--space", "width=32", "--storage", url, "--heartbeat-interval", "1", "--grace-period", "5",
        "--cache", str(log.parent / "cache"), "--no-report", *flags,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def _study(storage) -> optuna.Study | None:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith("proxy-")]
    return optuna.load_study(study_name=names[0], storage=storage) if names else None


def test_killed_worker_trial_is_retried_once(postgres_url, tmp_path):
    storage = open_storage(postgres_url, heartbeat_interval=1, grace_period=5)
    workers = [_worker(postgres_url, tmp_path / f"worker{i}.log") for i in range(2)]
    victim, survivor = workers
    try:
        killed = None
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline:
            study = _study(storage)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if study else []:
                started = (datetime.now() - t.datetime_start).total_seconds()
                # "arch" is set once the model is chosen: a trial that has it and started under 0.5 s
                # ago (training takes over a second even on a fast CPU) is mid-training when the signal lands
                if (
                    t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
                    and "arch" in t.user_attrs
                    and started < 0.5
                ):
                    victim.send_signal(signal.SIGKILL)
                    killed = t.number
                    break
            time.sleep(0.05)
        assert killed is not None, (tmp_path / "worker0.log").read_text()
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert survivor.wait(timeout=240) == 0, (tmp_path / "worker1.log").read_text()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()

    study = _study(storage)
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    assert by_number[killed].state == TrialState.FAIL  # failed by the survivor's heartbeat check
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    for attr in ("arch", "slot"):
        assert retries[0].user_attrs[attr] == by_number[killed].user_attrs[attr]
    assert retries[0].params == by_number[killed].params
    assert retries[0].user_attrs["worker"].endswith(f":{survivor.pid}")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["slot"] for t in complete) == list(range(4))  # every slot exactly once
    expected = convnet_space().restrict({"depth": [1, 2], "width": [32]}).sample(4, 0, 1, (8, 8))
    assert sorted(t.user_attrs["arch"] for t in complete) == sorted(convnet_space().spec_string(p) for p in expected)
    slotted = [t for t in trials if "slot" in t.user_attrs]  # a surplus trial (queue.py) is never counted
    assert {t.state for t in slotted} == {TrialState.COMPLETE, TrialState.FAIL} and len(slotted) == 5
    status = queue_status(study)
    assert (status.done, status.pending, status.lost, status.recovered) == (4, 0, 0, 1)


def test_two_workers_share_the_ground_truth_slot_by_slot(postgres_url, tmp_path):
    flags = ["--ground-truth-only", "--gt-archs", "4", "--gt-epochs", "20", "--gt-seeds", "0", "1",
             "--checkpoint-dir", str(tmp_path / "checkpoints")]  # fmt: skip
    workers = [_worker(postgres_url, tmp_path / f"gt{i}.log", *flags) for i in range(2)]
    try:
        for i, w in enumerate(workers):
            assert w.wait(timeout=300) == 0, (tmp_path / f"gt{i}.log").read_text()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    storage = open_storage(postgres_url)
    (name,) = [
        s.study_name for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith("gt-digits-full-e20")
    ]
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE} and len(trials) == 4 * 2  # every slot exactly once
    archs = convnet_space().restrict({"depth": [1, 2], "width": [32]}).sample(4, 0, 1, (8, 8))
    expected = {(convnet_space().spec_string(p), seed) for p in archs for seed in (0, 1)}
    assert {(t.user_attrs["arch"], t.params["train_seed"]) for t in trials} == expected
    assert {t.user_attrs["worker"].split(":")[-1] for t in trials} == {str(w.pid) for w in workers}  # both worked
    assert all(len(t.intermediate_values) == 20 for t in trials)
    assert list((tmp_path / "checkpoints").glob("*/*.pt")) == []
