r"""The serving graph of a fitted linear model: its coefficients, task routing, links and label
tables as one ONNX graph.

A model is read into a :class:`LinearPlan` (one coefficient column per task, or per class of a
multinomial task), then written as a graph in one of three forms:

- ``rows`` (the long form): inputs ``X`` (n x p) and ``task`` (n,) of the fitted task ids
  (int64 or strings). ``ai.onnx.ml.LabelEncoder`` maps each id to its task's position, and a
  ``Gather`` of that task's coefficients scores the row: :math:`f_r = x_r \cdot w_{t(r)} +
  b_{t(r)}`, ``O(n p)`` (never the n x T matrix of every task). An id the model was not fitted
  on maps to a row of NaN coefficients: its outputs are NaN (and its label the table's empty
  value), never another task's.
- ``shared``: input ``X`` alone, every task's output for every row (the n x T matrix, as
  :meth:`predict` gives for a design shared by the tasks).
- ``single``: input ``X`` alone, the one task's outputs.

With ``named_columns`` the features come as one input each (n,), named as in the fit, and the
graph puts them in the fit's order itself (a feature store's named features, no column order
to get wrong).

Each task's output is its loss's: the value (squared, Huber, quantile), the mean
``exp(f)`` of the log links (Poisson, Gamma; with an optional ``offset`` input added to ``f``),
the probabilities of the task's own classes (logistic: ``sigmoid``; multinomial: the softmax
over the task's ``K_t`` classes, padded with probability 0, in the long form one column per
label of ``union_classes_``) and the label. A model with one loss per task has an output per
kind (``value`` for the tasks with values, ``probabilities`` and ``label`` for the tasks of two
labels; NaN where a row's task has another kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..datafits.links import EXP_MAX
from .graph import GraphBuilder

__all__ = ["LinearPlan", "NotExportable", "build_graph", "check_labels", "check_names",
           "check_task_ids", "label_kind", "label_table", "plan_of", "sample_size", "task_dtype",
           "task_positions"]



class NotExportable(ValueError):
    """A model (or a part of it) that has no exact ONNX graph, named with the reason."""


@dataclass
class LinearPlan:
    """What a fitted linear model computes, ready to be written as a graph.

    ``W`` (p, C) and ``b`` (C,) hold a column per task, or ``K_t`` columns side by side for a
    task of ``K_t`` classes (``first`` and ``K`` per task); ``links`` each task's inverse
    link (``identity``, ``exp``, ``binary`` or ``multinomial``), ``exp_floor`` the lower
    clip of its ``exp`` (Gamma: -700), ``classes`` its labels (None for a task of values)."""

    W: np.ndarray
    b: np.ndarray
    tasks: np.ndarray
    links: list[str]
    losses: list[str]
    classes: list[np.ndarray | None]
    first: np.ndarray
    K: np.ndarray
    form: str
    exp_floor: np.ndarray
    union: np.ndarray | None = None
    feature_names: list[str] | None = None
    offset: bool = False
    named: bool = False
    kinds: list[str] = field(default_factory=list)
    #: each task's loss takes an offset (a click task of a mixed model does not: the offset
    #: input is read as 0 on its rows, as ``predict`` takes none there)
    offset_tasks: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def multinomial(self) -> bool:
        return "multinomial" in self.links


def _task_losses(model: Any, n_tasks: int) -> list[Any]:
    """Each task's loss; a loss that declares no exported link (``Datafit.link``) is
    refused."""
    from ..problem import make_datafit

    loss = getattr(model, "loss_", None) or getattr(model, "loss", "squared")
    datafit = make_datafit(loss)
    parts = datafit.losses if datafit.kind == "mixed" else [datafit] * n_tasks
    return [_linked(make_datafit(part)) for part in parts]


def _linked(loss: Any) -> Any:
    """``loss`` where it declares its inverse link (``Datafit.link``), else refused."""
    if getattr(loss, "link", None) not in ("identity", "exp", "binary", "multinomial"):
        raise NotExportable(
            f"loss {loss!r} has no ONNX form: it declares no inverse link (Datafit.link: "
            "'identity', 'exp', 'binary' or 'multinomial'); a custom loss's prediction is "
            "Python code.")
    return loss


def task_dtype(tasks: np.ndarray) -> str:
    """``"int64"`` or ``"string"``: the ``task`` input's type (task ids of one kind)."""
    values = list(tasks.tolist())
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, str) for v in values):
        return "string"
    kinds = sorted({type(v).__name__ for v in values})
    raise NotExportable(f"the task ids are of several types ({', '.join(kinds)}): an ONNX "
                        "task input holds int64 or strings; refit with ids of one type.")


