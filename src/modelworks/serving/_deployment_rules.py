"""Input checks and the gate rule of deployments (``deployments`` describes the rule)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection

from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound, PolicyViolation
from ..registry.aliases import PROTECTED_ALIASES
from ..registry.models import resolve
from ..registry.records import ModelVersion
from ..registry.uri import MODEL_NAME_RULE, parse_model_uri
from .routing import Deployment, Route

__all__ = [
    "canonical_uri",
    "check_added",
    "check_gate",
    "gaining",
    "reason_text",
    "recording_refusals",
    "resolve_uri",
    "routes_from",
    "shadows_from",
    "validate_deployment_name",
    "weight",
    "write",
]

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_TOLERANCE = 1e-6  # weights are percentages; their sum may be off by float rounding only


# --- input checks ----------------------------------------------------------------------


def validate_deployment_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise InvalidInput(f"invalid deployment name {name!r}: use {MODEL_NAME_RULE}",
                           field="name")
    return name


def reason_text(reason: object, doing: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{doing} needs a reason", field="reason")
    return reason.strip()


def canonical_uri(value: object, field: str) -> str:
    """The canonical ``models:/...`` form; InvalidInput naming ``field`` otherwise."""
    try:
        return str(parse_model_uri(value))  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from exc


def weight(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidInput(f"{field} must be a percentage from 0 to 100, got {value!r}",
                           field=field)
    return float(value)


def routes_from(value: Mapping[str, float] | Sequence[Route]) -> list[Route]:
    """Routes from ``{uri: percent}`` or a list of Route (or ``(uri, percent)`` pairs)."""
    pairs: list[tuple[object, object]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            if isinstance(item, Route):
                pairs.append((item.model, item.weight))
            elif isinstance(item, tuple) and len(item) == 2:
                pairs.append(item)
            else:
                raise InvalidInput(f"routes[{i}] must be a Route(model, weight)",
                                   field="routes")
    else:
        raise InvalidInput("routes must map model URIs to percentages", field="routes")
    if not pairs:
        raise InvalidInput("routes must name at least one model", field="routes")
    out: list[Route] = []
    for i, (target, share) in enumerate(pairs):
        route = Route(model=canonical_uri(target, f"routes[{i}].model"),
                      weight=weight(share, f"routes[{i}].weight"))
        if any(r.model == route.model for r in out):
            raise InvalidInput(f"routes name {route.model} twice", field="routes")
        out.append(route)
    total = sum(r.weight for r in out)
    if abs(total - 100.0) > _TOLERANCE:
        raise InvalidInput(f"route weights must sum to 100, they sum to {total:g}",
                           field="routes")
    return out


def shadows_from(value: Sequence[str], routes: Sequence[Route]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput("shadows must be a list of model URIs", field="shadows")
    out: list[str] = []
    for i, uri in enumerate(value):
        shadow = canonical_uri(uri, f"shadows[{i}]")
        if shadow in out or any(r.model == shadow for r in routes):
            raise InvalidInput(f"shadows[{i}]: {shadow} is already a route or a shadow",
                               field="shadows")
        out.append(shadow)
    return out


def resolve_uri(conn: Connection, uri: str, field: str) -> ModelVersion:
    """The version ``uri`` names now; NotFound/Conflict naming the field and the URI."""
    try:
        version = resolve(conn, parse_model_uri(uri))
    except NotFound as exc:
        raise NotFound(f"{field}: {uri}: {exc}") from exc
    if version.status == "archived":
        raise Conflict(f"{field}: {uri} is archived and cannot be served")
    return version


def check_added(conn: Connection, before: Deployment | None, after: Deployment) -> None:
    """Every entry the change adds must resolve to a servable version."""
    old = set() if before is None else {r.model for r in before.routes} | set(before.shadows)
    for i, r in enumerate(after.routes):
        if r.model not in old:
            resolve_uri(conn, r.model, f"routes[{i}].model")
    for i, s in enumerate(after.shadows):
        if s not in old:
            resolve_uri(conn, s, f"shadows[{i}]")
    if after.fallback is not None and (before is None or after.fallback != before.fallback):
        resolve_uri(conn, after.fallback, "fallback")


# --- the gate rule -----------------------------------------------------------------------


def _serves_protected(dep: Deployment | None) -> bool:
    if dep is None:
        return False
    uris = [r.model for r in dep.routes] + ([dep.fallback] if dep.fallback else [])
    return any(parse_model_uri(u).alias in PROTECTED_ALIASES for u in uris)


def gaining(before: Deployment | None, after: Deployment) -> list[tuple[str, str]]:
    """(URI, field) of each entry that gains traffic, when the endpoint is protected."""
    if not (_serves_protected(before) or _serves_protected(after)):
        return []
    old = {} if before is None else {r.model: r.weight for r in before.routes}
    out = [(r.model, f"routes[{i}]") for i, r in enumerate(after.routes)
           if r.weight > old.get(r.model, 0.0)]
    if after.fallback is not None and (before is None or after.fallback != before.fallback):
        out.append((after.fallback, "fallback"))
    return out


class _Refused(PolicyViolation):
    """A gate refusal that remembers the versions whose failing evaluation to store."""

    def __init__(self, message: str, versions: list[ModelVersion]) -> None:
        super().__init__(message)
        self.versions = versions


def check_gate(ctx: Context, conn: Connection, entries: list[tuple[str, str]], *,
               store: bool) -> None:
    """Refuse unless every gaining entry passes; store the passing evaluations if ``store``."""
    from ..governance.evaluation import evaluate_version, store_evaluation

    passed, failed, failures = [], [], []
    for uri, field in entries:
        ref = parse_model_uri(uri)
        if ref.alias in PROTECTED_ALIASES:
            continue  # the registry gates every move of a protected alias
        if ref.alias is not None:
            raise PolicyViolation(
                f"{field}: {uri} is an unprotected alias, which moves without the gate: this "
                "endpoint serves a protected alias, so pin a version (NAME/VERSION) instead")
        version = resolve_uri(conn, uri, field)
        outcomes = evaluate_version(conn, version)
        if all(o.passed for _, o in outcomes):
            passed.append((version, outcomes))
        else:
            failed.append(version)
            failures += [f"{uri}: {o.policy or 'gate'}: {r.rule}: {r.reason}"
                         for _, o in outcomes for r in o.rules if not r.passed]
    if failed:
        raise _Refused("refused by the governance gate (this endpoint serves a protected "
                       "alias): " + "; ".join(failures), failed)
    if store:
        for version, outcomes in passed:
            store_evaluation(ctx, conn, version, outcomes)


@contextmanager
def recording_refusals(ctx: Context) -> Iterator[None]:
    """After a refused change rolled back, store the failing evaluations (on the record)."""
    try:
        yield
    except _Refused as exc:
        from ..governance.evaluation import evaluate_version, store_evaluation

        with ctx.db.write() as conn:
            for version in exc.versions:
                store_evaluation(ctx, conn, version, evaluate_version(conn, version))
        raise


def write(ctx: Context, work: Callable[[Connection], T]) -> T:
    with recording_refusals(ctx), ctx.db.write() as conn:
        return work(conn)
