"""The step cache: a step's output by what determines it.

The key is sha256 over the step's code (its source, normalised through the AST so comments,
formatting, the docstring and the decorator do not count), the content hashes of its inputs,
the canonical JSON of its constant arguments and the value format version. Code the step
calls (helpers, libraries) is not part of the key: change ``cache=False`` or an argument
when only a helper changed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import sys
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ..store.artifacts import ArtifactStore
from ..store.database import Database
from ..store.tables import step_cache, utcnow
from .values import FORMAT_VERSION

__all__ = ["CacheHit", "cache_key", "lookup", "source_hash", "store"]


@dataclass(frozen=True)
class CacheHit:
    sha256: str
    format: str
    type: str
    step_run_id: int | None


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str) and len(body) > 1):
        return body[1:]
    return body


def _code_digest(code: types.CodeType, digest: Any) -> None:
    """Bytecode, constants and names, nested code objects included (no source at hand)."""
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    digest.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, digest)
        else:
            digest.update(repr(const).encode())


@functools.cache
def source_hash(fn: Callable[..., Any]) -> str:
    """sha256 of the function's normalised source; of its bytecode when there is no
    source file (code run with ``exec``), which then also depends on the Python version."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
        node = next(n for n in tree.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    except (OSError, TypeError, SyntaxError, StopIteration):
        digest = hashlib.sha256(f"bytecode:{sys.version_info[:2]}".encode())
        code = getattr(fn, "__code__", None)
        if code is None:
            digest.update(repr(fn).encode())
        else:
            _code_digest(code, digest)
        return digest.hexdigest()
    node.decorator_list = []
    node.body = _strip_docstring(node.body)
    return hashlib.sha256(ast.unparse(node).encode()).hexdigest()


def cache_key(*, code: str, inputs: Mapping[str, str], params: Mapping[str, Any]) -> str:
    """sha256 of code hash, input content hashes by parameter, canonical JSON params."""
    body = json.dumps({"v": FORMAT_VERSION, "code": code, "inputs": dict(inputs),
                       "params": dict(params)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def lookup(conn: Connection, artifacts: ArtifactStore, key: str) -> CacheHit | None:
    """The cached output for ``key`` if its bytes are still in the artifact store."""
    row = conn.execute(select(step_cache).where(step_cache.c.cache_key == key)).first()
    if row is None or not artifacts.exists(row.output_sha256):
        return None
    return CacheHit(sha256=row.output_sha256, format=row.output_format, type=row.output_type,
                    step_run_id=row.step_run_id)


def store(db: Database, conn: Connection, *, key: str, step: str, sha256: str, fmt: str,
          type_: str, step_run_id: int) -> None:
    """Remember an output under ``key`` (the newest output wins)."""
    db.upsert(conn, step_cache, [{
        "cache_key": key, "step": step[:300], "output_sha256": sha256, "output_format": fmt,
        "output_type": type_[:300], "step_run_id": step_run_id, "created_at": utcnow()}],
        keys=("cache_key",), update=("output_sha256", "output_format", "output_type",
                                     "step_run_id", "created_at"))
