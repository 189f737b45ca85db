"""Optuna storage for explore: open it with a one-line error, show its URL without the
password, and store a batch of finished trials in one transaction.

A batch is stored in one database transaction, so a run killed at any point
leaves either the whole batch or none of it: never part of one, never a
trial without its PPA. This module is the one place that touches Optuna's private RDB
schema (no public API stores a batch atomically); a test checks that what it writes reads
back as Optuna's own writer stores it, and pyproject pins Optuna to the tested major version.
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from generators.params import ParamError



def _is_secret(key: str) -> bool:
    """A query parameter that carries a credential: libpq's ``password`` and ``sslpassword``,
    and any driver's ``*pass*``, ``*secret*`` or ``*token*`` option."""
    key = key.lower()
    return any(word in key for word in ("pass", "secret", "token")) and key != "passfile"


def public_url(url: str) -> str:
    """``url`` without any credential, as it may be shown or stored: neither the password of
    its user info nor a query parameter that carries one (the password travels in PGPASSWORD
    or ~/.pgpass, which PostgreSQL's client library reads by itself)."""
    try:
        from sqlalchemy.engine import make_url
        parsed = make_url(url)
    except Exception:                               # not a URL at all: show none of it
        return "<storage URL>"
    parsed = parsed._replace(password=None).difference_update_query(
        [k for k in parsed.query if _is_secret(k)])
    return parsed.render_as_string(hide_password=False)


def _secrets(url: str) -> list[str]:
    """Every credential ``url`` carries, to be masked wherever its text could be shown."""
    try:
        from sqlalchemy.engine import make_url
        parsed = make_url(url)
    except Exception:
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if _is_secret(key):
            found += [value] if isinstance(value, str) else list(value)
    return [str(s) for s in found if str(s)]


def mask_secrets(text: str, url: str) -> str:
    """``text`` with every credential of ``url`` replaced by ``***``."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_kept(url: str) -> None:
    """Refuse a storage that keeps nothing once the process ends (an in-memory SQLite
    database): every trial would be priced, then lost."""
    try:
        from sqlalchemy.engine import make_url
        parsed = make_url(url)
    except Exception:
        return                                       # make_storage names the bad URL
    if parsed.get_backend_name() == "sqlite" and (
            parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"):
        raise ParamError(f"explore.storage {public_url(url)!r} is an in-memory SQLite database, which keeps "
                         f"nothing after the run; give a file (sqlite:///path/study.db) or a server URL")


def make_storage(url: str, *, read_only: bool = False) -> optuna.storages.RDBStorage:
    """Optuna RDB storage at ``url``; a URL that does not parse, a driver that is missing or a
    server that does not answer is a ``ValueError`` naming the URL without its password.

    ``read_only`` (what ``report`` uses) opens a SQLite file so that nothing can be written:
    a missing file or table is an error, never created or repaired.

    Processes that open a new database at the same moment (workers on several machines, a
    report polling a starting run) race to create its tables; the losers retry, since the
    schema the winner made is the one they wanted."""
    check_kept(url)
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    opened = _read_only_url(url) if read_only else url
    for attempt in itertools.count():
        try:
            return optuna.storages.RDBStorage(opened, engine_kwargs=kwargs)
        except Exception as exc:                    # SQLAlchemy, the driver and the OS each raise their own
            if attempt < SCHEMA_RACE_RETRIES and _lost_schema_race(exc):
                time.sleep(0.05 * (attempt + 1))
                continue
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = mask_secrets(reason, url)
            if read_only and "readonly" in reason.replace("-", "").replace(" ", "").lower():
                reason = "it is not a whole Optuna study (a table is missing; a report only reads)"
            raise ParamError(f"explore.storage cannot open {public_url(url)}: {reason[:300]}") from None


def _read_only_url(url: str) -> str:
    """A SQLite file URL opened read-only (SQLite's URI form); other URLs as they are."""
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    path = Path(parsed.database)
    if not path.is_file():
        raise ParamError(f"explore.storage {public_url(url)!r}: no such study file")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


SCHEMA_RACE_RETRIES = 20
_SCHEMA_RACE_SIGNS = ("already exists", "unique constraint", "duplicate key", "database is locked")


def _lost_schema_race(exc: Exception) -> bool:
    """Whether ``exc`` is another process creating the same tables first (SQLite and
    PostgreSQL word it differently), as opposed to a database that cannot be reached."""
    return any(sign in str(exc).lower() for sign in _SCHEMA_RACE_SIGNS)


def store_batch(study: optuna.Study, trials: Sequence[FrozenTrial], *, limit: int | None = None,
                trim: Callable[[Sequence[FrozenTrial]], Sequence[FrozenTrial]] | None = None) -> int:
    """Add finished ``trials`` to ``study`` in one transaction: all of them or none; returns
    how many were stored.

    With ``limit`` the study never holds more than that many completed trials, however many
    runs or workers write to it: the count is taken with the study row locked, and a batch
    that would overshoot keeps only its first trials (``trim`` re-labels the kept ones).

    ``Study.add_trials`` commits trial by trial; this writes the whole batch in one
    transaction (:func:`_insert_trials`), with the study row locked as Optuna locks it for one
    trial, so trial numbers stay dense under many writers.
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    storage = study._storage
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        if limit is not None:                       # in-memory storage: one process, nothing half-written
            room = max(0, limit - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
            trials = _within_room(trials, room, trim)
        study.add_trials(trials)
        return len(trials)
    for t in trials:
        t._validate()
    with _create_scoped_session(rdb.scoped_session) as session:
        # A write first: it takes the database's write lock on SQLite (which ignores FOR UPDATE and
        # starts a transaction only at the first write) and the study row's on PostgreSQL, so
        # the count below and the inserts after it are one step that no other writer interleaves.
        session.execute(sqlalchemy.update(models.StudyModel)
                        .where(models.StudyModel.study_id == study._study_id)
                        .values(study_name=models.StudyModel.study_name))
        study_row = models.StudyModel.find_or_raise_by_id(study._study_id, session, for_update=True)
        if limit is not None:
            room = max(0, limit - models.TrialModel.count(session, study_row, TrialState.COMPLETE))
            trials = _within_room(trials, room, trim)
        _insert_trials(session, study._study_id, trials)
    return len(trials)


def _insert_trials(session, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """Write finished ``trials`` into Optuna's tables in a few multi-row INSERTs (the rows
    Optuna's own writer makes, in its schema: the trial, its values, parameters and
    attributes), instead of the two or three statements per field that writer runs (20 trials/s
    for the accelerator, whose trials have about 40 fields). The caller holds the study row's
    lock, so the trials are numbered on from the study's count, as Optuna numbers them."""
    from optuna.distributions import check_distribution_compatibility, distribution_to_json, json_to_distribution
    from optuna.storages._rdb import models

    if any(t.intermediate_values for t in trials):
        raise ValueError("store_batch stores finished trials without intermediate values")
    seen = {}
    for name in {name for t in trials for name in t.distributions}:
        stored = session.execute(
            sqlalchemy.select(models.TrialParamModel.distribution_json)
            .join(models.TrialModel, models.TrialModel.trial_id == models.TrialParamModel.trial_id)
            .where(models.TrialModel.study_id == study_id, models.TrialParamModel.param_name == name)
            .limit(1)).scalar()
        if stored is not None:
            seen[name] = json_to_distribution(stored)
    for t in trials:
        for name, distribution in t.distributions.items():
            check_distribution_compatibility(seen.setdefault(name, distribution), distribution)
    base = session.execute(sqlalchemy.select(sqlalchemy.func.count(models.TrialModel.trial_id))
                           .where(models.TrialModel.study_id == study_id)).scalar_one()
    rows = [models.TrialModel(study_id=study_id, number=base + i, state=t.state, datetime_start=t.datetime_start,
                              datetime_complete=t.datetime_complete) for i, t in enumerate(trials)]
    session.add_all(rows)
    session.flush()                                  # the trials' ids, for the rows that follow
    children: dict[type, list[dict]] = {models.TrialValueModel: [], models.TrialParamModel: [],
                                        models.TrialUserAttributeModel: [], models.TrialSystemAttributeModel: []}
    for row, t in zip(rows, trials, strict=True):
        for objective, value in enumerate(t.values or []):
            stored, kind = models.TrialValueModel.value_to_stored_repr(value)
            children[models.TrialValueModel].append(
                dict(trial_id=row.trial_id, objective=objective, value=stored, value_type=kind))
        for name, value in t.params.items():
            distribution = t.distributions[name]
            children[models.TrialParamModel].append(
                dict(trial_id=row.trial_id, param_name=name, param_value=distribution.to_internal_repr(value),
                     distribution_json=distribution_to_json(distribution)))
        for model, attrs in ((models.TrialUserAttributeModel, t.user_attrs),
                             (models.TrialSystemAttributeModel, t.system_attrs)):
            children[model] += [dict(trial_id=row.trial_id, key=k, value_json=json.dumps(v)) for k, v in attrs.items()]
    for model, values in children.items():
        if values:
            session.execute(sqlalchemy.insert(model), values)


