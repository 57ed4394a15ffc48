"""scikit-learn models as skops bytes: loading never runs code from the payload.

skops keeps its own list of safe types; anything else in a payload is reported by
``get_untrusted_types``. Of those we trust only *classes* from scikit-learn, NumPy, SciPy and
the standard ``builtins`` / ``collections`` modules. Functions are never trusted wholesale:
a ``FunctionTransformer(func=builtins.eval)`` or ``numpy.save`` would run at predict time.
Anything else must be named by the caller in ``trusted_types`` after review.
"""

from __future__ import annotations

import importlib
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
            return bytes(sio.dumps(model))
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
