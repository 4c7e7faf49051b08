r"""A deep model's net traced for serving: :func:`trace_net` wraps the plan's net in a module
that does in torch what ``predict`` does around it (the standardization, each row through its
own task's head, the target units, the links, NaN for an unknown task) and traces it with
``torch.onnx.export`` (``dynamo=False``) at the graph's opset
(:data:`~regmtl.serving.graph.OPSET`, or the one a user asks for from :data:`DEEP_MIN_OPSET` to
the highest the installed torch writes, :func:`torch_max_opset`) with a free batch axis, on the
CPU, in evaluation mode, the model's own net left as it was. The graph around it:
:mod:`~regmtl.serving.deep`."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .deep_plan import (
    BINARY,
    COUNT,
    HEAD_CODES,
    MULTICLASS,
    VALUE,
    DeepPlan,
    categorical_positions,
    core_inputs,
    core_outputs,
    modal_inputs,
)
from .graph import MIN_OPSET, OPSET, require
from .linear import NotExportable

__all__ = ["DEEP_MIN_OPSET", "TORCH_MAX_OPSET", "torch_max_opset", "trace_net"]

#: the lowest opset a deep model's graph is traced at: the heads' ``einsum`` (every net but
#: ESMM's) has an ONNX form in ``torch.onnx.export`` from opset 12 on
DEEP_MIN_OPSET = 12

#: the highest opset ``torch.onnx.export``'s TorchScript exporter (``dynamo=False``) writes,
#: where torch does not say (torch 2.x: 20)
TORCH_MAX_OPSET = 20


def torch_max_opset() -> int:
    """The highest opset the installed torch's TorchScript exporter writes."""
    try:
        from torch.onnx import _constants
    except ImportError:  # pragma: no cover - a torch without the module
        return TORCH_MAX_OPSET
    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", TORCH_MAX_OPSET))

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
    cat_pos = categorical_positions(plan)
    num_pos = np.setdiff1d(np.arange(plan.n_features), cat_pos) if plan.input_kind == "table" \
        else np.zeros(0, dtype=np.int64)
    modal = [name for name, _, _ in modal_inputs(plan)] if plan.modalities else []

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
                [HEAD_CODES[h] for h in plan.heads] + [VALUE], dtype=torch.int64))
            self.register_buffer("K", torch.tensor([*plan.K.tolist(), 1], dtype=torch.int64))

        def _inputs(self, xs: tuple) -> Any:
            if plan.source is None or modal:
                xs = tuple(x.to(net_dtype) if x.is_floating_point() else x for x in xs)
                if modal:  # (the modalities by name, then the missing mask)
                    return dict(zip(modal, xs, strict=True))
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
        elif kind == "bool":
            out.append(torch.from_numpy(rng.integers(0, 2, dims).astype(bool)))
        else:
            t = torch.from_numpy(rng.uniform(0.0, 1.0, dims))
            out.append(t.to(torch.float64 if dtype == np.float64 else torch.float32))
    return tuple(out)


def trace_net(plan: DeepPlan, dtype: np.dtype, opset: int = OPSET) -> Any:
    """The traced module as an ONNX model (the default domain at ``opset``, batch axis
    free)."""
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
                                  dynamic_axes=dynamic, opset_version=opset,
                                  do_constant_folding=True)
            except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                if opset != OPSET and plan.input_kind != "custom":
                    raise NotExportable(f"target_opset={opset}: torch.onnx.export could not "
                                        f"trace the net at opset {opset}: "
                                        f"{type(exc).__name__}: {str(exc)[:300]}; give another "
                                        f"target_opset from {DEEP_MIN_OPSET} up (the default: "
                                        f"{OPSET}).") from exc
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
    r"""ONNX forms of the aten ops the nets use that the exporter lacks (once per process, for
    every opset from :data:`~regmtl.serving.graph.MIN_OPSET` on): ``logaddexp`` (the ESMM
    net's CTCVR logit) as :math:`\max(u, v) + \operatorname{softplus}(-|u - v|)`."""
    if _SYMBOLICS:
        return
    import torch

    def logaddexp(g: Any, u: Any, v: Any) -> Any:
        gap = g.op("Neg", g.op("Abs", g.op("Sub", u, v)))
        return g.op("Add", g.op("Max", u, v), g.op("Softplus", gap))

    torch.onnx.register_custom_op_symbolic("aten::logaddexp", logaddexp, MIN_OPSET)
    _SYMBOLICS.append("aten::logaddexp")


@contextmanager
def _evaluated(plan: DeepPlan) -> Iterator[Any]:
    """The plan's net as traced: in evaluation mode (each module's mode restored after), on
    the CPU (a copy of a net elsewhere), a bag of words read dense (:func:`_DenseBag`, on a
    shallow copy: the model's own net is never changed; a modality's the same way, in shallow
    copies of the net, its fused trunk and the trunk's encoders)."""
    net = plan.net
    if any(p.device.type != "cpu" for p in net.parameters()):
        net = copy.deepcopy(net).cpu()
    if plan.input_kind == "sparse":
        net = _swapped(net, "encoder", _DenseBag(net.encoder))
    elif plan.modalities:
        fused, encoders = net.encoder, net.encoder.encoders
        for name, kind in plan.modalities["kinds"].items():
            if kind == "sparse":
                encoders = _swapped(encoders, name, _DenseBag(encoders[name]))
        if encoders is not fused.encoders:
            net = _swapped(net, "encoder", _swapped(fused, "encoders", encoders))
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield net
    finally:
        for m, mode in modes:
            m.training = mode


def _swapped(module: Any, name: str, child: Any) -> Any:
    """A shallow copy of ``module`` with its submodule ``name`` replaced by ``child`` (the
    module itself left as it was)."""
    out = copy.copy(module)
    out._modules = dict(module._modules)
    out._modules[name] = child
    return out


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
