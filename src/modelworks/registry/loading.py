"""Register a model object as a version, and load a version back behind its signature."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import audit
from ..context import Context
from ..errors import IntegrityError, InvalidInput
from .formats import SavedModel, get_format, load_model, save_model
from .models import NewVersion, get_version, record_versions, resolve
from .records import ModelVersion
from .signatures import Signature, check_input, infer_signature
from .uri import parse_model_uri, validate_model_name

__all__ = ["LoadedModel", "load", "register"]

_EXAMPLE_ROWS = 5


class LoadedModel:
    """A loaded version: ``predict`` checks the input against the signature first."""

    def __init__(self, version: ModelVersion, model: Any) -> None:
        self.version = version
        self.model = model
        self.signature = (Signature.model_validate(version.signature)
                          if version.signature else None)

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.uri}, format={self.version.format!r})"

    def _checked(self, data: Any) -> Any:
        return check_input(self.signature, data) if self.signature is not None else data

    def predict(self, data: Any) -> Any:
        return self.model.predict(self._checked(data))

    def predict_proba(self, data: Any) -> Any:
        if not hasattr(self.model, "predict_proba"):
            raise InvalidInput(f"{self.version.uri} has no class probabilities",
                               field="predict_proba")
        return self.model.predict_proba(self._checked(data))


def _example(input_example: Any) -> tuple[pd.DataFrame | None, list[dict[str, Any]] | None]:
    if input_example is None:
        return None, None
    frame = input_example if isinstance(input_example, pd.DataFrame) else None
    if frame is None:
        try:
            frame = pd.DataFrame(input_example)
        except (ValueError, TypeError) as exc:
            raise InvalidInput("input_example must be a DataFrame or rows of named values",
                               field="input_example") from exc
    rows = json.loads(frame.head(_EXAMPLE_ROWS).to_json(orient="records", date_format="iso"))
    return frame, rows


def register(
    ctx: Context, name: str, *, model: Any, run_id: str | None, input_example: Any,
    signature: Signature | Mapping[str, Any] | None, description: str | None,
    risk_tier: str | None, tags: Mapping[str, Any] | None, allow_pickle: bool,
) -> ModelVersion:
    validate_model_name(name)
    frame, rows = _example(input_example)
    if signature is not None:
        sig = (signature if isinstance(signature, Signature)
               else Signature.model_validate(dict(signature)))
    elif frame is not None:
        sig = infer_signature(frame)
    else:
        sig = None
    saved = save_model(model, allow_pickle=allow_pickle)
    ref = ctx.artifacts.put_bytes(saved.data)  # bytes before the record that points at them

    entry = NewVersion(
        name=name, sha256=ref.sha256, size=ref.size, fmt=saved.format, library=saved.library,
        library_version=saved.library_version,
        allow_pickle=get_format(saved.format).executes_code_on_load, run_id=run_id,
        signature=sig.model_dump(mode="json") if sig else None, input_example=rows,
        description=description, model_description=description, risk_tier=risk_tier,
        tags=tags)

    def work(conn: Any) -> ModelVersion:
        version = record_versions(ctx, conn, [entry])[0]
        return get_version(conn, name, version)

    return ctx.db.write_retrying(work)


def load(ctx: Context, uri: str, *, allow_pickle: bool = False) -> LoadedModel:
    ref = parse_model_uri(uri)
    with ctx.db.read() as conn:
        version = resolve(conn, ref)
    if version.allow_pickle and not allow_pickle:
        raise InvalidInput(f"{version.uri} is stored as {version.format}, which can run code "
                           "when loaded: pass allow_pickle=True if you trust it",
                           field="allow_pickle")
    try:
        data = ctx.artifacts.get_bytes(version.sha256)  # verified before anything parses it
    except IntegrityError as exc:
        with ctx.db.write() as conn:
            audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.integrity_failed",
                         entity_type="model_version", entity_id=f"{version.name}/"
                         f"{version.version}", payload={"sha256": version.sha256,
                                                        "error": str(exc)})
        raise
    saved = SavedModel(format=version.format, data=data, library=version.library or "",
                       library_version=version.library_version or "")
    return LoadedModel(version, load_model(saved, allow_pickle=allow_pickle))
