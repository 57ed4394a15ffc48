"""Model URIs: ``models:/NAME/VERSION`` and ``models:/NAME@ALIAS`` (and the short forms)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInput

__all__ = [
    "MODEL_NAME_RULE", "ModelRef", "parse_model_uri", "validate_alias", "validate_model_name",
]

MODEL_NAME_RULE = "letters, digits and - _ . ; 1 to 128 characters"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


class ModelRef(BaseModel):
    """A parsed model URI: a name plus exactly one of version or alias."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        tail = f"@{self.alias}" if self.alias else f"/{self.version}"
        return f"models:/{self.name}{tail}"


def validate_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise InvalidInput(f"invalid model name {name!r}: use {MODEL_NAME_RULE}", field="name")
    return name


def validate_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.isdigit():
        raise InvalidInput(
            f"invalid alias {alias!r}: start with a letter, then letters, digits and - _ . "
            "(at most 128 characters)", field="alias")
    return alias


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, or ``NAME/VERSION``, ``NAME@ALIAS``."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("model URI must be a non-empty string", field="model_uri")
    body = uri.strip()
    if body.startswith("models:/"):
        body = body[len("models:/"):]
    elif "://" in body or body.startswith("models:"):
        raise InvalidInput(f"model URI {uri!r} must look like models:/NAME/VERSION or "
                           "models:/NAME@ALIAS", field="model_uri")
    if "@" in body:
        name, _, alias = body.partition("@")
        return ModelRef(name=validate_model_name(name), alias=validate_alias(alias))
    name, sep, version = body.partition("/")
    if not sep or not version.isdigit() or int(version) < 1:
        raise InvalidInput(f"model URI {uri!r} must name a version (NAME/3) or an alias "
                           "(NAME@staging)", field="model_uri")
    return ModelRef(name=validate_model_name(name), version=int(version))
