"""scikit-learn models as skops bytes: loading never runs code from the payload.

skops keeps its own list of safe types; anything else in a payload is reported by
``get_untrusted_types``. Of those we trust only *classes* from scikit-learn, NumPy, SciPy and
the standard ``builtins`` / ``collections`` modules. Functions are never trusted wholesale:
a ``FunctionTransformer(func=builtins.eval)`` or ``numpy.save`` would run at predict time.
Anything else must be named by the caller in ``trusted_types`` after review.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import zipfile
from collections.abc import Collection
from typing import Any

import sklearn
import skops.io as sio
from sklearn.base import BaseEstimator
from skops.io.exceptions import UntrustedTypesFoundException

from ...errors import IntegrityError, InvalidInput

__all__ = ["TRUSTED_PACKAGES", "SklearnFormat", "is_trusted_type"]

TRUSTED_PACKAGES = frozenset({"sklearn", "numpy", "scipy", "builtins", "collections"})


def _resolve(name: str) -> Any:
    """The object a dotted ``module.qualname`` names, or None when it does not resolve."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


# functools.partial only binds arguments: skops reports the function it wraps as a type of
# its own, which must pass on its own merits.
_TRUSTED_EXACT = frozenset({"functools.partial"})


def is_trusted_type(name: str) -> bool:
    """A class from ``TRUSTED_PACKAGES``, a scikit-learn function, or a NumPy ufunc.

    scikit-learn's own functions (``check_array``, scorers) appear in fitted estimators and
    do no I/O; NumPy ufuncs (``log1p``) are pure element-wise maths. Other functions —
    ``builtins.eval``, ``numpy.save`` — stay untrusted.
    """
    if name in _TRUSTED_EXACT:
        return True
    package = name.split(".", 1)[0]
    if package not in TRUSTED_PACKAGES:
        return False
    obj = _resolve(name)
    if isinstance(obj, type):
        return True
    if package == "sklearn" and callable(obj):
        return True
    if package == "numpy":
        import numpy as np

        return isinstance(obj, np.ufunc)
    return False


_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def _compact_dumps(model: Any) -> bytes:
    """What ``skops.io.dumps`` writes, compact and reproducible.

    skops writes ``schema.json`` with ``json.dumps(indent=2)``, which Python serves with its
    pure-Python encoder: for a small model that is about 60% of saving it (``train_many``
    saves thousands). Without ``indent`` the C encoder writes the same schema, whitespace
    aside, and skops reads both alike. skops also names objects and array members by
    ``id()`` (or a random UUID) and stamps members with the time of saving, so the same
    model gave new bytes — a new sha256 — every time; here ids and member names are
    numbered in the order the schema meets them (shared objects keep one number) and every
    member carries one fixed time, so equal models give equal bytes: the registry stores
    them once and a pipeline step downstream of a retrained-but-unchanged model stays
    cached. This follows skops' private ``_save``; when skops changes,
    :func:`_compact_matches` sees it and the public ``dumps`` is used instead.
    """
    import skops
    from skops.io._utils import SaveContext, get_state

    members = _Members()
    context = SaveContext(zip_file=members)  # type: ignore[arg-type]
    state = get_state(model, context)
    context.clear_memo()
    state["protocol"] = context.protocol
    state["_skops_version"] = skops.__version__
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}
    done: set[int] = set()  # skops may put one state dict in the tree twice

    def renumber(node: Any) -> None:
        if isinstance(node, dict | list | tuple):  # tuples too: skops keeps some (pairs)
            if id(node) in done:
                return
            done.add(id(node))
        if isinstance(node, dict):
            if "__id__" in node:
                node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
            if isinstance(node.get("file"), str):
                old = node["file"]
                node["file"] = files.setdefault(old, f"{len(files) + 1}{_suffix(old)}")
            for value in node.values():
                renumber(value)
        elif isinstance(node, list | tuple):
            for value in node:
                renumber(value)

    renumber(state)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for old, new in files.items():
            target.writestr(_entry(new), members.data[old])
        target.writestr(_entry("schema.json"), json.dumps(state, separators=(",", ":")))
    return buffer.getvalue()


class _Members:
    """Where skops' savers put the archive's members (they call ``writestr`` and
    ``namelist``), kept until they are written under their final names."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def writestr(self, name: str, data: Any) -> None:
        self.data[name] = bytes(data)

    def namelist(self) -> list[str]:
        return list(self.data)


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _normalised(data: bytes) -> tuple[Any, list[bytes]]:
    """An archive's schema without the ids of objects (``__id__``, and ``file``: members
    are named by id), and its members' contents (sorted: the names differ)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("__id__", "file")}
        if isinstance(node, list | tuple):
            return [strip(v) for v in node]
        return node

    with zipfile.ZipFile(io.BytesIO(data)) as zip_file:
        names = zip_file.namelist()
        schema = strip(json.loads(zip_file.read("schema.json")))
        return schema, sorted(zip_file.read(n) for n in names if n != "schema.json")


@functools.cache
def _compact_matches() -> bool:
    """True when the compact writer gives skops' own archive for a fitted pipeline (same
    schema, same members); checked once per process."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]), [0, 0, 1, 1])
    try:
        ours = _compact_dumps(probe)
    except Exception:  # skops' internals moved
        return False
    return _normalised(ours) == _normalised(bytes(sio.dumps(probe)))


class SklearnFormat:
    """scikit-learn estimators and pipelines via skops."""

    name = "sklearn"
    library = "scikit-learn"
    executes_code_on_load = False

    def library_version(self) -> str:
        return str(sklearn.__version__)

    def can_save(self, model: Any) -> bool:
        return isinstance(model, BaseEstimator)

    def save(self, model: Any) -> bytes:
        if not self.can_save(model):
            raise InvalidInput(
                f"model of type {type(model).__qualname__} is not a scikit-learn estimator",
                field="model",
            )
        try:
            return _compact_dumps(model) if _compact_matches() else bytes(sio.dumps(model))
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise InvalidInput(f"skops cannot save this model: {exc}", field="model") from exc

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),
        allow_pickle: bool = False,  # skops never unpickles; accepted for one interface
    ) -> Any:
        try:
            found = sio.get_untrusted_types(data=data)
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise IntegrityError(f"not a skops model payload: {exc}") from exc
        extra = set(trusted_types)
        refused = sorted(t for t in found if t not in extra and not is_trusted_type(t))
        if refused:
            raise IntegrityError(
                "skops model payload refused: it contains untrusted types "
                f"{', '.join(refused)}; trusted are classes from "
                f"{', '.join(sorted(TRUSTED_PACKAGES))}; pass trusted_types=[...] to load "
                "types you have reviewed"
            )
        try:
            return sio.loads(data, trusted=list(found))
        except UntrustedTypesFoundException as exc:
            # get_untrusted_types is a static scan; skops re-checks while loading.
            raise IntegrityError(f"skops model payload refused: {exc}") from exc
