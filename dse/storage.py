"""Optuna storage for explore: open it with a one-line error, show its URL without the
password, and store a batch of finished trials in one transaction.

A batch is stored in one database transaction, so a run killed at any point
leaves either the whole batch or none of it: never part of one, never a
trial without its PPA.
"""
from __future__ import annotations

import itertools
import time
from typing import Sequence

import optuna
from optuna.trial import FrozenTrial

CONSTRAINTS_ATTR = "constraints"      # where Optuna's samplers, best_trials and optuna-dashboard read them


def public_url(url: str) -> str:
    """``url`` without its password, as it may be shown or stored (the password travels in
    PGPASSWORD or ~/.pgpass, which PostgreSQL's client library reads by itself)."""
    try:
        from sqlalchemy.engine import make_url
        parsed = make_url(url)
    except Exception:                               # not a URL at all: show none of it
        return "<storage URL>"
    return parsed._replace(password=None).render_as_string(hide_password=False)


def make_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna RDB storage at ``url``; a URL that does not parse, a driver that is missing or a
    server that does not answer is a ``ValueError`` naming the URL without its password.

    Processes that open a new database at the same moment (workers on several machines, a
    report polling a starting run) race to create its tables; the losers retry, since the
    schema the winner made is the one they wanted."""
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in itertools.count():
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:                    # SQLAlchemy, the driver and the OS each raise their own
            if attempt < SCHEMA_RACE_RETRIES and _lost_schema_race(exc):
                time.sleep(0.05 * (attempt + 1))
                continue
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            secret = _password(url)
            if secret:
                reason = reason.replace(secret, "***")
            raise ValueError(f"explore.storage cannot open {public_url(url)}: {reason[:300]}") from None


SCHEMA_RACE_RETRIES = 20
_SCHEMA_RACE_SIGNS = ("already exists", "unique constraint", "duplicate key", "database is locked")


def _lost_schema_race(exc: Exception) -> bool:
    """Whether ``exc`` is another process creating the same tables first (SQLite and
    PostgreSQL word it differently), as opposed to a database that cannot be reached."""
    return any(sign in str(exc).lower() for sign in _SCHEMA_RACE_SIGNS)


def _password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).password
    except Exception:
        return None


def store_batch(study: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
    """Add finished ``trials`` to ``study`` in one transaction: all of them or none.

    ``Study.add_trials`` commits trial by trial; this uses the RDB storage's own
    per-trial writer inside a single session, with the study row locked as Optuna
    locks it for one trial, so trial numbers stay dense under many writers.
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    storage = study._storage
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        study.add_trials(trials)                    # in-memory storage: nothing can be half-written
        return
    for t in trials:
        t._validate()
    with _create_scoped_session(rdb.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study._study_id, session, for_update=True)
        for t in trials:
            rdb._get_prepared_new_trial(study._study_id, t, session)
