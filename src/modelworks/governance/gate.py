"""The promotion gate: what the registry asks before a protected alias moves.

Importing this module registers the gate with the registry's promotion hooks (the registry
never imports governance). A move passes when every applicable current policy passes —
approvals and the periodic review included — and the passing evaluation is stored in the
move's own transaction. A refusal raises PolicyViolation listing each failed rule; the failed
evaluation is stored afterwards, in its own transaction, so refusals are on the record too.
The only bypass is ``force=True`` by an admin with a reason: a break-glass event.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from ..context import Context
from ..errors import PolicyViolation
from ..registry import aliases
from ..registry.models import get_version
from ..registry.records import ModelVersion
from ..store.tables import registered_models
from .evaluation import evaluate_version, store_evaluation

__all__ = ["promotion_gate", "record_refusal"]


def promotion_gate(conn: Connection, ctx: Context, target: ModelVersion, alias: str) -> None:
    outcomes = evaluate_version(conn, target)
    if not all(o.passed for _, o in outcomes):
        failures = [f"{o.policy or 'gate'}: {r.rule}: {r.reason}"
                    for _, o in outcomes for r in o.rules if not r.passed]
        raise PolicyViolation(f"moving {alias!r} to {target.uri} is refused: "
                              + "; ".join(failures))
    store_evaluation(ctx, conn, target, outcomes)
    if alias == "production":
        conn.execute(update(registered_models).where(registered_models.c.name == target.name)
                     .values(lifecycle_status="production"))


def record_refusal(ctx: Context, target: ModelVersion, alias: str,
                   error: PolicyViolation) -> None:
    """Store the failing evaluation after the refused move rolled back."""
    with ctx.db.write() as conn:
        version = get_version(conn, target.name, target.version)
        store_evaluation(ctx, conn, version, evaluate_version(conn, version))


if promotion_gate not in aliases.promotion_checks:
    aliases.promotion_checks.append(promotion_gate)
if record_refusal not in aliases.promotion_refusals:
    aliases.promotion_refusals.append(record_refusal)