def plan_of(model: Any, task_input: bool | None = None, offset: bool = False,
            named_columns: bool = False) -> LinearPlan:
    """The :class:`LinearPlan` of a fitted ``MultiTaskRegressor`` / ``MultiTaskClassifier``
    (or their CV forms, through ``best_estimator_``) or a ``TransferredTask``.
    ``task_input``: serve rows with their task ids (the default for models fitted in the
    long form or on per-task designs); False: every task's output (a shared design) or the
    one task's. ``named_columns``: one input per feature, named as in the fit. Raises
    ``NotExportable`` naming what has no graph."""
    from ..estimators import MultiTaskLinear
    from ..transfer import TransferredTask

    est = getattr(model, "best_estimator_", model)
    if not isinstance(est, (MultiTaskLinear, TransferredTask)):
        raise NotExportable(
            f"{type(model).__name__} is not exported: export_onnx takes the linear models "
            "(MultiTaskRegressor, MultiTaskClassifier, their CV forms, TransferredTask) and "
            "the deep ones of regmtl.deep (regmtl.serving.deep).")
    if not hasattr(est, "coef_"):
        raise NotExportable(f"{type(model).__name__} is not fitted: call fit first.")
    names = getattr(est, "feature_names_in_", None)
    names = None if names is None else [str(n) for n in names]
    if isinstance(est, TransferredTask):
        plan = _transferred_plan(est, names, offset)
    else:
        plan = _estimator_plan(est, names, task_input, offset)
    if named_columns:
        check_names(plan.feature_names, {"X", "task", "offset"})
        plan.named = True
    return plan


def check_names(names: list[str] | None, reserved: set[str]) -> None:
    """Feature names that can be the graph's inputs: known, unique, none of ``reserved`` (the
    graph's other inputs and inner names)."""
    if names is None:
        raise NotExportable("named_columns=True: the model has no feature names (fit it on "
                            "a DataFrame).")
    if len(set(names)) != len(names):
        raise NotExportable("named_columns=True: the feature names repeat; an input name is "
                            "unique.")
    taken = sorted(set(names) & reserved)
    if taken:
        raise NotExportable(f"a feature is named {taken[0]!r}, the name of another input of "
                            "the graph; rename the column.")


def sample_size(n_check: Any) -> int:
    """``n_check`` as the number of rows to draw (an int >= 1), or a clear error."""
    if isinstance(n_check, bool) or not isinstance(n_check, (int, np.integer)) or n_check < 1:
        raise ValueError(f"n_check={n_check!r}: give an int >= 1, the rows drawn to check the "
                         "graph on.")
    return int(n_check)


def check_task_ids(plan: Any, task: Any, n_rows: int) -> np.ndarray:
    """The task ids of ``n_rows`` rows checked for a graph served row by row: given, one per
    row, each a fitted task (refused by name otherwise); as an object array."""
    if task is None:
        raise ValueError("task: the graph serves rows with their task ids; give the task of "
                         "every row of X (or let the rows be drawn: X=None).")
    task = np.asarray(task, dtype=object).ravel()
    if len(task) != n_rows:
        raise ValueError(f"task: {len(task)} ids for {n_rows} rows of X.")
    task_positions(plan, task)
    return task


def task_positions(plan: Any, task: Any) -> np.ndarray:
    """Each row's task position in ``plan.tasks`` (the ids must be fitted ones)."""
    lookup = {v: k for k, v in enumerate(plan.tasks.tolist())}
    try:
        return np.array([lookup[v] for v in np.asarray(task, dtype=object).tolist()],
                        dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"task: {exc.args[0]!r} is not a task the model was fitted on.") \
            from None


