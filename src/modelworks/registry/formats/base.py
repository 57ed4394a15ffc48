"""The one interface every model serialisation format implements, and its record."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = ["ModelFormat", "SavedModel"]


@runtime_checkable
class ModelFormat(Protocol):
    """Turns a model into bytes and back.

    ``name`` is the registry key recorded with the bytes; ``library`` the distribution whose
    version the bytes depend on. ``executes_code_on_load`` is True when loading untrusted bytes
    can run arbitrary code (pickle); such formats load only with ``allow_pickle=True``.
    """

    name: str
    library: str
    executes_code_on_load: bool

    def library_version(self) -> str:
        """The installed version of ``library``, recorded beside the bytes."""
        ...

    def can_save(self, model: Any) -> bool:
        """True when this format knows how to save ``model`` (a cheap type check)."""
        ...

    def save(self, model: Any) -> bytes:
        """Serialise ``model``.

        Raises:
            InvalidInput: (field ``model``) the model cannot be saved in this format.
        """
        ...

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),
        allow_pickle: bool = False,
    ) -> Any:
        """Rebuild a model from ``data``.

        Args:
            data: bytes written by ``save``.
            trusted_types: fully qualified type names the caller has reviewed and trusts
                beyond the format's own safe set (formats that cannot restrict types ignore it).
            allow_pickle: must be True for a format that ``executes_code_on_load``.

        Raises:
            InvalidInput: (field ``allow_pickle``) the format runs code on load and the
                caller did not opt in.
            IntegrityError: the bytes are not this format, or name types that are not trusted.
        """
        ...


class SavedModel(BaseModel):
    """Serialised model bytes with what is needed to load them again."""

    model_config = ConfigDict(frozen=True)

    format: str
    data: bytes
    library: str
    library_version: str
