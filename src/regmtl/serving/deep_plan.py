r"""A fitted deep model read for serving: its :class:`DeepPlan` (the net, the estimator whose
input preparation applies, the tasks, their head kinds, classes and losses, the input kind and
the form served) and the signature of the traced net around it (:func:`core_inputs`,
:func:`core_outputs`). The graph: :mod:`~regmtl.serving.deep`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .linear import NotExportable, check_labels, check_names, task_dtype

__all__ = ["BINARY", "COUNT", "HEAD_CODES", "MULTICLASS", "VALUE", "DeepPlan",
           "MODAL_KINDS", "categorical_positions", "core_inputs", "core_outputs", "deep_plan",
           "is_deep", "modal_inputs", "raw_inputs", "vocab_type"]

#: each head kind's code in the graph (a task's kind gathered by its position)
VALUE, COUNT, BINARY, MULTICLASS = 0, 1, 2, 3
HEAD_CODES = {"regression": VALUE, "count": COUNT, "binary": BINARY, "multiclass": MULTICLASS}
#: the modality kinds a graph has an input for (each modality's element kind)
MODAL_KINDS = {"images": "float", "table": "float", "sparse": "float", "text": "int64",
               "tokens": "int64"}


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
    def modalities(self) -> dict | None:
        """The fit's ``modalities_`` (names, kinds, sizes, tokenizers): None but for a model
        fitted on a :class:`~regmtl.deep.Modalities`."""
        return getattr(self.source, "modalities_", None) if self.source is not None else None

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
    if plan.modalities is not None:
        _check_modalities(plan, named_columns)
    elif named_columns:
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
    """The input kind (``"modalities"`` for a fit on a :class:`~regmtl.deep.Modalities`),
    width, feature names and categorical vocabularies of an estimator."""
    if getattr(source, "modalities_", None) is not None:
        return "modalities", int(source.n_features_in_), None, None
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


def _check_modalities(plan: DeepPlan, named_columns: bool) -> None:
    """Refuse by name what a modal model's graph cannot serve: ``named_columns``, a modality
    of a kind without an input, a modality named as another of the graph's inputs or
    outputs."""
    spec = plan.modalities
    if named_columns:
        raise NotExportable("named_columns=True: the model was fitted on a Modalities, whose "
                            "graph has one input per modality already (named as the "
                            "modalities); leave named_columns=False.")
    for name in spec["names"]:
        kind = spec["kinds"][name]
        if kind not in MODAL_KINDS:
            raise NotExportable(f"modality {name!r} is of kind {kind!r}, which a graph input "
                                f"does not express (it takes {sorted(MODAL_KINDS)}); serve "
                                "the model with predict.")
    graph = {name for name, _, _ in core_outputs(plan)} | {"label"}  # (class_index's name)
    if plan.form == "rows":
        graph |= {"task", "task_index"}
    taken = sorted(set(spec["names"]) & graph)
    if taken:
        raise NotExportable(f"modality {taken[0]!r} has the name of another input or output "
                            "of the graph; rename the modality and refit to export.")


def categorical_positions(plan: DeepPlan) -> np.ndarray:
    if not plan.categories:
        return np.zeros(0, dtype=np.int64)
    names = plan.feature_names
    return np.array([names.index(c) for c in plan.categories], dtype=np.int64)


# ----------------------------------------------------------------------------- inputs
def core_inputs(plan: DeepPlan, dtype: np.dtype) -> list[tuple[str, str, list]]:
    """The traced module's inputs: (name, element kind, shape) with ``"n"`` the batch axis
    (``"length"`` the token axis)."""
    kind = plan.input_kind
    out: list[tuple[str, str, list]]
    if plan.source is None:  # (a plain net, or a head on one: inputs as the net reads them)
        out = raw_inputs(plan)
    elif kind == "modalities":
        out = modal_inputs(plan)
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


def modal_inputs(plan: DeepPlan) -> list[tuple[str, str, list]]:
    """A modal model's inputs: each modality by its name (images (n, C, H, W), tables and
    dense bags of words (n, columns) of floats, token ids (n, ``NAME_length``) int64), then
    the missing mask ``_missing`` (n, M) bool, its columns in the order of the modalities."""
    from ..deep.modalities import MISSING_KEY

    spec = plan.modalities
    out: list[tuple[str, str, list]] = []
    for name in spec["names"]:
        kind = spec["kinds"][name]
        shape = ["n", f"{name}_length"] if MODAL_KINDS[kind] == "int64" else \
            ["n", *spec["sizes"][name]]
        out.append((name, MODAL_KINDS[kind], shape))
    out.append((MISSING_KEY, "bool", ["n", len(spec["names"])]))
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