def _estimator_plan(est: Any, names: list[str] | None, task_input: bool | None,
                    offset: bool) -> LinearPlan:
    """The plan of a fitted MultiTaskRegressor / MultiTaskClassifier."""
    from ..estimators import MultiTaskClassifier

    T = int(est.n_tasks_)
    single = est.input_form_ == "single"
    form = "single" if single else ("rows" if task_input or (
        task_input is None and est.input_form_ != "shared") else "shared")
    if single and task_input:
        form = "rows"
    tasks = np.asarray(est.tasks_, dtype=object)
    parts = _task_losses(est, T)
    W, b = est.coef_matrix_, np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    classes: list[np.ndarray | None] = [None] * T
    if isinstance(est, MultiTaskClassifier):  # (each task's labels; one task: classes_)
        given = [est.classes_] if est.input_form_ == "single" else est.classes_
        classes = [np.asarray(c) for c in given]
    elif getattr(est, "classes_", None) is not None:  # one loss per task, some of two labels
        classes = [None if c is None else np.asarray(c) for c in est.classes_]
    links = [part.link for part in parts]
    losses = [part.name for part in parts]
    K = np.array([len(c) if link == "multinomial" else 1
                  for c, link in zip(classes, links, strict=True)], dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(K)[:-1])).astype(np.int64)
    if W.shape[1] != int(K.sum()):
        raise NotExportable(f"coef_ holds {W.shape[1]} columns for {int(K.sum())} task "
                            "scores: the model's fitted attributes do not agree.")
    if offset and not any(link == "exp" for link in links):
        raise NotExportable("offset=True: the model has no log-link task (Poisson, Gamma) "
                            "whose mean takes an offset.")
    if form == "shared" and "multinomial" in links:
        raise NotExportable("a multinomial model on a shared design is exported with its "
                            "task ids (task_input=True): each task has its own classes.")
    union = None
    if "multinomial" in links and form == "rows":
        union = np.asarray(est.union_classes_, dtype=object)
    if form == "rows":
        task_dtype(tasks)
    plan = LinearPlan(W=W, b=b, tasks=tasks, links=links, losses=losses, classes=classes,
                      first=first, K=K, form=form,
                      exp_floor=np.array([part.link_floor for part in parts]),
                      union=union, feature_names=names, offset=offset,
                      offset_tasks=np.array([part.takes_offset() for part in parts]))
    check_labels(plan)
    return plan


def _transferred_plan(est: Any, names: list[str] | None, offset: bool) -> LinearPlan:
    """A ``TransferredTask``: one task, its loss's link, its classes."""
    from ..problem import make_datafit

    part = _linked(make_datafit(est.loss_))
    loss, link = part.name, part.link
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    b = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    classes = getattr(est, "classes_", None)
    K = coef.shape[0] if link == "multinomial" else 1
    if offset and link != "exp":
        raise NotExportable("offset=True: the model has no log-link task (Poisson, Gamma) "
                            "whose mean takes an offset.")
    plan = LinearPlan(W=coef.T.copy(), b=b, tasks=np.array([0], dtype=object), links=[link],
                      losses=[loss], classes=[None if classes is None else np.asarray(classes)],
                      first=np.zeros(1, dtype=np.int64), K=np.array([K], dtype=np.int64),
                      form="single",
                      exp_floor=np.array([part.link_floor]),
                      feature_names=names, offset=offset)
    check_labels(plan)
    return plan


def check_labels(plan: LinearPlan) -> None:
    """The labels of the label tables: of one type over the model (int64 or strings)."""
    labels = [v for c in plan.classes if c is not None for v in c.tolist()]
    if not labels:
        return
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        plan.kinds.append("int64")
    elif all(isinstance(v, str) for v in labels):
        plan.kinds.append("string")
    elif all(isinstance(v, (bool, np.bool_)) for v in labels):
        plan.kinds.append("bool")
    elif all(isinstance(v, (float, np.floating)) for v in labels):
        plan.kinds.append("float")
    else:
        kinds = sorted({type(v).__name__ for v in labels})
        raise NotExportable(f"the class labels are of several types ({', '.join(kinds)}): "
                            "an ONNX label output holds int64 or strings; refit with labels "
                            "of one type.")


def label_kind(plan: LinearPlan) -> str | None:
    """The label output's element type: ``"int64"``, ``"string"``, ``"bool"``, ``"float"``
    (the graph's float type) or None."""
    return plan.kinds[0] if plan.kinds else None


