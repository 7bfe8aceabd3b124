"""Where NAS studies live: an Optuna RDB storage with heartbeats, and URLs that never show a password.

``--storage`` takes an SQLAlchemy URL:

* ``sqlite:///runs/nas/optuna.db`` (the default): one file, no server, for one machine; several
  worker processes may share it: every transaction takes the file's write lock at its start
  (``BEGIN IMMEDIATE``), because SQLite ignores the row lock (``SELECT ... FOR UPDATE``) with which
  Optuna hands a queued trial to exactly one worker, and two workers could otherwise both run it;
* ``postgresql://user:password@host:5432/db`` (driver ``psycopg2-binary``, or psycopg 3 when
  only that one is installed): several worker processes, on one machine or many, run the same
  command and share every study;
* ``mysql+pymysql://...`` works the same way (driver not installed by cl_nas).

Every storage records a heartbeat for each running trial. A worker that dies (``kill -9``, a lost
machine) stops beating; once ``grace_period`` seconds pass, the next worker to ask for a trial
marks the dead one FAIL and :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` (Optuna 5's
name for ``RetryFailedTrialCallback``) queues a copy with the same parameters, so the trial is
neither lost nor counted twice.

The studies are standard Optuna storages: browse them live with optuna-dashboard::

    pip install optuna-dashboard
    optuna-dashboard sqlite:///runs/nas/optuna.db
    optuna-dashboard postgresql+psycopg2://user:password@host:5432/db  # bare postgresql:// needs psycopg 3

Passwords: every message and log line of cl_nas shows URLs through :func:`mask_url`
(``postgresql://user:***@host/db``), and errors from the database driver are scrubbed of the
password before they are re-raised.
"""

from __future__ import annotations

import importlib.util
import re
import time
import warnings
from pathlib import Path
from urllib.parse import quote, unquote

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from sqlalchemy.engine import make_url

DEFAULT_STORAGE = "sqlite:///runs/nas/optuna.db"
DEFAULT_HEARTBEAT_SECONDS = 20
DEFAULT_MAX_RETRY = 3  # a trial that kills its worker every time (say, out of memory) is not retried forever
_DIALECTS = ("sqlite", "postgresql", "mysql")
_DRIVERS = {"postgresql": "psycopg2-binary", "mysql": "PyMySQL, with a mysql+pymysql:// URL"}
_SCHEMA_ATTEMPTS = 5
SQLITE_LOCK_TIMEOUT = 120  # seconds a SQLite transaction waits for the write lock before failing
_USERINFO = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@/\s]*)@")


class StorageError(ValueError):
    """A storage URL is malformed, unsupported or unreachable. The message never holds the password."""


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also for URLs SQLAlchemy cannot parse)."""
    return _USERINFO.sub(lambda m: f"{m['prefix']}***@", url)


def _password(url: str) -> str | None:
    match = _USERINFO.search(url)
    return match["password"] if match and match["password"] else None


def _scrub(text: str, url: str) -> str:
    """``text`` with every spelling of the URL's password (raw, decoded, encoded) replaced by ``***``."""
    password = _password(url)
    if password:
        for form in sorted({password, unquote(password), quote(unquote(password), safe="")}, key=len, reverse=True):
            text = text.replace(form, "***")
    return text


def _error(url: str, what: str, err: BaseException) -> StorageError:
    reason = " ".join(_scrub(str(err), url).split())
    return StorageError(f"storage {mask_url(url)}: {what} ({type(err).__name__}: {reason})")


def _with_postgres_driver(url: str) -> str:
    """Name an installed driver in a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 maps a bare URL to psycopg 3; cl_nas depends on psycopg2 (``psycopg2-binary``), so
    a bare URL uses it unless only psycopg 3 is installed.
    """
    if importlib.util.find_spec("psycopg2") is None:
        return url
    return re.sub(r"^postgresql(?=://)", "postgresql+psycopg2", url)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS,
    grace_period: int | None = None,
    max_retry: int = DEFAULT_MAX_RETRY,
    connect_timeout: int = 10,
) -> optuna.storages.RDBStorage:
    """Connect to (and create the tables of) the storage at ``url``; fail fast with a masked message.

    ``grace_period`` defaults to Optuna's (twice ``heartbeat_interval``). Errors raise
    :class:`StorageError` with the cause scrubbed and chained to nothing, so no traceback repeats it.
    """
    if heartbeat_interval < 1 or (grace_period is not None and grace_period < heartbeat_interval):
        raise ValueError(
            f"heartbeat interval must be >= 1 s and the grace period >= the interval, got "
            f"{heartbeat_interval} and {grace_period}"
        )
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as err:
        raise _error(url, "not a database URL like sqlite:///runs/nas/optuna.db or postgresql://...", err) from None
    dialect = parsed.get_backend_name()
    if dialect not in _DIALECTS:
        hint = " (write postgresql://, not postgres://)" if dialect == "postgres" else ""
        raise StorageError(f"storage {mask_url(url)}: unsupported database {dialect!r}{hint}; use one of {_DIALECTS}")
    engine_kwargs: dict = {}
    if dialect == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT}}
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise _error(url, "cannot create the folder of the SQLite file", err) from None
    else:
        # a long trial leaves its pooled connection idle: check it before reuse, and don't hang on a dead host
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": connect_timeout}}
    target = _with_postgres_driver(url) if parsed.drivername == "postgresql" else url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental" since Optuna 2.9
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        attempt = 0
        while True:
            try:
                storage = optuna.storages.RDBStorage(
                    target, engine_kwargs=engine_kwargs, heartbeat_stale_trial_callback=retry, **options
                )
                if dialect == "sqlite":
                    _lock_on_begin(storage.engine)
                return storage
            except ImportError as err:
                raise _error(url, f"its database driver is missing: pip install {_DRIVERS[dialect]}", err) from None
            except sqlalchemy.exc.SQLAlchemyError as err:
                # workers started together on a new database race to create Optuna's tables; the losers retry
                attempt += 1
                if attempt == _SCHEMA_ATTEMPTS or not _schema_race(err):
                    raise _error(url, "cannot connect or create the Optuna tables", err) from None
                time.sleep(0.5 * attempt)


def _lock_on_begin(engine: sqlalchemy.engine.Engine) -> None:
    """Make every transaction of a SQLite ``engine`` start with ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe): its
    reads and writes then happen under the database's write lock, one process at a time."""

    @sqlalchemy.event.listens_for(engine, "connect")
    def no_implicit_begin(dbapi_connection, connection_record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite would otherwise BEGIN only before the first write

    @sqlalchemy.event.listens_for(engine, "begin")
    def begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while creating the tables lack the hook


def _schema_race(err: sqlalchemy.exc.SQLAlchemyError) -> bool:
    """Whether ``err`` is another process creating the same tables at the same moment."""
    return isinstance(err, sqlalchemy.exc.IntegrityError) or "already exists" in str(err)
