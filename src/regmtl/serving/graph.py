r"""A small builder of ONNX graphs: named constants, one node at a time, the model with its
opsets and metadata. The serving graphs of :mod:`~regmtl.serving.linear` are written with it,
so that no converter package is needed (``onnx`` alone builds, ``onnxruntime`` runs).

Only standard operators are used (the default domain at :data:`OPSET`, and ``ai.onnx.ml``'s
``LabelEncoder`` for the task ids), every one of which ONNX Runtime's CPU provider runs in
float32 and float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GraphBuilder", "ML_OPSET", "OPSET", "require"]

#: the default domain's opset of the graphs (ONNX 1.12 and later)
OPSET = 17
#: the ``ai.onnx.ml`` opset (``LabelEncoder`` with its typed keys and values): ONNX Runtime
#: 1.17 and later run it (1.16 refuses every graph that stamps it, "Opset 4 is under
#: development"), the ``export`` extra's floor
ML_OPSET = 4


def require(name: str) -> Any:
    """The module ``name`` of the ``export`` extra (``onnx``, ``onnxruntime``), or an
    ImportError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - the extra is part of the test install
        raise ImportError(f"exporting to ONNX needs the {name} package: pip install "
                          "'regmtl[export]'") from None


class GraphBuilder:
    """Nodes and constants of one graph in the making, float constants in ``dtype``."""

    def __init__(self, dtype: Any):
        self.onnx = require("onnx")
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def _name(self, stem: str) -> str:
        k, name = 0, stem
        while name in self._names:
            k += 1
            name = f"{stem}_{k}"
        self._names.add(name)
        return name

    def reserve(self, names: list[str]) -> None:
        """Names the graph's inputs take: no node or constant gets them."""
        self._names.update(names)

    def const(self, value: Any, stem: str = "c", *, exact: bool = False) -> str:
        """A constant: float arrays in the graph's dtype (kept as given with ``exact``),
        integers as int64, strings as ONNX strings; returns its name."""
        name = self._name(stem)
        arr = np.asarray(value)
        if arr.dtype.kind in "OUS":
            tensor = self.onnx.helper.make_tensor(
                name, self.onnx.TensorProto.STRING, arr.shape,
                [str(v).encode("utf-8") for v in arr.ravel().tolist()])
        else:
            if arr.dtype.kind == "f" and not exact:
                arr = arr.astype(self.dtype)
            elif arr.dtype.kind in "iub":
                arr = arr.astype(np.int64) if arr.dtype.kind != "b" else arr
            tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, *,
           domain: str = "", **attrs: Any) -> str:
        """One node of a single output; returns the output's name."""
        out = self._name(stem or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], domain=domain,
                                                     **attrs))
        return out

    def rename(self, value: str, name: str) -> str:
        """``value`` under the name ``name`` (an Identity node: a graph output's name)."""
        self._names.add(name)
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        return name

    def model(self, inputs: list[tuple[str, int, list]], outputs: list[tuple[str, int, list]],
              name: str, doc: str, metadata: dict[str, str]) -> Any:
        """The checked model of the graph: ``inputs`` / ``outputs`` as (name, ONNX element
        type, shape with ``"n"`` for the batch axis), ``metadata`` in its properties."""
        helper = self.onnx.helper
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                        helper.make_opsetid("ai.onnx.ml",
                                                                            ML_OPSET)],
                                  producer_name="regmtl", doc_string=doc)
        from .._version import __version__

        model.producer_version = __version__
        model.ir_version = 8  # (ONNX Runtime 1.17, the floor, reads it)
        helper.set_model_props(model, metadata)
        self.onnx.checker.check_model(model)
        return model

    def element_type(self, kind: str) -> int:
        """The ONNX element type of ``"float"`` (the graph's dtype), ``"int64"``,
        ``"string"`` or ``"bool"``."""
        P = self.onnx.TensorProto
        if kind == "float":
            return P.DOUBLE if self.dtype == np.float64 else P.FLOAT
        return {"int64": P.INT64, "string": P.STRING, "bool": P.BOOL}[kind]