# ----------------------------------------------------------------------------- the graph
def build_graph(plan: LinearPlan, dtype: Any, doc: str, metadata: dict[str, str],
                opsets: dict[str, int] | None = None) -> Any:
    """The ONNX model of ``plan`` with float inputs and outputs of ``dtype`` (float32 or
    float64), stamped with ``opsets`` (:func:`~regmtl.serving.graph.target_opsets`; the
    defaults when None); see the module's text for its inputs and outputs."""
    g = GraphBuilder(dtype, opsets)
    p, T = plan.n_features, plan.n_tasks
    if plan.named:  # one input per column, by name, put in the fit's order inside the graph
        g.reserve(plan.feature_names)
        inputs = [(name, g.element_type("float"), ["n"]) for name in plan.feature_names]
        g.rename(g.op("Concat", [g.unsqueeze(name, [1]) for name in plan.feature_names],
                      axis=1), "X")
    else:
        inputs = [("X", g.element_type("float"), ["n", p])]
    if plan.form == "rows":
        kind = task_dtype(plan.tasks)
        inputs.append(("task", g.element_type(kind), ["n"]))
        keys = [int(t) for t in plan.tasks] if kind == "int64" else [str(t) for t in plan.tasks]
        enc = {"keys_int64s" if kind == "int64" else "keys_strings": keys}
        idx = g.op("LabelEncoder", ["task"], "task_index", domain="ai.onnx.ml",
                   values_int64s=list(range(T)), default_int64=T, **enc)
    else:
        idx = None
    if plan.offset:
        inputs.append(("offset", g.element_type("float"), ["n"] if plan.form != "shared"
                       else ["n", T]))
    if plan.multinomial:
        outputs = _multinomial(g, plan, idx)
    elif plan.form == "shared":
        outputs = _shared(g, plan)
    else:
        outputs = _one_score(g, plan, idx)
    return g.model(inputs, outputs, "regmtl_linear", doc, metadata)


def _padded(values: np.ndarray, pad: Any) -> np.ndarray:
    """``values`` with one more row of ``pad`` (the row of an unknown task)."""
    extra = np.full((1, *values.shape[1:]), pad, dtype=values.dtype)
    return np.concatenate([values, extra])


def offset_mask(plan: LinearPlan) -> np.ndarray:
    """Whether each task's loss takes the offset (all, where the plan does not say)."""
    if plan.offset_tasks is None:
        return np.ones(plan.n_tasks, dtype=bool)
    return np.asarray(plan.offset_tasks, dtype=bool)


def _offset_of_rows(g: GraphBuilder, plan: LinearPlan, idx: str | None) -> str:
    """The offset input, 0 on the rows of tasks whose loss takes none."""
    takes = offset_mask(plan)
    if idx is None or takes.all():
        return "offset"
    mask = g.op("Gather", [g.const(_padded(takes, False), "takes_offset"), idx], axis=0)
    return g.op("Where", [mask, "offset", g.const(np.array(0.0), "no_offset")], "offset_used")


def _row_scores(g: GraphBuilder, plan: LinearPlan, idx: str | None) -> str:
    """``f_r = x_r . w_t(r) + b_t(r)`` (+ offset) of one-score tasks (n,)."""
    W = plan.W.T  # (T, p)
    if idx is None:  # one task
        w = g.const(W[0].reshape(-1, 1), "coef")
        f = g.op("MatMul", ["X", w])
        f = g.op("Reshape", [f, g.const(np.array([-1]), "flat")])
        f = g.op("Add", [f, g.const(plan.b[:1], "intercept")], "scores")
    else:
        Wt = g.const(_padded(W, np.nan), "coef")
        rows = g.op("Gather", [Wt, idx], "row_coef", axis=0)
        f = g.reduce_sum(g.op("Mul", ["X", rows]), [1])
        f = g.op("Add", [f, g.op("Gather", [g.const(_padded(plan.b, np.nan), "intercept"),
                                            idx], axis=0)], "scores")
    if plan.offset:
        f = g.op("Add", [f, _offset_of_rows(g, plan, idx)], "scores_offset")
    return f


