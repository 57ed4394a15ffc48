"""The Optuna study of a search, kept in the workspace's metadata database.

Optuna's tables (``studies``, ``trials``, ...) sit beside ours, which all carry the ``mw_``
prefix and their own Alembic version table, so both schemas share one SQLite file or one
PostgreSQL database. Every worker opens the study by name and pulls its next trial from it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

from ..store.database import share_engine

__all__ = ["create_study", "load_study", "pruner", "sampler", "storage"]

_SQLITE_TIMEOUT_S = 60


def storage(db_url: str, *, create: bool = False) -> Any:
    """Optuna's RDB storage on the workspace's database (its tables made when ``create``)."""
    import optuna

    kwargs: dict[str, Any] = ({"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
                              if db_url.startswith("sqlite") else {"pool_pre_ping": True})
    rdb = optuna.storages.RDBStorage(db_url, engine_kwargs=kwargs,
                                     skip_table_creation=not create)
    share_engine(rdb.engine)
    return rdb


def sampler(seed: int) -> Any:
    """TPE over the joint, conditional space (family, then its parameters); seeded."""
    import optuna

    with warnings.catch_warnings():  # multivariate/group are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          constant_liar=True)


def pruner() -> Any:
    """Stop a trial whose running CV mean is below the median of earlier trials' at the same
    fold, once five trials have finished (never on the first fold)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def create_study(db_url: str, name: str, *, direction: Literal["maximize", "minimize"],
                 seed: int,
                 warm_starts: Sequence[dict[str, Any]], user_attrs: dict[str, Any]) -> Any:
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created ..."
    try:
        study = optuna.create_study(storage=storage(db_url, create=True), study_name=name,
                                    direction=direction, sampler=sampler(seed),
                                    pruner=pruner())
    finally:
        optuna.logging.set_verbosity(verbosity)
    for key, value in user_attrs.items():
        study.set_user_attr(key, value)
    for params in warm_starts:
        study.enqueue_trial(params, user_attrs={"warm_start": True})
    return study


def load_study(db_url: str, name: str, *, seed: int = 0) -> Any:
    import optuna

    return optuna.load_study(study_name=name, storage=storage(db_url), sampler=sampler(seed),
                             pruner=pruner())