def _within_room(trials: Sequence[FrozenTrial], room: int, trim) -> Sequence[FrozenTrial]:
    if len(trials) <= room:
        return trials
    return trim(trials[:room]) if trim else trials[:room]


class StorageFault(RuntimeError):
    """The study's database failed mid-run (a full disk, a server gone): not bad input."""


_FAULT_SIGNS = (
    (("database or disk is full", "no space left on device", "disk full", "could not extend file"),
     "the disk holding the study is full; what was stored before it filled is whole (free space and "
     "run the same command again to resume)"),
    (("server closed the connection", "terminating connection", "connection refused", "connection to server",
      "could not connect", "the database system is shutting down", "connection is closed",
      "consuming input failed", "ssl syscall error"),
     "the study's database server stopped answering; what was stored before is whole (run the same "
     "command again once it is back)"),
    (("attempt to write a readonly database", "readonly database", "read-only file system"),
     "the study's database cannot be written (a read-only file or file system)"),
    (("disk i/o error", "input/output error"), "the disk holding the study failed (an I/O error)"),
)


def storage_fault(exc: BaseException) -> str | None:
    """One line saying which storage fault ``exc`` (or what caused it) was, or ``None`` when it
    is not one: Optuna wraps the database's own error in a ``StorageInternalError`` whose text
    guesses at a cause, so the chain is read for the real one."""
    seen, chain = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None else (
            None if exc.__suppress_context__ else exc.__context__)   # `raise ... from None` ends it
    storage_errors = (optuna.exceptions.StorageInternalError,)
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
        storage_errors += (DBAPIError, OperationalError)
    except ImportError:                               # pragma: no cover - SQLAlchemy comes with Optuna
        pass
    if not any(isinstance(e, storage_errors) for e in chain) and not any(
            isinstance(e, OSError) and e.errno == 28 for e in chain):
        return None
    text = " ".join(str(e).lower() for e in chain)
    if any(isinstance(e, OSError) and e.errno == 28 for e in chain):
        return _FAULT_SIGNS[0][1]
    for signs, line in _FAULT_SIGNS:
        if any(sign in text for sign in signs):
            return line
    first = " ".join(str(chain[-1]).split())[:200]
    return f"the study's database failed: {type(chain[-1]).__name__}: {first}"