def _mean(g: GraphBuilder, plan: LinearPlan, f: str, per: str | None, shape_T: bool) -> str:
    """The inverse link of each task: ``f`` itself, or ``exp(clip(f))`` on the log links
    (``per``: the rows' task index; ``shape_T``: f is n x T, every task a column)."""
    exp = np.array([link == "exp" for link in plan.links])
    if not exp.any():
        return f
    floor = plan.exp_floor
    if shape_T:
        lo = g.const(np.where(exp, floor, -np.inf).reshape(1, -1), "exp_floor")
        mask = g.const(exp.reshape(1, -1), "is_exp")
    elif per is None:
        lo = g.const(np.where(exp, floor, -np.inf)[:1], "exp_floor")
        mask = g.const(exp[:1], "is_exp")
    else:
        lo = g.op("Gather", [g.const(_padded(np.where(exp, floor, -np.inf), -np.inf),
                                     "exp_floor"), per], axis=0)
        mask = g.op("Gather", [g.const(_padded(exp, False), "is_exp"), per], axis=0)
    clipped = g.op("Min", [g.op("Max", [f, lo]), g.const(np.array(EXP_MAX), "exp_max")])
    return g.op("Where", [mask, g.op("Exp", [clipped]), f], "mean")


def label_table(plan: LinearPlan, width: int) -> tuple[np.ndarray, Any]:
    """Each task's labels in ``width`` slots (T + 1, width), the empty value elsewhere."""
    kind = label_kind(plan)
    empty = {"string": "", "int64": np.iinfo(np.int64).min, "bool": False,
             "float": np.nan}[kind]
    dtype = {"string": object, "int64": np.int64, "bool": bool, "float": np.float64}[kind]
    table = np.full((plan.n_tasks + 1, width), empty, dtype=dtype)
    for t, c in enumerate(plan.classes):
        if c is not None:
            table[t, :len(c)] = c.tolist()
    return table, empty


def _one_score(g: GraphBuilder, plan: LinearPlan, idx: str | None):
    """Outputs of one-score tasks served row by row (or the one task)."""
    f = _row_scores(g, plan, idx)
    flo = g.element_type("float")
    outputs = []
    binary = np.array([link == "binary" for link in plan.links])
    values = ~binary
    if values.any():
        mean = _mean(g, plan, f, idx, False)
        if binary.any():  # NaN on the rows of the tasks of two labels
            mask = g.op("Gather", [g.const(_padded(binary, True), "is_binary"), idx], axis=0)
            mean = g.op("Where", [mask, g.const(np.array(np.nan), "nan"), mean])
        name = "value" if binary.any() else "prediction"
        outputs.append((g.rename(mean, name), flo, ["n"]))
    if binary.any():
        p1 = g.op("Sigmoid", [f])
        p0 = g.op("Sigmoid", [g.op("Neg", [f])])
        probs = g.op("Concat", [g.unsqueeze(p0, [1]), g.unsqueeze(p1, [1])], axis=1)
        if values.any():  # NaN on the rows of tasks of values
            mask = g.op("Gather", [g.const(_padded(values, True), "is_value"), idx], axis=0)
            mask = g.unsqueeze(mask, [1])
            probs = g.op("Where", [mask, g.const(np.array(np.nan), "nan"), probs])
        outputs.append((g.rename(probs, "probabilities"), flo, ["n", 2]))
        table, _ = label_table(plan, 2)
        pos = g.op("Cast", [g.op("Greater", [f, g.const(np.array(0.0), "zero")])],
                   to=g.element_type("int64"))
        base = g.const(np.zeros(1, dtype=np.int64), "zero_index") if idx is None else \
            g.op("Mul", [idx, g.const(np.array(2), "two")])
        pick = g.op("Add", [base, pos])
        label = g.op("Gather", [g.const(table.ravel() if idx is not None else table[:1].ravel(),
                                        "labels"), pick], axis=0)
        outputs.append((g.rename(label, "label"), g.element_type(label_kind(plan)), ["n"]))
    return outputs


