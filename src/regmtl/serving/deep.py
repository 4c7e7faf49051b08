r"""The serving graph of a fitted deep model: its net traced by ``torch.onnx.export`` with a free
batch axis, inside the estimator's input preparation, task routing, links and label tables.

A model is read into a :class:`~regmtl.serving.deep_plan.DeepPlan`; :func:`build_deep_graph`
traces its net (:mod:`~regmtl.serving.deep_trace`: in torch, what ``predict`` does around the
net), then adds the ONNX nodes torch has no tensor for (the task ids and categorical
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
Modalities      one input per modality, named as the modality, each as above (images
                (n, C, H, W), a table (n, p) as given (the net standardizes it; a
                table with categorical columns: their codes first, by the vocabularies
                written beside the graph, ``PATH.NAME.table.json``, then the numbers),
                token ids (n, ``NAME_length``) made by the modality's tokenizer for texts,
                a bag of words dense (n, V)), and
                ``_missing`` (n, M) bool, True where a row lacks a modality (in the order of
                ``modalities_["names"]``; the row's values of that modality are ignored)
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

from typing import Any

import numpy as np

from .deep_plan import DeepPlan, core_inputs, core_outputs, vocab_type
from .deep_trace import trace_net
from .graph import GraphBuilder, require, stamped
from .linear import label_kind, label_table, task_dtype

__all__ = ["build_deep_graph"]

def build_deep_graph(plan: DeepPlan, dtype: Any, doc: str, metadata: dict[str, str],
                     opsets: dict[str, int] | None = None) -> Any:
    """The ONNX model of ``plan`` (see the module's text for its inputs and outputs), its net
    traced at the default domain's opset of ``opsets`` (the defaults when None)."""
    onnx = require("onnx")
    dt = np.dtype(dtype)
    g = GraphBuilder(dt, opsets)
    core = trace_net(plan, dt, g.opsets[""])
    taken = {v for node in core.graph.node for v in [*node.input, *node.output]}
    g.reserve(sorted(taken | {i.name for i in core.graph.initializer}))
    inputs: list[tuple[str, int, list]] = []
    core_in = {name: (kind, shape) for name, kind, shape in core_inputs(plan, dt)}
    if plan.source is None or plan.input_kind == "modalities":
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
    return stamped(graph, g.opsets, doc, metadata)


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
        block = "numeric" if cats else "X"
        g.nodes.append(onnx.helper.make_node(
            "Concat", [g.unsqueeze(c, [1]) for c in numeric], [block], axis=1))
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
