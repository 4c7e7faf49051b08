r"""The serving graph of a fitted deep model: its net traced by ``torch.onnx.export`` with a free
batch axis, inside the estimator's input preparation, task routing, links and label tables.

A model is read into a :class:`DeepPlan`; :func:`build_deep_graph` traces a copy of its net
(evaluation mode, CPU) wrapped in :class:`_Served`, which does in torch what ``predict`` does
around the net, then adds the ONNX nodes torch has no tensor for (the task ids and categorical
values through ``ai.onnx.ml.LabelEncoder``, the label tables). The inputs, by the kind of input
the model was fitted on:

==============  ===========================================================================
fitted on       graph inputs
==============  ===========================================================================
a table         ``X`` (n, p), the fit's column order, standardized in the graph with
                ``x_mean_`` and ``x_scale_``; or one input per column (``named_columns``, and
                always with categorical columns, whose values, strings or integer ids,
                become the fit's codes: a value outside the vocabulary the unseen code)
images          ``X`` (n, C, H, W) floats (8-bit pixels divided by 255 first, as the trunk
                reads them)
token ids       ``X`` (n, L) int64, padded with 0 (any L)
raw texts       the same token ids, made by the model's tokenizer (:mod:`regmtl.deep.tokenizer`):
                its vocabulary goes beside the graph as JSON (the serving guide has a
                reference tokenizer of a dozen lines)
a bag of words  ``X`` (n, V) counts or weights, dense
==============  ===========================================================================

and ``task`` (n,), int64 or strings, in the long form. The outputs are the linear graphs'
(:mod:`~regmtl.serving.linear`): ``prediction`` (values; the mean count
:math:`e^{\min(f, 50)}` of a count task), ``probabilities`` (each row's task's classes in the
order of its ``classes_``, padded with probability 0 to the most classes of any task) and
``label``; ``value``, ``probabilities`` and ``label`` side by side when tasks of values and of
classes mix (NaN, or the empty label, where a row's task has the other kind). A shared design
gives every task's outputs for every row (n x T, and n x T x K for probabilities). The ESMM
estimator gives ``probabilities`` (n, 3) (pCTR, pCVR, pCTCVR) and ``label`` (n, 2) (click,
purchase). A plain :class:`~regmtl.deep.MultiTaskNet` is exported as it is called: its input(s)
(``X``, or the names of its dict input) and one output per task, named for the task, in the
units the net returns (values, logits).

The net computes in its own precision (float32) in the graph as in ``predict``, whatever the
graph's float type; the values around it (standardization, target units, links) are computed in
float64 as ``predict`` does them, then given in the graph's type.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .graph import OPSET, GraphBuilder, require
from .linear import (
    NotExportable,
    check_labels,
    check_names,
    label_kind,
    label_table,
    task_dtype,
)

__all__ = ["DeepPlan", "build_deep_graph", "deep_plan", "is_deep", "raw_inputs", "vocab_type"]

#: each head kind's code in the graph (a task's kind gathered by its position)
VALUE, COUNT, BINARY, MULTICLASS = 0, 1, 2, 3
_CODES = {"regression": VALUE, "count": COUNT, "binary": BINARY, "multiclass": MULTICLASS}


def is_deep(model: Any) -> bool:
    """Whether ``model`` is one of :mod:`regmtl.deep`'s (without importing torch for others)."""
    return type(model).__module__.startswith("regmtl.deep")


