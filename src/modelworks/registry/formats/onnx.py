"""ONNX models, run with onnxruntime: loading builds an inference graph, never runs Python.

``save`` writes ``onnx.ModelProto.SerializeToString()``; ``load`` needs only onnxruntime and
returns an ``OnnxPredictor`` that feeds its input to the graph's first input. Models whose
tensors live in external files are refused: the bytes must hold the whole model.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from importlib import metadata
from typing import Any

import numpy as np

from ...errors import IntegrityError, InvalidInput
from ._imports import require

__all__ = ["OnnxFormat", "OnnxPredictor"]

_NAME = "onnx"
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OnnxPredictor:
    """An onnxruntime session: ``predict`` gives the first output, ``predict_proba`` the second."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input = session.get_inputs()[0]

    def run(self, x: Any) -> list[Any]:
        """All outputs of the graph for ``x`` (a DataFrame or array) fed to the first input."""
        arr = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
        dtype = _DTYPES.get(self.input.type)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return list(self.session.run(None, {self.input.name: arr}))

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self.run(x)[0])

    def predict_proba(self, x: Any) -> np.ndarray:
        outputs = self.run(x)
        if len(outputs) < 2:
            raise AttributeError("this ONNX model has a single output: no predict_proba")
        proba = outputs[1]
        if isinstance(proba, list) and proba and isinstance(proba[0], dict):  # a ZipMap
            return np.array([list(row.values()) for row in proba])
        return np.asarray(proba)


class OnnxFormat:
    """``onnx.ModelProto`` as ONNX bytes, loaded with onnxruntime on the CPU."""

    name = _NAME
    library = "onnxruntime"
    executes_code_on_load = False

    def library_version(self) -> str:
        try:
            return metadata.version(self.library)
        except metadata.PackageNotFoundError:
            return "not installed"  # saving needs only onnx; loading needs onnxruntime

    def can_save(self, model: Any) -> bool:
        onnx = sys.modules.get("onnx")  # an ONNX model cannot exist before its import
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: Any) -> bytes:
        if not self.can_save(model):
            raise InvalidInput(
                f"model of type {type(model).__qualname__} is not an onnx.ModelProto",
                field="model",
            )
        from onnx.external_data_helper import _get_all_tensors, uses_external_data

        if any(uses_external_data(t) for t in _get_all_tensors(model)):
            raise InvalidInput(
                "ONNX model keeps tensors in external files; load them into the model first "
                "(onnx.load(..., load_external_data=True))",
                field="model",
            )
        return bytes(model.SerializeToString())

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),  # a graph of ONNX operators, no Python types
        allow_pickle: bool = False,
    ) -> Any:
        onnxruntime = require("onnxruntime", format_name=_NAME, extra="onnx")
        try:
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind11 exception types
            raise IntegrityError(f"not an onnx model payload: {exc}") from exc
        return OnnxPredictor(session)