def _shared(g: GraphBuilder, plan: LinearPlan):
    """Outputs of every one-score task for every row (n x T)."""
    T = plan.n_tasks
    flo = g.element_type("float")
    F = g.op("Add", [g.op("MatMul", ["X", g.const(plan.W, "coef")]),
                     g.const(plan.b.reshape(1, -1), "intercept")], "scores")
    if plan.offset:
        takes = offset_mask(plan)
        used = "offset" if takes.all() else g.op(
            "Mul", ["offset", g.const(takes.astype(np.float64).reshape(1, -1), "takes_offset")],
            "offset_used")
        F = g.op("Add", [F, used], "scores_offset")
    binary = np.array([link == "binary" for link in plan.links])
    outputs = []
    if (~binary).any():
        mean = _mean(g, plan, F, None, True)
        if binary.any():
            mean = g.op("Where", [g.const(binary.reshape(1, -1), "is_binary"),
                                  g.const(np.array(np.nan), "nan"), mean])
        outputs.append((g.rename(mean, "value" if binary.any() else "prediction"), flo,
                        ["n", T]))
    if binary.any():
        p1 = g.unsqueeze(g.op("Sigmoid", [F]), [2])
        p0 = g.unsqueeze(g.op("Sigmoid", [g.op("Neg", [F])]), [2])
        probs = g.op("Concat", [p0, p1], axis=2)
        if (~binary).any():
            probs = g.op("Where", [g.const((~binary).reshape(1, -1, 1), "is_value"),
                                   g.const(np.array(np.nan), "nan"), probs])
        outputs.append((g.rename(probs, "probabilities"), flo, ["n", T, 2]))
        table, _ = label_table(plan, 2)
        pos = g.op("Cast", [g.op("Greater", [F, g.const(np.array(0.0), "zero")])],
                   to=g.element_type("int64"))
        pick = g.op("Add", [g.const((2 * np.arange(T)).reshape(1, -1), "task_base"), pos])
        label = g.op("Gather", [g.const(table.ravel(), "labels"), pick], axis=0)
        outputs.append((g.rename(label, "label"), g.element_type(label_kind(plan)), ["n", T]))
    return outputs


def _multinomial(g: GraphBuilder, plan: LinearPlan, idx: str | None):
    """Softmax over each row's task's classes: the scores of ``Kmax`` slots (unused slots
    ``-inf``), their probabilities, the long form's union columns, the label."""
    T, p = plan.n_tasks, plan.n_features
    Kmax = int(plan.K.max())
    flo = g.element_type("float")
    W3 = np.zeros((T, Kmax, p))
    B = np.full((T, Kmax), -np.inf)
    for t in range(T):
        a, k = int(plan.first[t]), int(plan.K[t])
        W3[t, :k] = plan.W[:, a:a + k].T
        B[t, :k] = plan.b[a:a + k]
    if idx is None:  # the one task
        F = g.op("Add", [g.op("MatMul", ["X", g.const(W3[0].T, "coef")]),
                         g.const(B[:1], "intercept")], "scores")
    else:
        rows = g.op("Gather", [g.const(_padded(W3, np.nan), "coef"), idx], axis=0)  # (n,K,p)
        Xe = g.unsqueeze("X", [1])
        F = g.reduce_sum(g.op("Mul", [Xe, rows]), [2])
        F = g.op("Add", [F, g.op("Gather", [g.const(_padded(B, np.nan), "intercept"), idx],
                                 axis=0)], "scores")
    P = g.op("Softmax", [F], "slot_probabilities", axis=1)
    outputs = []
    if plan.form == "rows":  # one column per label of union_classes_
        union = list(plan.union.tolist())
        S = np.zeros((T + 1, Kmax, len(union)))
        for t, c in enumerate(plan.classes):
            for k, lab in enumerate(c.tolist()):
                S[t, k, union.index(lab)] = 1.0
        S[T] = np.nan
        spread = g.op("Gather", [g.const(S, "union_map"), idx], axis=0)  # (n, K, U)
        Pe = g.unsqueeze(P, [2])
        probs = g.reduce_sum(g.op("Mul", [Pe, spread]), [1])
        outputs.append((g.rename(probs, "probabilities"), flo, ["n", len(union)]))
    else:
        outputs.append((g.rename(P, "probabilities"), flo, ["n", Kmax]))
    table, _ = label_table(plan, Kmax)
    best = g.op("ArgMax", [P], axis=1, keepdims=0)
    base = g.const(np.zeros(1, dtype=np.int64), "zero_index") if idx is None else \
        g.op("Mul", [idx, g.const(np.array(Kmax), "width")])
    label = g.op("Gather", [g.const(table.ravel() if idx is not None else table[0],
                                    "labels"), g.op("Add", [base, best])], axis=0)
    outputs.append((g.rename(label, "label"), g.element_type(label_kind(plan)), ["n"]))
    return outputs
