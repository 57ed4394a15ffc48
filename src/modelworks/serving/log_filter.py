"""What the prediction log keeps of a request's inputs.

A column is personal when it is flagged in a dataset version the model version's run read
(``governance.pii.identifier_columns``: a scan finding, or an ``identifier`` or
``sensitive`` tag on the dataset). Such a column is

- **tokenised** when a pseudonym key is configured (``MODELWORKS_PSEUDONYM_KEY`` or
  ``MODELWORKS_PSEUDONYM_KEY_FILE``): the value becomes the keyed token
  ``pt1.KEY_ID.prediction-log.MAC``, so ground truth and repeat customers can still be
  joined without the log holding the value; purpose ``prediction-log`` keeps these tokens
  unlinkable to those made for other purposes;
- **dropped** otherwise.

A version without a run, or whose run read no flagged column, logs its inputs as sent.
The filter is built once per loaded version and costs nothing per row when no column of
the row is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Connection

from ..config import Settings
from ..context import Context
from ..governance.pii import identifier_columns
from ..governance.pseudonyms import PseudonymKeys, load_keys, pseudonym
from ..lineage import Node, edges_of
from ..registry.models import get_version

__all__ = ["PURPOSE", "LogFilter", "log_filter"]

PURPOSE = "prediction-log"
_CACHE_MAX = 10_000


class LogFilter:
    """Applied to each input row before it is logged; ``columns`` are those it changes."""

    __slots__ = ("_cache", "_flagged", "_keys", "columns", "mode")

    def __init__(self, columns: Mapping[str, list[str]], *,
                 mode: Literal["drop", "tokenise"], keys: PseudonymKeys | None = None) -> None:
        if mode == "tokenise" and keys is None:
            raise ValueError("tokenising needs pseudonym keys")
        self.columns = dict(columns)  # column -> reasons (entity types, tag:...)
        self.mode = mode
        self._flagged = frozenset(columns)
        self._keys = keys
        self._cache: dict[Any, str] = {}

    def __repr__(self) -> str:
        return f"LogFilter(mode={self.mode!r}, columns={sorted(self.columns)!r})"

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self._flagged or self._flagged.isdisjoint(row):
            return row
        if self.mode == "drop":
            return {k: v for k, v in row.items() if k not in self._flagged}
        out = dict(row)
        for column in self._flagged.intersection(row):
            value = out[column]
            if value is not None:
                out[column] = self._token(value)
        return out

    def _token(self, value: Any) -> str:
        try:
            hit = self._cache.get(value)
        except TypeError:  # unhashable (a list): not cached
            hit = None
        if hit is not None:
            return hit
        assert self._keys is not None
        token = pseudonym(value, purpose=PURPOSE, keys=self._keys)
        try:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[value] = token
        except TypeError:
            pass
        return token


def _keys_configured(settings: Settings) -> bool:
    return settings.pseudonym_key is not None or bool(settings.pseudonym_key_file)


def log_filter(ctx_or_conn: Context | Connection, name: str, version: int, *,
               settings: Settings | None = None) -> LogFilter:
    """The filter for a model version's logged inputs (see the module docstring).

    Raises:
        NotFound: no such model version.
        InvalidInput: a pseudonym key is configured but malformed (refused at load time,
            not discovered at the first request).
    """
    if isinstance(ctx_or_conn, Context):
        with ctx_or_conn.db.read() as conn:
            return log_filter(conn, name, version, settings=settings)
    conn = ctx_or_conn
    mv = get_version(conn, name, version)
    flagged: dict[str, list[str]] = {}
    if mv.run_id is not None:
        ids = [int(e.parent.id) for e in edges_of(conn, [Node(type="run", id=mv.run_id)])
               if e.parent.type == "dataset_version" and e.parent.id.isdigit()]
        flagged = identifier_columns(conn, ids)
    settings = settings or Settings()
    if flagged and _keys_configured(settings):
        return LogFilter(flagged, mode="tokenise", keys=load_keys(settings))
    return LogFilter(flagged, mode="drop")
