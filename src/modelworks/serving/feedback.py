"""Ground truth for logged predictions (``POST /v1/feedback``), for monitoring.

A label is any JSON value except null, for a prediction id ``REQUEST_ID:ROW``. Labels often
arrive days later and the prediction may still sit in another replica's journal, so the id
is checked for form, not looked up. A prediction may get several labels (a correction): the
latest received counts. A batch is written in one transaction with one
``prediction.feedback`` audit event (the count and the first ids), not one per label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from .. import audit
from ..context import Context
from ..errors import InvalidInput
from ..store.tables import feedback, utcnow
from .ids import parse_prediction_id

__all__ = ["MAX_BATCH", "MAX_LABEL_BYTES", "feedback_for", "record_feedback"]

MAX_BATCH = 10_000
MAX_LABEL_BYTES = 16_384
_FIELDS = {"prediction_id", "label"}
_AUDITED_IDS = 20
_CHUNK = 500


def _label_json(label: Any, field: str) -> None:
    if label is None:
        raise InvalidInput(f"{field} must not be null", field=field)
    try:
        text = json.dumps(label, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be a JSON value (no NaN or infinity): {exc}",
                           field=field) from None
    if len(text) > MAX_LABEL_BYTES:
        raise InvalidInput(f"{field} is {len(text)} bytes of JSON; at most "
                           f"{MAX_LABEL_BYTES}", field=field)


def _check(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise InvalidInput("feedback must be a list of {prediction_id, label} objects",
                           field="feedback")
    if not items:
        raise InvalidInput("feedback must hold at least one item", field="feedback")
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"feedback holds {len(items)} items; at most {MAX_BATCH} per call",
                           field="feedback")
    out = []
    for i, item in enumerate(items):
        where = f"feedback[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where} must be an object with prediction_id and label",
                               field=where)
        extra = sorted(str(k) for k in item if k not in _FIELDS)
        if extra:
            raise InvalidInput(f"{where}.{extra[0]} is not a feedback field "
                               "(fields: prediction_id, label)", field=f"{where}.{extra[0]}")
        for name in ("prediction_id", "label"):
            if name not in item:
                raise InvalidInput(f"{where}.{name} is missing", field=f"{where}.{name}")
        pid = item["prediction_id"]
        if not isinstance(pid, str):
            raise InvalidInput(f"{where}.prediction_id must be a string REQUEST_ID:ROW",
                               field=f"{where}.prediction_id")
        try:
            parse_prediction_id(pid)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.prediction_id: {exc}",
                               field=f"{where}.prediction_id") from None
        _label_json(item["label"], f"{where}.label")
        out.append((pid, item["label"]))
    return out


def record_feedback(ctx: Context, items: Sequence[Mapping[str, Any]]) -> int:
    """Store labels ``[{"prediction_id": "REQUEST_ID:ROW", "label": ...}, ...]``; the count.

    Raises:
        InvalidInput: naming the item's field (``feedback[3].prediction_id``); nothing of
            the batch is stored.
    """
    checked = _check(items)
    now = utcnow()
    rows = [{"prediction_id": pid, "label": label, "received_at": now, "actor": ctx.actor}
            for pid, label in checked]
    ids = [pid for pid, _ in checked]
    with ctx.db.write() as conn:
        conn.execute(feedback.insert(), rows)
        audit.append(ctx.db, conn, actor=ctx.actor, action="prediction.feedback",
                     entity_type="prediction", entity_id=ids[0],
                     payload={"count": len(ids), "prediction_ids": ids[:_AUDITED_IDS],
                              "truncated": len(ids) > _AUDITED_IDS})
    return len(rows)


def feedback_for(ctx: Context, prediction_ids: Iterable[str]) -> dict[str, Any]:
    """``{prediction_id: label}`` for the ids that have one (the latest label received).

    Many ids are fetched with one range scan: ids sort by request time, so the labels of a
    span of predictions are one slice of the index.
    """
    wanted = set(prediction_ids)
    if not wanted:
        return {}
    t = feedback
    query = select(t.c.prediction_id, t.c.label).order_by(t.c.id)
    out: dict[str, Any] = {}
    with ctx.db.read() as conn:
        if len(wanted) > _CHUNK:
            found = conn.execute(query.where(t.c.prediction_id >= min(wanted),
                                             t.c.prediction_id <= max(wanted))).all()
        else:
            found = conn.execute(query.where(t.c.prediction_id.in_(sorted(wanted)))).all()
    for pid, label in found:
        if pid in wanted:
            out[pid] = label  # ascending id: the latest label wins
    return out
