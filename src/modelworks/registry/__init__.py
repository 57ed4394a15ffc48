"""The model registry: models, versions, aliases, safe formats and signatures."""

from __future__ import annotations

from .loading import LoadedModel
from .records import AliasMove, ModelVersion, RegisteredModel
from .signatures import ColumnSpec, Signature, check_input, infer_signature
from .uri import ModelRef, parse_model_uri

__all__ = [
    "AliasMove",
    "ColumnSpec",
    "LoadedModel",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "Signature",
    "check_input",
    "infer_signature",
    "parse_model_uri",
]
