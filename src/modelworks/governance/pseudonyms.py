"""Keyed pseudonyms: HMAC-SHA256 tokens that carry their purpose and key id.

A token is ``pt1.<key_id>.<purpose>.<mac>``, where ``mac`` is the first 160 bits of
``HMAC-SHA256(key, purpose || 0x00 || normalised value)`` in lowercase base32 without padding
(32 characters). The purpose is inside the MAC, so tokens made for ``analytics`` and for
``support`` cannot be linked; the key id names the key, so after a rotation tokens made
with an older key still verify while that key stays in the key file.

Values are normalised before they are MACed, so formatting differences do not make two
tokens for one person: ``str`` (integers as decimals, booleans as ``true``/``false``),
Unicode NFKC, strip, casefold (which lowercases emails); then a phone-like value (digits with
spaces, dashes, dots, slashes or brackets, an optional leading ``+``, at least 7 digits, not a
plain decimal number) keeps its digits only, so ``+1 (415) 555-2671`` and ``14155552671`` get
one token — as do the same card or social security number, or date, written with or without
separators. Floats keep their decimal text (``5.0`` is not ``5``).

Keys come from settings only, never from the workspace: ``MODELWORKS_PSEUDONYM_KEY`` as
``KEY_ID:SECRET`` and/or ``MODELWORKS_PSEUDONYM_KEY_FILE``, a JSON or YAML file
``{"active": "k2", "keys": {"k1": "...", "k2": "..."}}``. A secret is hex or base64 (an
explicit ``hex:`` or ``base64:`` prefix settles it; otherwise a string of hex digits is hex)
and at least 32 bytes once decoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import Connection

from .. import audit
from ..config import Settings
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..lineage import Node, add_edge
from ..records import DatasetVersion

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_KEY_BYTES",
    "TOKEN_BITS",
    "PseudonymKeys",
    "load_keys",
    "normalise",
    "parse_token",
    "pseudonym",
    "pseudonymize",
    "verify_token",
]

TOKEN_VERSION = "pt1"
TOKEN_BITS = 160
MIN_KEY_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PHONE_LIKE = re.compile(r"^[+(]?\d[\d\s\-./()]*$")
_DECIMAL = re.compile(r"^[+-]?\d+\.\d+$")


@dataclass(frozen=True)
class PseudonymKeys:
    """The configured secrets by key id, and which one new tokens use."""

    active: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __repr__(self) -> str:  # never the secrets
        return f"PseudonymKeys(active={self.active!r}, key_ids={sorted(self.keys)!r})"

    def secret(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise NotFound(
                f"no pseudonym key {key_id!r} is configured (key ids: {sorted(self.keys)}); "
                "keep rotated keys in MODELWORKS_PSEUDONYM_KEY_FILE to verify their tokens"
            ) from None


def check_name(value: object, *, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"{field} must be 1-64 letters, digits, '-' or '_', got {value!r}", field=field
        )
    return value


def _decode_secret(text: str, *, key_id: str, setting: str) -> bytes:
    raw = text.strip()
    try:
        if raw.startswith("hex:"):
            secret = bytes.fromhex(raw[4:])
        elif raw.startswith("base64:"):
            secret = base64.b64decode(raw[7:], validate=True)
        elif re.fullmatch(r"(?:[0-9a-fA-F]{2})+", raw):
            secret = bytes.fromhex(raw)
        else:
            secret = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidInput(
            f"{setting}: the secret of key {key_id!r} is neither hex nor base64", field=setting
        ) from None
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidInput(
            f"{setting}: the secret of key {key_id!r} has {len(secret)} bytes; a pseudonym "
            f"key needs at least {MIN_KEY_BYTES} (e.g. `python -c \"import secrets; "
            "print(secrets.token_hex(32))\"`)",
            field=setting,
        )
    return secret


def _read_key_file(path: str) -> tuple[str, dict[str, bytes]]:
    setting = "MODELWORKS_PSEUDONYM_KEY_FILE"
    file = Path(path).expanduser()
    if not file.is_file():
        raise NotFound(f"{setting}: no key file at {str(file)!r}")
    try:
        doc = yaml.safe_load(file.read_text())  # YAML, and JSON as its subset
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{setting}: cannot read {str(file)!r}: {exc}",
                           field=setting) from exc
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, dict) or not keys:
        raise InvalidInput(f"{setting}: {str(file)!r} needs a non-empty 'keys' mapping "
                           "of key id to secret", field=setting)
    decoded = {check_name(str(kid), field=f"{setting} key id"):
               _decode_secret(str(secret), key_id=str(kid), setting=setting)
               for kid, secret in keys.items()}
    active = doc.get("active")
    if active not in decoded:
        raise InvalidInput(f"{setting}: 'active' must name one of the keys {sorted(decoded)}, "
                           f"got {active!r}", field=setting)
    return str(active), decoded


def load_keys(settings: Settings | None = None) -> PseudonymKeys:
    """The pseudonym keys from settings; InvalidInput naming the settings when none is set.

    With both settings, the key file supplies the older keys and ``MODELWORKS_PSEUDONYM_KEY``
    is the active one.
    """
    settings = settings or Settings()
    keys: dict[str, bytes] = {}
    active: str | None = None
    if settings.pseudonym_key_file:
        active, keys = _read_key_file(settings.pseudonym_key_file)
    if settings.pseudonym_key is not None:
        setting = "MODELWORKS_PSEUDONYM_KEY"
        kid, sep, secret = settings.pseudonym_key.get_secret_value().partition(":")
        if not sep:
            raise InvalidInput(f"{setting} must be KEY_ID:SECRET (hex or base64, "
                               f"{MIN_KEY_BYTES}+ bytes)", field=setting)
        if kid.strip() in ("hex", "base64"):
            raise InvalidInput(f"{setting} must be KEY_ID:SECRET; the key id is missing",
                               field=setting)
        kid = check_name(kid.strip(), field=f"{setting} key id")
        value = _decode_secret(secret, key_id=kid, setting=setting)
        if kid in keys and not hmac.compare_digest(keys[kid], value):
            raise InvalidInput(f"{setting}: key {kid!r} differs from the key of that id in "
                               "MODELWORKS_PSEUDONYM_KEY_FILE", field=setting)
        keys[kid], active = value, kid
    if active is None:
        raise InvalidInput(
            "no pseudonym key is configured: set MODELWORKS_PSEUDONYM_KEY=KEY_ID:SECRET or "
            "MODELWORKS_PSEUDONYM_KEY_FILE (a JSON/YAML file {active, keys})",
            field="pseudonym_key",
        )
    return PseudonymKeys(active=active, keys=keys)


def normalise(value: Any) -> str:
    """The canonical text of a value, as MACed (see the module docstring)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return normalise(value.item())
    else:
        text = str(value)
    text = unicodedata.normalize("NFKC", text).strip().casefold()
    if _PHONE_LIKE.match(text) and not _DECIMAL.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 7:
            return digits
    return text