@dataclass
class DeepPlan:
    """What a fitted deep model computes around its net.

    ``names`` are the net's task names in the order of ``tasks`` (the user's ids), ``heads``
    each task's head kind (``regression``, ``count``, ``binary``, ``multiclass``), ``K`` its
    outputs (classes of a multiclass task, else 1), ``source`` the estimator whose input
    preparation applies (None: the net reads its inputs as given)."""

    model: Any
    net: Any
    source: Any
    tasks: np.ndarray
    names: list[str]
    heads: list[str]
    K: np.ndarray
    classes: list[np.ndarray | None]
    losses: list[str]
    form: str
    input_kind: str
    n_features: int
    feature_names: list[str] | None = None
    categories: dict | None = None
    named: bool = False
    esmm: bool = False
    raw: bool = False
    raw_inputs: list[str] = field(default_factory=list)
    custom_inputs: list[tuple[str, str, list]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    union: None = None
    offset: bool = False

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def multinomial(self) -> bool:
        return False

    @property
    def has_values(self) -> bool:
        return any(h in ("regression", "count") for h in self.heads)

    @property
    def has_classes(self) -> bool:
        return any(h in ("binary", "multiclass") for h in self.heads)

    @property
    def width(self) -> int:
        """Probability columns: the most classes of any task."""
        return int(max([2 if h == "binary" else int(k)
                        for h, k in zip(self.heads, self.K, strict=True)
                        if h in ("binary", "multiclass")], default=0))

    @property
    def value_name(self) -> str:
        return "value" if self.has_classes else "prediction"


# ----------------------------------------------------------------------------- the plan
def deep_plan(model: Any, task_input: bool | None = None, named_columns: bool = False,
              X: Any = None) -> DeepPlan:
    """The :class:`DeepPlan` of a fitted deep estimator (``DeepMultiTaskRegressor``,
    ``DeepMultiTaskClassifier``, ``DeepMultiTaskModel``, ``DeepESMMClassifier``), a
    ``TransferredHead`` or a ``MultiTaskNet``; raises ``NotExportable`` naming what has no
    graph. ``X``: a batch of a plain net's input (what a custom trunk or encoder reads is
    known from it alone)."""
    from ..deep.esmm_estimator import DeepESMMClassifier
    from ..deep.estimators import DeepEstimatorBase
    from ..deep.nets.base import MultiTaskNet
    from ..deep.transfer import TransferredHead

    if isinstance(model, MultiTaskNet):
        plan = _net_plan(model, bool(task_input), X)
    elif isinstance(model, TransferredHead):
        plan = _head_plan(model, X)
    elif isinstance(model, DeepESMMClassifier):
        plan = _esmm_plan(model)
    elif isinstance(model, DeepEstimatorBase):
        plan = _estimator_plan(model, task_input)
    else:
        raise NotExportable(f"{type(model).__name__} is not exported: export_onnx takes the "
                            "deep estimators, TransferredHead and MultiTaskNet of regmtl.deep.")
    if named_columns:
        _check_names(plan)
        plan.named = True
    elif plan.categories:
        _check_names(plan)  # (categorical columns come by name: a matrix holds one type)
        plan.named = True
    return plan


def _fitted_net(model: Any) -> Any:
    net = getattr(model, "net_", None)
    if net is None:
        raise NotExportable(f"{type(model).__name__} is not fitted: call fit first.")
    return net


def _source_kind(source: Any) -> tuple[str, int, list[str] | None, dict | None]:
    """The input kind, width, feature names and categorical vocabularies of an estimator."""
    kind = getattr(source, "input_kind_", "table")
    names = getattr(source, "feature_names_in_", None)
    names = None if names is None else [str(n) for n in names]
    cats = getattr(source, "categories_", None) or None
    if cats:
        cats = {str(k): list(v) for k, v in cats.items()}
        for col, vocab in cats.items():
            vocab_type(col, vocab)
    return kind, int(source.n_features_in_), names, cats


def vocab_type(column: str, vocab: list) -> str:
    """``"string"`` or ``"int64"``: the type of a categorical column's input (its vocabulary
    of one of them; the missing value of a string column is served as ``""``)."""
    values = [v for v in vocab if v is not None]
    if all(isinstance(v, str) for v in values):
        if None in vocab and "" in values:
            raise NotExportable(f"categorical column {column!r} holds both the empty string "
                                "and missing values, which a string input cannot tell apart.")
        return "string"
    if None not in vocab and all(isinstance(v, (int, np.integer)) and not isinstance(
            v, (bool, np.bool_)) for v in values):
        return "int64"
    kinds = sorted({type(v).__name__ for v in vocab})
    raise NotExportable(f"categorical column {column!r} holds values of type "
                        f"{', '.join(kinds)}: a graph input holds strings or int64 ids; "
                        "give the column one of those types and refit.")


def _estimator_plan(est: Any, task_input: bool | None) -> DeepPlan:
    net = _fitted_net(est)
    T = int(est.n_tasks_)
    single = est.input_form_ == "single"
    form = "single" if single and not task_input else (
        "rows" if task_input or (task_input is None and est.input_form_ != "shared")
        else "shared")
    if form == "single" and T != 1:
        form = "rows"
    tasks = np.asarray(est.tasks_, dtype=object)
    specs = list(net.tasks)
    heads = [s.kind for s in specs]
    classes = list(getattr(est, "_classes", None) or [None] * T)
    classes = [None if c is None else np.asarray(c) for c in classes]
    losses = [_loss_name(est, t, h) for t, h in enumerate(heads)]
    if any(s.n_outputs != 1 for s, h in zip(specs, heads, strict=True) if h != "multiclass"):
        raise NotExportable("a task of several regression outputs has no served form.")
    if form == "rows":
        task_dtype(tasks)
    kind, width, names, cats = _source_kind(est)
    plan = DeepPlan(model=est, net=net, source=est, tasks=tasks, names=[s.name for s in specs],
                    heads=heads, K=np.array([s.n_outputs for s in specs], dtype=np.int64),
                    classes=classes, losses=losses, form=form, input_kind=kind,
                    n_features=width, feature_names=names, categories=cats)
    check_labels(plan)
    return plan


def _loss_name(est: Any, t: int, head: str) -> str:
    losses = getattr(est, "_losses", None)
    tl = None if losses is None else losses[t]
    if tl is None:
        return "logistic" if head == "binary" else "multinomial" if head == "multiclass" \
            else ("poisson" if head == "count" else "squared")
    return str(tl.name)


def _esmm_plan(est: Any) -> DeepPlan:
    net = _fitted_net(est)
    kind, width, names, cats = _source_kind(est)
    return DeepPlan(model=est, net=net, source=est, tasks=np.array(["click", "purchase"],
                                                                    dtype=object),
                    names=[s.name for s in net.tasks], heads=["binary", "binary"],
                    K=np.ones(2, dtype=np.int64), classes=[None, None],
                    losses=["logistic", "logistic"], form="single", input_kind=kind,
                    n_features=width, feature_names=names, categories=cats, esmm=True)


def _head_plan(head: Any, X: Any) -> DeepPlan:
    net = _fitted_net(head)
    source = getattr(head, "_source", None)
    spec = net.tasks[net.task_names.index(head.task_)]
    if spec.kind == "regression" and spec.n_outputs != 1:
        raise NotExportable("a task of several regression outputs has no served form.")
    classes = getattr(head, "classes_", None)
    if source is not None:
        kind, width, names, cats = _source_kind(source)
    else:
        kind, width, names, cats = _net_kind(net)
    plan = DeepPlan(model=head, net=net, source=source, tasks=np.array([head.task_],
                                                                       dtype=object),
                    names=[head.task_], heads=[spec.kind],
                    K=np.array([spec.n_outputs], dtype=np.int64),
                    classes=[None if classes is None else np.asarray(classes)],
                    losses=[_loss_name(head, 0, spec.kind) if getattr(head, "loss_", None)
                            is None else str(head.loss_ if isinstance(head.loss_, str)
                                             else head.loss_[0])],
                    form="single", input_kind=kind, n_features=width, feature_names=names,
                    categories=cats)
    if source is None:
        _set_raw_inputs(plan, X)
    check_labels(plan)
    return plan


def _net_kind(net: Any) -> tuple[str, int, None, None]:
    """The input a plain net reads: a table of ``n_features``, or what its encoder reads."""
    from ..deep.features import FeatureColumns
    from ..deep.trunks import ConvTrunk, TextTrunk

    enc = net.encoder
    if enc is None and not getattr(net, "custom_trunk", False):
        return "table", int(net.n_features), None, None
    if enc is None:
        return "custom", 0, None, None
    if isinstance(enc, ConvTrunk):
        return "images", int(enc.in_channels), None, None
    if isinstance(enc, TextTrunk):
        return "tokens", int(enc.vocab_size), None, None
    if isinstance(enc, FeatureColumns):
        return "columns", 0, None, None
    return "custom", 0, None, None


def _set_raw_inputs(plan: DeepPlan, X: Any) -> None:
    """The inputs of a net read as it reads them; a custom encoder's or trunk's from the
    batch ``X`` (its names, element types and shapes, the batch axis free)."""
    if plan.input_kind == "custom":
        if X is None:
            raise NotExportable("the net reads its input through a custom encoder or trunk, "
                                "whose input only a batch describes: give X (a batch of it).")
        xs = X if isinstance(X, dict) else {"X": X}
        for name, value in xs.items():
            arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if arr.dtype.kind not in "iuf" or arr.ndim < 1:
                raise NotExportable(f"X[{name!r}] holds {arr.dtype} of shape {arr.shape}: a "
                                    "graph input holds numbers with a batch axis.")
            plan.custom_inputs.append((str(name), "int64" if arr.dtype.kind in "iu" else
                                       "float", ["n", *arr.shape[1:]]))
    plan.raw_inputs = [name for name, _, _ in raw_inputs(plan)]


def _net_plan(net: Any, rows: bool, X: Any) -> DeepPlan:
    kind, width, _, _ = _net_kind(net)
    specs = list(net.tasks)
    plan = DeepPlan(model=net, net=net, source=None,
                    tasks=np.asarray(net.task_names, dtype=object), names=list(net.task_names),
                    heads=[s.kind for s in specs],
                    K=np.array([s.n_outputs for s in specs], dtype=np.int64),
                    classes=[None] * len(specs), losses=[s.kind for s in specs],
                    form="rows" if rows else "shared", input_kind=kind, n_features=width,
                    raw=True)
    _set_raw_inputs(plan, X)
    return plan


def _check_names(plan: DeepPlan) -> None:
    if plan.input_kind != "table" or plan.feature_names is None:
        raise NotExportable("named_columns=True: the model was not fitted on a DataFrame "
                            "(no feature names).")
    inner = {"X", "task", "task_index", "numeric", *(f"cat{k}" for k in
                                                     range(len(plan.categories or ())))}
    check_names(plan.feature_names, inner)


# ----------------------------------------------------------------------------- torch side
def _served(plan: DeepPlan, net: Any) -> Any:
    """The module traced: ``net`` (the plan's, on the CPU in evaluation mode) with what
    ``predict`` does around it."""
    import torch
    from torch import nn

    from ..deep.tasks import LOG_MEAN_MAX

    net_dtype = next(net.parameters()).dtype
    T, W = plan.n_tasks, plan.width
    src = plan.source
    mean = getattr(src, "x_mean_", None)
    scale = getattr(src, "x_scale_", None)
    cat_pos = _categorical_positions(plan)
    num_pos = np.setdiff1d(np.arange(plan.n_features), cat_pos) if plan.input_kind == "table" \
        else np.zeros(0, dtype=np.int64)

    class _Served(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            if mean is not None and plan.input_kind == "table":
                self.register_buffer("mean", torch.from_numpy(np.asarray(mean, float)[num_pos]))
                self.register_buffer("scale",
                                     torch.from_numpy(np.asarray(scale, float)[num_pos]))
            else:
                self.mean = None
            self.register_buffer("head", torch.tensor(
                [_CODES[h] for h in plan.heads] + [VALUE], dtype=torch.int64))
            self.register_buffer("K", torch.tensor([*plan.K.tolist(), 1], dtype=torch.int64))

        def _inputs(self, xs: tuple) -> Any:
            if plan.source is None:
                xs = tuple(x.to(net_dtype) if x.is_floating_point() else x for x in xs)
                return xs[0] if plan.raw_inputs == ["X"] else dict(
                    zip(plan.raw_inputs, xs, strict=True))
            if plan.input_kind in ("tokens", "text"):
                return xs[0]
            if plan.input_kind != "table":
                return xs[0].to(net_dtype)
            x = None
            if len(num_pos):
                x = xs[0].to(torch.float64)
                if self.mean is not None:
                    x = (x - self.mean) / self.scale
                x, xs = x.to(net_dtype), xs[1:]
            if not len(cat_pos):
                return x
            out = {f"cat{k}": c for k, c in enumerate(xs)}
            if x is not None:
                out["numeric"] = x
            return out

        def forward(self, *args: Any) -> Any:
            if plan.form == "rows":
                idx, xs = args[-1], args[:-1]
            else:
                idx, xs = None, args
            x = self._inputs(xs)
            if plan.raw and idx is None:  # (outputs in float64, then the graph's type)
                out = self.net(x)
                return tuple(out[n].to(torch.float64) for n in plan.names)
            if plan.raw:
                known = (idx >= 0) & (idx < T)
                R = self.net(x, rows=torch.where(known, idx, torch.zeros_like(idx)))
                return torch.where(known.unsqueeze(-1), R.to(torch.float64),
                                   torch.tensor(float("nan"), dtype=torch.float64))
            if plan.esmm:
                a, b = self.net.logits(x)
                ctr = 1.0 / (1.0 + torch.exp(-a[:, 0].to(torch.float64)))
                cvr = 1.0 / (1.0 + torch.exp(-b[:, 0].to(torch.float64)))
                probs = torch.stack([ctr, cvr, ctr * cvr], dim=1)
                label = torch.stack([ctr > 0.5, ctr * cvr > 0.5], dim=1).to(torch.int64)
                return probs, label
            if idx is not None:
                known = (idx >= 0) & (idx < T)
                safe = torch.where(known, idx, torch.zeros_like(idx))
                R = self.net(x, rows=safe).to(torch.float64)         # (n, width)
                head, K = self.head[safe], self.K[safe]                # (n,)
            elif plan.form == "shared":
                out = self.net(x)
                wide = max(int(k) for k in plan.K)
                R = torch.stack([nn.functional.pad(out[n], (0, wide - out[n].shape[1]))
                                 for n in plan.names], dim=1).to(torch.float64)  # (n, T, w)
                head, K, known = self.head[:T], self.K[:T], None
            else:
                R = self.net(x, tasks=plan.names)[plan.names[0]].to(torch.float64)
                head, K, known = self.head[:1], self.K[:1], None
            return _outputs(plan, R, head, K, known, W, LOG_MEAN_MAX)

    return _Served()


def _outputs(plan: DeepPlan, R: Any, head: Any, K: Any, known: Any, W: int, cap: float
             ) -> tuple:
    """``(values, probabilities, class index)`` (those the plan has) from the net's float64
    outputs ``R`` (..., width), each entry's head kind and classes (``head``, ``K``; broadcast
    over the leading axes) and, row by row, whether its task is known."""
    import torch

    nan = torch.tensor(float("nan"), dtype=torch.float64)
    r0 = R[..., 0]
    out = []
    if plan.has_values:
        val = r0
        if "count" in plan.heads:
            val = torch.where(head == COUNT, torch.exp(torch.clamp(r0, max=cap)), r0)
        if plan.has_classes:
            val = torch.where(head >= BINARY, nan, val)
        if known is not None:
            val = torch.where(known, val, nan)
        out.append(val)
    if plan.has_classes:
        p1 = 1.0 / (1.0 + torch.exp(-r0))
        zeros = [torch.zeros_like(r0)] * (W - 2)
        P = torch.stack([1.0 - p1, p1, *zeros], dim=-1)                   # binary
        best = (r0 > 0).to(torch.int64)
        if "multiclass" in plan.heads:
            k_multi = max(int(k) for k, h in zip(plan.K, plan.heads, strict=True)
                          if h == "multiclass")
            logits = R[..., :k_multi]
            slot = torch.arange(k_multi, dtype=torch.int64)
            logits = torch.where(slot < K.unsqueeze(-1), logits,
                                 torch.tensor(float("-inf"), dtype=torch.float64))
            Pm = torch.softmax(logits, dim=-1)
            if W > k_multi:
                Pm = torch.nn.functional.pad(Pm, (0, W - k_multi))
            multi = (head == MULTICLASS)
            P = torch.where(multi.unsqueeze(-1), Pm, P)
            best = torch.where(multi, torch.argmax(logits, dim=-1), best)
        if plan.has_values:
            P = torch.where((head < BINARY).unsqueeze(-1), nan, P)
        if known is not None:
            P = torch.where(known.unsqueeze(-1), P, nan)
            best = torch.where(known, best, torch.zeros_like(best))
        best = torch.where(head >= BINARY, best, torch.zeros_like(best))
        out += [P, best]
    return tuple(out)


def _categorical_positions(plan: DeepPlan) -> np.ndarray:
    if not plan.categories:
        return np.zeros(0, dtype=np.int64)
    names = plan.feature_names
    return np.array([names.index(c) for c in plan.categories], dtype=np.int64)


def _dense_bag_class() -> type:
    from torch import nn

    class DenseBag(nn.Module):
        """A ``TextTrunk`` reading dense bags of words (n, V): ``x @ E`` (sum), divided by
        the row's total (mean; 0 for an empty row), then the trunk's dropout and output
        layer, as the trunk does for sparse rows."""

        def __init__(self, trunk: Any):
            super().__init__()
            self.trunk = trunk
            self.out_features = trunk.out_features

        def forward(self, x: Any) -> Any:
            import torch

            t = self.trunk
            weight = t.embedding.weight
            x = x.to(weight.dtype)
            h = x @ weight[: x.shape[1]]
            if t.mode == "mean":
                total = x.sum(dim=1, keepdim=True)
                h = torch.where(total != 0, h / torch.where(total != 0, total, 1.0), 0.0)
            h = t.dropout(h)
            return h if t.out is None else t.out(h)

    return DenseBag


def _DenseBag(trunk: Any) -> Any:
    from ..deep.trunks import TextTrunk

    if not isinstance(trunk, TextTrunk) or trunk.conv is not None:
        raise NotExportable("a bag of words is served through a TextTrunk without conv.")
    if trunk.mode not in ("sum", "mean"):
        raise NotExportable(f"a bag of words pooled by {trunk.mode!r} has no dense form; "
                            "serve the model on token ids, or pool by 'sum' or 'mean'.")
    return _dense_bag_class()(trunk)


# ----------------------------------------------------------------------------- inputs
def core_inputs(plan: DeepPlan, dtype: np.dtype) -> list[tuple[str, str, list]]:
    """The traced module's inputs: (name, element kind, shape) with ``"n"`` the batch axis
    (``"length"`` the token axis)."""
    kind = plan.input_kind
    out: list[tuple[str, str, list]]
    if plan.source is None:  # (a plain net, or a head on one: inputs as the net reads them)
        out = raw_inputs(plan)
    elif kind == "table":
        n_cat = len(plan.categories or ())
        out = []
        if plan.n_features - n_cat:
            out.append(("numeric" if n_cat else "X", "float", ["n", plan.n_features - n_cat]))
        out += [(f"cat{k}", "int64", ["n"]) for k in range(n_cat)]
    elif kind == "images":
        out = [("X", "float", ["n", *plan.source.input_size_])]
    elif kind in ("tokens", "text"):
        out = [("X", "int64", ["n", "length"])]
    else:
        out = [("X", "float", ["n", plan.n_features])]
    if plan.form == "rows":
        out.append(("task_index", "int64", ["n"]))
    return out


def raw_inputs(plan: DeepPlan) -> list[tuple[str, str, list]]:
    """A plain net's inputs: ``X`` (a table, images, token ids) or its encoder's columns."""
    from ..deep.features import Categorical, IdSequence

    net = plan.net
    if plan.input_kind == "custom":
        return list(plan.custom_inputs)
    if plan.input_kind == "table":
        return [("X", "float", ["n", plan.n_features])]
    if plan.input_kind == "images":
        enc = net.encoder
        shape = ["n", enc.in_channels, "height", "width"]
        return [("X", "float", shape)]
    if plan.input_kind == "tokens":
        return [("X", "int64", ["n", "length"])]
    cols = []
    for col in net.encoder.columns:
        if isinstance(col, Categorical):
            cols.append((col.name, "int64", ["n"]))
        elif isinstance(col, IdSequence):
            cols.append((col.name, "int64", ["n", f"{col.name}_length"]))
        else:
            cols.append((col.name, "float", ["n", col.width]))
    return cols


def core_outputs(plan: DeepPlan) -> list[tuple[str, str, list]]:
    """The traced module's outputs (the class index becomes ``label`` in the graph)."""
    if plan.raw and plan.form == "rows":
        return [("output", "float", ["n", int(plan.K.max())])]
    if plan.raw:
        return [(n, "float", ["n", int(k)]) for n, k in zip(plan.names, plan.K, strict=True)]
    if plan.esmm:
        return [("probabilities", "float", ["n", 3]), ("label", "int64", ["n", 2])]
    lead = ["n", plan.n_tasks] if plan.form == "shared" else ["n"]
    out = []
    if plan.has_values:
        out.append((plan.value_name, "float", lead))
    if plan.has_classes:
        out += [("probabilities", "float", [*lead, plan.width]),
                ("class_index", "int64", lead)]
    return out


def _example(plan: DeepPlan, dtype: np.dtype, inputs: list) -> tuple:
    """Inputs to trace with: every task present (so that every head block is traced)."""
    import torch

    n = max(plan.n_tasks, 2) if plan.form == "rows" else 2
    rng = np.random.default_rng(0)
    out = []
    for name, kind, shape in inputs:
        dims = [n if d == "n" else 3 if isinstance(d, str) else int(d) for d in shape]
        if name == "task_index":
            out.append(torch.from_numpy(np.arange(n, dtype=np.int64) % plan.n_tasks))
        elif kind == "int64":
            out.append(torch.from_numpy(rng.integers(0, 2, dims).astype(np.int64)))
        else:
            t = torch.from_numpy(rng.uniform(0.0, 1.0, dims))
            out.append(t.to(torch.float64 if dtype == np.float64 else torch.float32))
    return tuple(out)


def _trace(plan: DeepPlan, dtype: np.dtype) -> Any:
    """The traced module as an ONNX model (opset :data:`OPSET`, batch axis free)."""
    import torch

    onnx = require("onnx")
    inputs, outputs = core_inputs(plan, dtype), core_outputs(plan)
    dynamic = {name: {k: d for k, d in enumerate(shape) if isinstance(d, str)}
               for name, _, shape in inputs + outputs}
    buf = io.BytesIO()
    _register_symbolics()
    with _evaluated(plan) as net, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's TracerWarnings on the nets' shape checks)
        with torch.no_grad():
            if any(s.kind == "regression" for s in net.tasks):
                net.stacked_scales(torch.device("cpu"))  # (built before: constants, not T ops)
            try:
                torch.onnx.export(_served(plan, net), _example(plan, dtype, inputs), buf,
                                  dynamo=False, input_names=[n for n, _, _ in inputs],
                                  output_names=[n for n, _, _ in outputs],
                                  dynamic_axes=dynamic, opset_version=OPSET,
                                  do_constant_folding=True)
            except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                if plan.input_kind != "custom":
                    raise
                raise NotExportable(f"torch.onnx.export could not trace the net's custom "
                                    f"encoder or trunk: {type(exc).__name__}: "
                                    f"{str(exc)[:300]}") from exc
    model = onnx.load_from_string(buf.getvalue())
    if dtype == np.float32:
        _outputs_as(model, onnx.TensorProto.FLOAT)
    return model


_SYMBOLICS: list[str] = []


def _register_symbolics() -> None:
    r"""ONNX forms of the aten ops the nets use that the exporter lacks (once per process):
    ``logaddexp`` (the ESMM net's CTCVR logit) as
    :math:`\max(u, v) + \log(1 + e^{-|u - v|})`."""
    if _SYMBOLICS:
        return
    import torch

    def logaddexp(g: Any, u: Any, v: Any) -> Any:
        gap = g.op("Neg", g.op("Abs", g.op("Sub", u, v)))
        one = g.op("Constant", value_t=torch.tensor(1.0))
        one = g.op("CastLike", one, u)
        return g.op("Add", g.op("Max", u, v), g.op("Log", g.op("Add", one, g.op("Exp", gap))))

    torch.onnx.register_custom_op_symbolic("aten::logaddexp", logaddexp, OPSET)
    _SYMBOLICS.append("aten::logaddexp")


@contextmanager
def _evaluated(plan: DeepPlan) -> Iterator[Any]:
    """The plan's net as traced: in evaluation mode (each module's mode restored after), on
    the CPU (a copy of a net elsewhere), a bag of words read dense (:func:`_DenseBag`, on a
    shallow copy: the model's own net is never changed)."""
    net = plan.net
    if any(p.device.type != "cpu" for p in net.parameters()):
        net = copy.deepcopy(net).cpu()
    if plan.input_kind == "sparse":
        bag = _DenseBag(net.encoder)
        net = copy.copy(net)
        net._modules = dict(net._modules)
        net._modules["encoder"] = bag
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield net
    finally:
        for m, mode in modes:
            m.training = mode


def _outputs_as(model: Any, elem: int) -> None:
    """Cast the float64 outputs of the traced graph to ``elem`` (float32 graphs)."""
    onnx = require("onnx")
    graph = model.graph
    for out in graph.output:
        if out.type.tensor_type.elem_type != onnx.TensorProto.DOUBLE:
            continue
        inner = out.name + "_float64"
        for node in graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        graph.node.append(onnx.helper.make_node("Cast", [inner], [out.name], to=elem))
        out.type.tensor_type.elem_type = elem


# ----------------------------------------------------------------------------- the graph
def build_deep_graph(plan: DeepPlan, dtype: Any, doc: str, metadata: dict[str, str]) -> Any:
    """The ONNX model of ``plan`` (see the module's text for its inputs and outputs)."""
    onnx = require("onnx")
    dt = np.dtype(dtype)
    core = _trace(plan, dt)
    g = GraphBuilder(dt)
    taken = {v for node in core.graph.node for v in [*node.input, *node.output]}
    g.reserve(sorted(taken | {i.name for i in core.graph.initializer}))
    inputs: list[tuple[str, int, list]] = []
    core_in = {name: (kind, shape) for name, kind, shape in core_inputs(plan, dt)}
    if plan.source is None:
        inputs = [(n, g.element_type(k), s) for n, (k, s) in core_in.items()
                  if n != "task_index"]
    elif plan.input_kind == "table" and plan.named:
        inputs += _named_columns(g, plan, core_in)
    else:
        name = "X"
        kind, shape = core_in[name]
        inputs.append((name, g.element_type(kind), shape))
    if plan.form == "rows":
        kind = task_dtype(plan.tasks)
        inputs.append(("task", g.element_type(kind), ["n"]))
        keys = [int(t) for t in plan.tasks] if kind == "int64" else [str(t) for t in plan.tasks]
        enc = {"keys_int64s" if kind == "int64" else "keys_strings": keys}
        g.nodes.append(onnx.helper.make_node(
            "LabelEncoder", ["task"], ["task_index"], domain="ai.onnx.ml",
            values_int64s=list(range(plan.n_tasks)), default_int64=plan.n_tasks, **enc))
    front = list(g.nodes)
    g.nodes.clear()
    outputs = []
    for name, kind, shape in core_outputs(plan):
        if name == "class_index":
            outputs.append(_labels(g, plan, name))
        else:
            outputs.append((name, g.element_type(kind), shape))
    graph = onnx.helper.make_graph(
        [*front, *core.graph.node, *g.nodes], "regmtl_deep",
        [onnx.helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [onnx.helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [*core.graph.initializer, *g.initializers])
    model = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid("ai.onnx.ml", 4)],
        producer_name="regmtl", doc_string=doc)
    from .._version import __version__

    model.producer_version = __version__
    model.ir_version = 8
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def _named_columns(g: GraphBuilder, plan: DeepPlan, core_in: dict) -> list:
    """One input per column, in the fit's order: the numeric ones joined into the core's
    float block, the categorical ones coded by their vocabularies (unknown: the unseen
    code)."""
    onnx = require("onnx")
    cats = plan.categories or {}
    numeric = [c for c in plan.feature_names if c not in cats]
    inputs = []
    for col in plan.feature_names:
        if col in cats:
            kind = vocab_type(col, cats[col])
            inputs.append((col, g.element_type(kind), ["n"]))
        else:
            inputs.append((col, g.element_type("float"), ["n"]))
    if numeric:
        ax = g.const(np.array([1]), "ax")
        block = "numeric" if cats else "X"
        g.nodes.append(onnx.helper.make_node(
            "Concat", [g.op("Unsqueeze", [c, ax]) for c in numeric], [block], axis=1))
    for k, (col, vocab) in enumerate(cats.items()):
        kind = vocab_type(col, vocab)
        keys = [("" if v is None else str(v)) if kind == "string" else int(v) for v in vocab]
        enc = {"keys_int64s" if kind == "int64" else "keys_strings": keys}
        g.nodes.append(onnx.helper.make_node(
            "LabelEncoder", [col], [f"cat{k}"], domain="ai.onnx.ml",
            values_int64s=list(range(len(vocab))), default_int64=len(vocab), **enc))
    return inputs


def _labels(g: GraphBuilder, plan: DeepPlan, best: str) -> tuple[str, int, list]:
    """``label``: each entry's class index read in its task's row of the label table (the
    empty value for tasks of values and unknown tasks)."""
    W = plan.width
    table, _ = label_table(plan, W)
    if plan.form == "rows":
        base = g.op("Mul", ["task_index", g.const(np.array(W), "width")])
        lead = ["n"]
    elif plan.form == "shared":
        base = g.const((W * np.arange(plan.n_tasks)).reshape(1, -1), "task_base")
        lead = ["n", plan.n_tasks]
    else:
        base = g.const(np.zeros(1, dtype=np.int64), "zero_index")
        lead = ["n"]
    label = g.op("Gather", [g.const(table.ravel(), "labels"), g.op("Add", [base, best])],
                 axis=0)
    return g.rename(label, "label"), g.element_type(label_kind(plan)), lead
