r"""A small builder of ONNX graphs: named constants, one node at a time, the model with its
opsets and metadata. The serving graphs of :mod:`~regmtl.serving.linear` are written with it,
so that no converter package is needed (``onnx`` alone builds, ``onnxruntime`` runs).

Only standard operators are used (the default domain at :data:`OPSET`, or the opset a user
asks for from :data:`MIN_OPSET` on, and ``ai.onnx.ml``'s ``LabelEncoder`` for the task ids),
every one of which ONNX Runtime's CPU provider runs in float32 and float64. The two operators
whose signature changed within that range are written in the form of the graph's opset:
``Unsqueeze`` and ``ReduceSum`` take their axes as an attribute before opset 13 and as an
input from 13 on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GraphBuilder", "ML_DOMAIN", "ML_OPSET", "MIN_ML_OPSET", "MIN_OPSET", "OPSET",
           "ir_version", "require", "stamped", "target_opsets"]

#: the default domain's opset of the graphs when none is asked for (ONNX 1.12 and later)
OPSET = 17
#: the lowest default-domain opset a graph can be stamped with. ``Where`` (the log links'
#: mean, the NaN of a mixed model's other kind) exists from opset 9 on, every other operator
#: of the graphs before it (``Max`` and ``Min`` broadcast from 8 on); but ONNX Runtime 1.16
#: has no float64 kernel of ``ArgMax`` (the multinomial label) before opset 11, so 11 is the
#: floor: every graph kind runs in float32 and float64 from 11 on in ONNX Runtime 1.16 (with
#: ``ai.onnx.ml`` 3) and 1.32
MIN_OPSET = 11
#: the ``ai.onnx.ml`` domain (``LabelEncoder``)
ML_DOMAIN = "ai.onnx.ml"
#: the ``ai.onnx.ml`` opset (``LabelEncoder`` with its typed keys and values): ONNX Runtime
#: 1.17 and later run it (1.16 refuses every graph that stamps it, "Opset 4 is under
#: development"), the ``export`` extra's floor; ``target_opset={"ai.onnx.ml": 3}`` (or 2)
#: stamps the older opset that earlier runtimes know, the same ``LabelEncoder`` node
ML_OPSET = 4
#: the lowest ``ai.onnx.ml`` opset: ``LabelEncoder`` has its typed keys and values
#: (``keys_int64s``, ``keys_strings``, ``values_int64s``) from opset 2 on
MIN_ML_OPSET = 2
_DOMAIN_NAMES = {"": "", "ai.onnx": "", ML_DOMAIN: ML_DOMAIN}


def target_opsets(target_opset: int | dict[str, int] | None) -> dict[str, int]:
    """The opset of each domain a graph is stamped with, ``{"": n, "ai.onnx.ml": m}``, from
    a user's ``target_opset``: None (the defaults, :data:`OPSET` and :data:`ML_OPSET`), an
    int (the default domain's opset), or a dict ``{domain: version}`` (``""`` or
    ``"ai.onnx"``, and ``"ai.onnx.ml"``; a domain left out keeps its default). Refused with
    a ``ValueError`` naming the argument: an opset below the graphs' floor
    (:data:`MIN_OPSET`, :data:`MIN_ML_OPSET`) or above what the installed ``onnx`` knows."""
    if target_opset is None:
        return {"": OPSET, ML_DOMAIN: ML_OPSET}
    if isinstance(target_opset, dict):
        given = {}
        for key, value in target_opset.items():
            if key not in _DOMAIN_NAMES:
                raise ValueError(f"target_opset={target_opset!r}: unknown domain {key!r}; the "
                                 "graphs use '' (or 'ai.onnx', the default domain) and "
                                 f"{ML_DOMAIN!r}.")
            domain = _DOMAIN_NAMES[key]
            if domain in given:
                raise ValueError(f"target_opset={target_opset!r}: the default domain is given "
                                 "twice ('' and 'ai.onnx' name the same one); give one.")
            given[domain] = value
    else:
        given = {"": target_opset}
    onnx = require("onnx")
    ml_known = getattr(onnx.defs, "onnx_ml_opset_version", None)
    known = {"": onnx.defs.onnx_opset_version(),
             ML_DOMAIN: ml_known() if ml_known is not None else
             max(row[3] for row in onnx.helper.VERSION_TABLE)}
    floor = {"": MIN_OPSET, ML_DOMAIN: MIN_ML_OPSET}
    why = {"": "the multinomial label's ArgMax runs in float64 in ONNX Runtime from opset 11 "
               "on, the log links' Where from 9",
           ML_DOMAIN: "LabelEncoder has typed int64 and string keys from ai.onnx.ml opset 2 on"}
    out = {"": OPSET, ML_DOMAIN: ML_OPSET}
    for domain, value in given.items():
        label = "target_opset" if not isinstance(target_opset, dict) else \
            f"target_opset[{domain or 'ai.onnx'!r}]"
        name = "the default domain's" if domain == "" else f"the {domain} domain's"
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{label}={value!r}: give an int, {name} opset (from "
                             f"{floor[domain]} to {known[domain]}).")
        value = int(value)
        if value < floor[domain]:
            raise ValueError(f"{label}={value}: the lowest accepted is {floor[domain]} "
                             f"({why[domain]}); give {floor[domain]} to {known[domain]}.")
        if value > known[domain]:
            raise ValueError(f"{label}={value}: the installed onnx {onnx.__version__} knows "
                             f"{name} opsets up to {known[domain]}; give {floor[domain]} to "
                             f"{known[domain]}, or upgrade onnx.")
        out[domain] = value
    return out


def ir_version(opsets: dict[str, int]) -> int:
    """The ONNX IR version a graph of ``opsets`` is written in: 8 (which ONNX Runtime 1.17,
    the ``export`` extra's floor, reads) up to opset 18, else the first IR version of the
    default domain's opset (9 for opsets 19 and 20, 10 for 21 and 22, ...)."""
    helper = require("onnx").helper
    return max(8, helper.find_min_ir_version_for([helper.make_opsetid("", opsets[""])]))


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

    def __init__(self, dtype: Any, opsets: dict[str, int] | None = None):
        self.onnx = require("onnx")
        self.dtype = np.dtype(dtype)
        self.opsets = dict(target_opsets(None) if opsets is None else opsets)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._axes_made: dict[tuple[int, ...], str] = {}
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

    def unsqueeze(self, value: str, axes: list[int], stem: str | None = None) -> str:
        """``Unsqueeze`` of ``value`` at ``axes``: an input from opset 13 on, an attribute
        before."""
        if self.opsets[""] >= 13:
            return self.op("Unsqueeze", [value, self._axes(axes)], stem)
        return self.op("Unsqueeze", [value], stem, axes=list(axes))

    def _axes(self, axes: list[int]) -> str:
        """The int64 constant of ``axes``, one per distinct value in the graph."""
        key = tuple(int(a) for a in axes)
        if key not in self._axes_made:
            self._axes_made[key] = self.const(np.array(key, dtype=np.int64), "axes")
        return self._axes_made[key]

    def reduce_sum(self, value: str, axes: list[int], stem: str | None = None) -> str:
        """``ReduceSum`` of ``value`` over ``axes`` (dropped): an input from opset 13 on, an
        attribute before."""
        if self.opsets[""] >= 13:
            return self.op("ReduceSum", [value, self._axes(axes)], stem, keepdims=0)
        return self.op("ReduceSum", [value], stem, axes=list(axes), keepdims=0)

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
        return stamped(graph, self.opsets, doc, metadata)

    def element_type(self, kind: str) -> int:
        """The ONNX element type of ``"float"`` (the graph's dtype), ``"int64"``,
        ``"string"`` or ``"bool"``."""
        P = self.onnx.TensorProto
        if kind == "float":
            return P.DOUBLE if self.dtype == np.float64 else P.FLOAT
        return {"int64": P.INT64, "string": P.STRING, "bool": P.BOOL}[kind]


def stamped(graph: Any, opsets: dict[str, int], doc: str, metadata: dict[str, str]) -> Any:
    """The checked model of ``graph``: its ``opsets``, IR version (:func:`ir_version`),
    producer and ``metadata``."""
    onnx = require("onnx")
    helper = onnx.helper
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        producer_name="regmtl", doc_string=doc)
    from .._version import __version__

    model.producer_version = __version__
    model.ir_version = ir_version(opsets)
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model