def _mac(secret: bytes, purpose: str, text: str) -> str:
    digest = hmac.new(secret, purpose.encode() + b"\x00" + text.encode(), hashlib.sha256)
    return base64.b32encode(digest.digest()[: TOKEN_BITS // 8]).decode().lower()


def pseudonym(value: Any, *, purpose: str, keys: PseudonymKeys, key_id: str | None = None
              ) -> str:
    """The token of one non-null value."""
    check_name(purpose, field="purpose")
    kid = key_id or keys.active
    return f"{TOKEN_VERSION}.{kid}.{purpose}.{_mac(keys.secret(kid), purpose, normalise(value))}"


def parse_token(token: str) -> tuple[str, str, str]:
    """``(key_id, purpose, mac)`` of a token; InvalidInput if it is not one."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not all(parts[1:]):
        raise InvalidInput(f"not a pseudonym token ({TOKEN_VERSION}.KEY_ID.PURPOSE.MAC): "
                           f"{str(token)[:80]!r}", field="token")
    return parts[1], parts[2], parts[3]


def verify_token(token: str, value: Any, purpose: str,
                 keys: PseudonymKeys | Settings | None = None) -> bool:
    """Whether ``token`` is the pseudonym of ``value`` for ``purpose`` under its own key id.

    Works for any key id still configured (rotated keys kept in the key file); a key id no
    longer configured is NotFound.
    """
    keyring = keys if isinstance(keys, PseudonymKeys) else load_keys(keys)
    kid, token_purpose, mac = parse_token(token)
    if token_purpose != purpose:
        return False
    expected = _mac(keyring.secret(kid), purpose, normalise(value))
    return hmac.compare_digest(expected, mac)


def _tokenise(series: pd.Series, purpose: str, keys: PseudonymKeys, key_id: str) -> pd.Series:
    """Tokens in place of values (each distinct value MACed once); nulls stay null."""
    import pandas as pd

    present = series.notna()
    if not present.any():
        return pd.Series([None] * len(series), index=series.index, dtype=object)
    cache: dict[Any, str] = {}

    def token(value: Any) -> str:
        try:
            return cache[value]
        except KeyError:
            cache[value] = made = pseudonym(value, purpose=purpose, keys=keys, key_id=key_id)
            return made
        except TypeError:  # unhashable (a list in an object column)
            return pseudonym(value, purpose=purpose, keys=keys, key_id=key_id)

    out = pd.Series([None] * len(series), index=series.index, dtype=object)
    out[present] = [token(v) for v in series[present]]
    return out


def _wanted_columns(columns: Sequence[str] | str, available: Mapping[str, str],
                    ref: str) -> list[str]:
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    wanted = list(dict.fromkeys(str(c) for c in columns or ()))
    if not wanted:
        raise InvalidInput("columns must name at least one column to pseudonymize",
                           field="columns")
    for column in wanted:
        if column not in available:
            raise InvalidInput(f"{ref} has no column {column!r} (columns: {list(available)})",
                               field="columns")
    return wanted


def pseudonymize(
    ctx: Context,
    dataset: str,
    version: int | None = None,
    *,
    columns: Sequence[str] | str,
    purpose: str,
    key_id: str | None = None,
    keys: PseudonymKeys | Settings | None = None,
) -> DatasetVersion:
    """Write the dataset's next version with ``columns`` replaced by keyed tokens.

    The new version is linked to its parent in lineage (``pseudonymized_from``), its columns
    are tagged ``pseudonymized``, and a ``dataset.pseudonymized`` audit event names the
    columns, purpose and key id (never the key) — in the transaction that records the version.

    Raises:
        InvalidInput: no or unknown columns, a malformed purpose, no key configured, a key
            shorter than 32 bytes.
        NotFound: no such dataset, version or key id.
    """
    from ..data.datasets import get_dataset_version, load_dataset, log_dataset
    from .column_tags import add_tags, dataset_id

    check_name(purpose, field="purpose")
    if key_id is not None:
        check_name(key_id, field="key_id")
    keyring = keys if isinstance(keys, PseudonymKeys) else load_keys(keys)
    kid = key_id or keyring.active
    keyring.secret(kid)  # NotFound for an unknown key id, before any work
    with ctx.db.read() as conn:
        parent = get_dataset_version(conn, dataset, version)
    wanted = _wanted_columns(columns, parent.columns, f"dataset {parent.name}:{parent.version}")
    df = load_dataset(ctx, parent)
    for column in wanted:
        df[column] = _tokenise(df[column], purpose, keyring, kid)
    details = {"columns": wanted, "purpose": purpose, "key_id": kid,
               "token_format": f"{TOKEN_VERSION}.KEY_ID.PURPOSE.BASE32", "token_bits": TOKEN_BITS}

    def record(conn: Connection, child: DatasetVersion) -> None:
        if child.id == parent.id:
            raise InvalidInput(f"pseudonymizing {wanted} changes nothing in {parent.uri}: "
                               "the columns hold only nulls", field="columns")
        add_edge(conn, child=Node(type="dataset_version", id=str(child.id)),
                 parent=Node(type="dataset_version", id=str(parent.id)),
                 relation="pseudonymized_from", actor=ctx.actor,
                 payload={"dataset": parent.name, "version": parent.version,
                          "content_hash": parent.content_hash, **details})
        add_tags(conn, dataset_id(conn, parent.name), wanted, "pseudonymized", ctx.actor)
        audit.append(ctx.db, conn, actor=ctx.actor, action="dataset.pseudonymized",
                     entity_type="dataset_version", entity_id=child.id,
                     payload={"dataset": child.name, "version": child.version,
                              "parent_version": parent.version, **details})

    return log_dataset(ctx, df, name=parent.name, source=f"pseudonymized from {parent.uri}",
                       on_logged=record)
