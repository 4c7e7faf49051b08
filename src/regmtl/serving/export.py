r"""``export_onnx`` and ``check_onnx``: a fitted linear model as an ONNX graph, verified by ONNX
Runtime against the model's own ``predict`` / ``predict_proba`` before anything is written.

Verification runs the graph on sample rows (given, or drawn on every fitted task about the
model's stored feature means and scales, each row's deviation scaled so that its linear part
is within 8 of its value at the mean, which keeps ``exp`` and ``sigmoid`` in float32's range)
and compares each output with the model's:
the largest difference, relative to the output's largest magnitude (at least 1), must be at
most ``1e-6`` in float64 and ``1e-4`` in float32; labels must be equal wherever the model's
class probabilities are not tied to within that tolerance. A graph that fails is never
written (:class:`ExportMismatch` names the output and the difference).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import deep_check
from .card import deep_card, model_card, read_card
from .deep import build_deep_graph
from .deep_plan import deep_plan, is_deep, modal_inputs
from .deep_trace import DEEP_MIN_OPSET, torch_max_opset
from .graph import require, target_opsets
from .linear import (
    LinearPlan,
    NotExportable,
    build_graph,
    check_task_ids,
    label_kind,
    offset_mask,
    plan_of,
    sample_size,
    task_dtype,
    task_positions,
)

__all__ = ["ExportMismatch", "NotExportable", "TOLERANCE", "check_onnx", "export_onnx"]

#: the verified tolerance of each float type (relative to the output's largest magnitude)
TOLERANCE = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}
#: the verified tolerance of a deep model's graph, whatever its float type: its net computes in
#: float32 in the graph as in ``predict``, and two float32 kernels agree to about 1e-6
DEEP_TOLERANCE = 1e-4
#: a graph whose weights exceed this many bytes is written with its weights beside it
#: (``PATH.data``, ONNX's external data: a protobuf file holds at most 2 GiB)
EXTERNAL_BYTES = 1 << 30
#: rows of the sample drawn when none is given
SAMPLE_ROWS = 512
#: each drawn row's linear part is scaled to at most this (beside its task's intercept)
SAMPLE_REACH = 8.0


class ExportMismatch(ValueError):
    """The graph's outputs differ from the model's beyond the tolerance."""


def _dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in TOLERANCE:
        raise ValueError(f"dtype={dtype!r}: give 'float32' or 'float64'.")
    return dt


# ----------------------------------------------------------------------------- sample rows
def _sample(plan: LinearPlan, n: int, random_state: Any, model: Any = None
            ) -> tuple[np.ndarray, Any]:
    """``(X, task)``: rows over every fitted task (as many as ``n`` allows) about the
    model's stored feature means and scales (``feature_mean_``, ``feature_scale_``, kept by
    a fit on standardized features; else 0 and 1), normal deviations scaled so that
    ``|(x - mean) . w_t|`` (every class and task for the shared form) is at most
    :data:`SAMPLE_REACH`."""
    rng = np.random.default_rng(random_state)
    T, p = plan.n_tasks, plan.n_features
    est = getattr(model, "best_estimator_", model)
    center = np.asarray(getattr(est, "feature_mean_", np.zeros(p)), dtype=np.float64)
    spread = np.asarray(getattr(est, "feature_scale_", np.ones(p)), dtype=np.float64)
    if center.shape != (p,) or spread.shape != (p,) or not np.all(np.isfinite(center)) or \
            not np.all(np.isfinite(spread)):
        center, spread = np.zeros(p), np.ones(p)
    X = rng.standard_normal((n, p)) * spread
    if plan.form == "rows":
        pos = np.arange(n) % T if T <= n else np.sort(rng.choice(T, n, replace=False))
        task = plan.tasks[pos]
        reach = np.zeros(n)
        for k in range(int(plan.K.max())):
            cols = plan.first[pos] + np.minimum(k, plan.K[pos] - 1)
            reach = np.maximum(reach, np.abs(np.einsum("np,pn->n", X, plan.W[:, cols])))
    else:
        task = None
        reach = np.abs(X @ plan.W).max(axis=1) if plan.W.shape[1] else np.zeros(n)
    X *= np.minimum(1.0, SAMPLE_REACH / np.maximum(reach, 1e-300))[:, None]
    return X + center, task


def _task_array(plan: LinearPlan, task: Any) -> np.ndarray:
    """The task ids as the graph's input (int64, or strings as an object array)."""
    values = np.asarray(task, dtype=object)
    if task_dtype(plan.tasks) == "int64":
        return values.astype(np.int64)
    return np.array([str(v) for v in values.tolist()], dtype=object)


def _check_rows(model: Any, plan: LinearPlan, X: Any, task: Any, offset: Any, n_check: int,
                random_state: Any) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """``(X, task, offset)`` the graph is checked on: the rows given (checked: finite
    features in the fit's columns, one fitted task id per row, an offset of the graph's
    shape) or drawn (:func:`_sample`; offsets drawn in [-1, 1])."""
    if X is None:
        Xs, ts = _sample(plan, sample_size(n_check), random_state, model)
    else:
        Xs, ts = _as_numbers(model, plan, X), task
    if plan.form == "rows":
        ts = check_task_ids(plan, ts, len(Xs))
    shape = (Xs.shape[0],) if plan.form != "shared" else (Xs.shape[0], plan.n_tasks)
    if not plan.offset:
        if offset is not None:
            raise ValueError("offset: the graph has no offset input (export it with "
                             "offset=True).")
        return Xs, ts, None
    if offset is None:
        off = np.random.default_rng(random_state).uniform(-1.0, 1.0, shape)
    else:
        off = np.array(offset, dtype=np.float64)
        if off.shape != shape or not np.all(np.isfinite(off)):
            raise ValueError(f"offset: finite numbers of shape {shape}, got shape {off.shape}"
                             f"{'' if off.shape != shape else ' with NaN or inf'}.")
    # (a task whose loss takes no offset, a click task beside counts: the graph reads its
    # rows' offset as 0, and so does the reference)
    takes = offset_mask(plan)
    if plan.form == "shared":
        off = off * takes[None, :]
    elif plan.form == "rows":
        off = off * takes[task_positions(plan, ts)]
    return Xs, ts, off


# ----------------------------------------------------------------------------- references
def _frame(model: Any, X: np.ndarray) -> Any:
    """``X`` as the model saw its input: a DataFrame with its feature names, if it had them."""
    names = getattr(getattr(model, "best_estimator_", model), "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _references(model: Any, plan: LinearPlan, X: np.ndarray, task: Any,
                offset: np.ndarray | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each graph output's reference from the model's own methods, with the mask of the rows
    (entries) it is compared on."""
    Xf = _frame(model, X)
    kw = {} if plan.form != "rows" else {"task": task}
    off = {} if offset is None else {"offset": offset}
    n = X.shape[0]
    links = plan.links
    binary = np.array([link == "binary" for link in links])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if plan.multinomial:
        out["probabilities"] = (np.asarray(model.predict_proba(Xf, **kw), dtype=np.float64),
                                np.ones(n, dtype=bool))
        out["label"] = (np.asarray(model.predict(Xf, **kw)), np.ones(n, dtype=bool))
        return out
    if plan.form == "shared":
        if (~binary).any():
            ref = np.asarray(model.predict(Xf, **off), dtype=object)
            ref = np.where(binary[None, :], np.nan, ref).astype(np.float64)
            out["value" if binary.any() else "prediction"] = (ref, np.ones(ref.shape, bool))
        if binary.any():
            probs = model.predict_proba(Xf)
            probs = probs if isinstance(probs, list) else [probs]
            P = np.stack([np.full((n, 2), np.nan) if q is None else np.asarray(q, float)
                          for q in probs], axis=1)
            out["probabilities"] = (P, np.broadcast_to(binary[None, :], (n, len(links))))
            labels = np.asarray(model.predict(Xf), dtype=object)
            out["label"] = (labels, np.broadcast_to(binary[None, :], labels.shape))
        return out
    positions = np.zeros(n, dtype=np.int64) if plan.form == "single" else \
        task_positions(plan, task)
    on_binary = binary[positions]
    if (~binary).any():
        rows = ~on_binary
        ref = np.full(n, np.nan)
        if rows.any():
            sub = _take(Xf, rows)
            sub_kw = {} if plan.form != "rows" else {"task": np.asarray(task)[rows]}
            sub_off = {} if offset is None else {"offset": np.asarray(offset)[rows]}
            ref[rows] = np.asarray(model.predict(sub, **sub_kw, **sub_off), dtype=np.float64)
        out["value" if binary.any() else "prediction"] = (ref, rows)
    if binary.any():
        rows = on_binary
        P = np.full((n, 2), np.nan)
        labels = np.empty(n, dtype=object)
        if rows.any():
            sub = _take(Xf, rows)
            sub_kw = {} if plan.form != "rows" else {"task": np.asarray(task)[rows]}
            P[rows] = np.asarray(model.predict_proba(sub, **sub_kw), dtype=np.float64)
            labels[rows] = np.asarray(model.predict(sub, **sub_kw), dtype=object)
        out["probabilities"] = (P, rows)
        out["label"] = (labels, rows)
    return out


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[np.flatnonzero(rows)] if hasattr(X, "iloc") else X[rows]


# ----------------------------------------------------------------------------- comparison
def _compare(outputs: dict[str, np.ndarray], refs: dict[str, tuple[np.ndarray, np.ndarray]],
             rtol: float) -> dict[str, float]:
    """The largest relative difference of every output (labels: the fraction that differ
    where the probabilities are not tied); raises ``ExportMismatch`` beyond ``rtol``."""
    report = {}
    for name, (ref, mask) in refs.items():
        got = outputs[name]
        if name == "label":
            probs = refs.get("probabilities", (None, None))[0]
            keep = np.asarray(mask, dtype=bool)
            if probs is not None and probs.shape[:-1] == keep.shape:
                top = np.sort(np.where(np.isnan(probs), -np.inf, probs), axis=-1)
                with np.errstate(invalid="ignore"):  # (-inf - -inf on masked rows)
                    tied = (top[..., -1] - top[..., -2]) <= 4 * rtol
                keep = keep & ~tied
            g = np.asarray(got, dtype=object)[keep]
            r = np.asarray(ref, dtype=object)[keep]
            wrong = int(sum(a != b for a, b in zip(g.tolist(), r.tolist(), strict=True)))
            report[name] = wrong / max(g.size, 1)
            if wrong:
                raise ExportMismatch(f"output 'label': {wrong} of {g.size} rows differ from "
                                     "the model's predict.")
            continue
        got = np.asarray(got, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        mask = np.broadcast_to(np.asarray(mask, dtype=bool).reshape(
            mask.shape + (1,) * (ref.ndim - np.ndim(mask))), ref.shape)
        if got.shape != ref.shape:
            raise ExportMismatch(f"output {name!r} has shape {got.shape}; the model's "
                                 f"{ref.shape}.")
        g, r = got[mask], ref[mask]
        if np.any(np.isnan(g) != np.isnan(r)):
            raise ExportMismatch(f"output {name!r}: NaN where the model has a number (or "
                                 "the reverse).")
        finite = ~np.isnan(r)
        scale = max(1.0, float(np.max(np.abs(r[finite]), initial=0.0)))
        err = float(np.max(np.abs(g[finite] - r[finite]), initial=0.0)) / scale
        report[name] = err
        if not err <= rtol:
            raise ExportMismatch(f"output {name!r} differs from the model's by {err:.3g} "
                                 f"(relative to its largest magnitude), above {rtol:g}.")
    return report


def _run(session: Any, plan: LinearPlan, X: np.ndarray, task: Any, offset: Any,
         dtype: np.dtype) -> dict[str, np.ndarray]:
    if plan.named:
        feeds = {name: np.ascontiguousarray(X[:, j], dtype=dtype)
                 for j, name in enumerate(plan.feature_names)}
    else:
        feeds = {"X": np.ascontiguousarray(X, dtype=dtype)}
    if plan.form == "rows":
        feeds["task"] = _task_array(plan, task)
    if plan.offset:
        feeds["offset"] = np.ascontiguousarray(offset, dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _session(source: Any) -> Any:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not isinstance(source, (str, os.PathLike)):
        source = source.SerializeToString()
    else:
        source = str(source)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _as_numbers(model: Any, plan: LinearPlan, X: Any) -> np.ndarray:
    """Sample rows as a float array in the model's column order (a DataFrame is reordered
    by the model's feature names)."""
    if hasattr(X, "columns") and plan.feature_names is not None:
        missing = [c for c in plan.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the feature column(s) the model was fitted on: "
                             f"{', '.join(map(str, missing[:10]))}.")
        X = X[plan.feature_names]
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != plan.n_features:
        raise ValueError(f"X: rows of {plan.n_features} features, got shape {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X holds NaN or inf: give finite sample rows.")
    return X


# ----------------------------------------------------------------------------- the API
def export_onnx(model: Any, path: str | os.PathLike | None = None, *,
                dtype: Any = "float64", task_input: bool | None = None, offset: bool = False,
                named_columns: bool = False, X: Any = None, task: Any = None,
                n_check: int = SAMPLE_ROWS, random_state: Any = 0,
                target_opset: int | dict[str, int] | None = None) -> Any:
    """Export a fitted model to ONNX, verified by ONNX Runtime before it is written.

    Parameters
    ----------
    model : estimator, TransferredTask, TransferredHead or MultiTaskNet
        A fitted linear model (``MultiTaskRegressor``, ``MultiTaskClassifier``, their CV forms,
        which export their ``best_estimator_``, ``TransferredTask``) or a deep one (the
        estimators of ``regmtl.deep``, a ``TransferredHead``, a plain ``MultiTaskNet`` with
        ``X`` given: ``regmtl.serving.deep``).
    path : str or path-like, optional
        Where to write the graph (``.onnx``); with weights over 1 GiB they go beside it in
        ``PATH.data``. Nothing is written when omitted (the model is returned).
    dtype : {"float64", "float32"}
        The float type of the inputs, weights and outputs (a deep model's net keeps its own
        precision, float32, and is verified to 1e-4 relative, ``DEEP_TOLERANCE``).
    task_input : bool, optional
        Serve rows with their task ids (input ``task``): the default for models fitted in
        the long form or on per-task designs. False for a model of a shared design: every
        task's output for every row (n x T).
    offset : bool
        Add an input ``offset`` to each row's linear predictor (the log links of linear
        models).
    named_columns : bool
        One input per feature, (n,) each, named as in the fit (a model fitted on a
        DataFrame); the graph puts them in the fit's order. Default: one input ``X`` (n, p)
        in the order of ``feature_names_in_``.
    X, task : array-like, optional
        The rows the export is verified on (a DataFrame is read by the model's column
        names; a deep model fitted on a :class:`~regmtl.deep.Modalities` takes a
        ``Modalities`` of the fit's modalities, with ``task`` in the long form); drawn when
        omitted (``n_check`` rows over every task; the module's text).
    n_check : int
        Rows drawn for the verification when ``X`` is not given.
    random_state : int, Generator or None
        Seed of the drawn rows.
    target_opset : int or dict, optional
        The opset the graph is written for, for a runtime older (or newer) than the default's:
        an int, the default domain's opset (default 17; from 11, the lowest at which every
        graph kind runs in float32 and float64, to the highest the installed ``onnx`` knows;
        a deep model's net from 12 to the highest ``torch.onnx.export`` writes, 20 in torch
        2.x), or a dict ``{domain: version}`` with ``""`` (or ``"ai.onnx"``) and
        ``"ai.onnx.ml"`` (default 4; from 2 on: ``{"ai.onnx.ml": 3}`` for ONNX Runtime 1.16
        and older, which refuse opset 4). Operators whose form changed between opsets are
        written in the requested opset's form; the graph is verified by the installed ONNX
        Runtime as always.

    Returns
    -------
    onnx.ModelProto
        The verified graph; its metadata holds the model card
        (:func:`~regmtl.serving.read_card`).

    Raises
    ------
    NotExportable
        A model or loss that has no exact graph (a custom Python loss, labels of several
        types), named.
    ExportMismatch
        The graph's outputs differ from the model's beyond the tolerance (nothing written).
    ValueError
        A ``target_opset`` below the floor, above what the installed ``onnx`` (or torch, for a
        deep model) writes, or that the installed ONNX Runtime does not run, named with the
        range accepted.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((30, 3)) for _ in range(2)]
    >>> ys = [X @ np.array([1.0, -1.0, 0.0]) for X in Xs]
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.01).fit(Xs, ys)
    >>> graph = rm.export_onnx(model)  # rm.export_onnx(model, "model.onnx") writes it
    >>> sess = ort.InferenceSession(graph.SerializeToString(),
    ...                             providers=["CPUExecutionProvider"])
    >>> [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    (['X', 'task'], ['prediction'])
    >>> X, task = rng.standard_normal((4, 3)), np.array([0, 1, 1, 0])
    >>> out = sess.run(["prediction"], {"X": X, "task": task})[0]
    >>> bool(np.allclose(out, model.predict(X, task=task), rtol=1e-12, atol=1e-12))
    True
    >>> old = rm.export_onnx(model, target_opset={"": 13, "ai.onnx.ml": 3})  # older runtimes
    >>> sorted((o.domain, o.version) for o in old.opset_import)
    [('', 13), ('ai.onnx.ml', 3)]
    """
    dt = _dtype(dtype)
    opsets = target_opsets(target_opset)
    target = None if path is None else Path(path)
    if is_deep(model):
        return _export_deep(model, target, dt, task_input, offset, named_columns, X, task,
                            n_check, random_state, opsets, target_opset)
    plan = plan_of(model, task_input, offset, named_columns)
    rtol = TOLERANCE[dt]
    Xs, ts, off = _check_rows(model, plan, X, task, None, n_check, random_state)
    graph = build_graph(plan, dt, _doc(model, plan), {}, opsets)
    _set_card(graph, model_card(model, plan, dt, rtol, *_signature(graph)))
    big = plan.W.size * dt.itemsize > EXTERNAL_BYTES
    return _verified(graph, target, big, lambda session: _compare(
        _run(session, plan, Xs, ts, off, dt), _references(model, plan, Xs, ts, off), rtol),
        target_opset)


def _signature(graph: Any) -> tuple[list, list]:
    """The graph's inputs and outputs as (name, element type, shape)."""
    return ([(i.name, _type_name(i.type.tensor_type.elem_type), _shape(i))
             for i in graph.graph.input],
            [(o.name, _type_name(o.type.tensor_type.elem_type), _shape(o))
             for o in graph.graph.output])


def _set_card(graph: Any, card: dict[str, str]) -> None:
    require("onnx").helper.set_model_props(graph, card)


def _verified(graph: Any, target: Path | None, big: bool, check: Any,
              target_opset: Any = None) -> Any:
    """Run ``check`` on an ONNX Runtime session of ``graph``, then write it to ``target``
    (a graph with weights over :data:`EXTERNAL_BYTES` is written first, weights beside it,
    and removed if the check fails). A graph of a ``target_opset`` the installed ONNX
    Runtime does not run is refused by that name."""
    if big and target is None:
        raise ValueError("the model's weights exceed 1 GiB: give a path (the weights are "
                         "written beside the graph, ONNX's external data).")
    if big:
        _save(graph, target, True)
    try:
        try:
            session = _session(target if big else graph)
        except Exception as exc:
            if target_opset is None:
                raise
            ort = require("onnxruntime")
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else \
                type(exc).__name__
            raise ValueError(f"target_opset={target_opset!r}: the installed onnxruntime "
                             f"{ort.__version__} does not run the graph ({reason}); give an "
                             "opset it runs, or upgrade onnxruntime.") from exc
        check(session)
    except Exception:
        if big:
            _remove(target)
        raise
    if target is not None and not big:
        _save(graph, target, False)
    return graph


def _export_deep(model: Any, target: Path | None, dt: np.dtype, task_input: bool | None,
                 offset: bool, named_columns: bool, X: Any, task: Any, n_check: int,
                 random_state: Any, opsets: dict[str, int], target_opset: Any) -> Any:
    """``export_onnx`` of a deep model (:mod:`~regmtl.serving.deep`)."""
    if offset:
        raise NotExportable("offset=True: the deep models' count heads take no offset "
                            "input.")
    top, opset = torch_max_opset(), opsets[""]
    if opset > top:
        raise ValueError(f"target_opset={opset}: a deep model's net is traced by "
                         f"torch.onnx.export, whose TorchScript exporter writes opsets up to "
                         f"{top}; give {DEEP_MIN_OPSET} to {top}.")
    if opset < DEEP_MIN_OPSET:
        raise ValueError(f"target_opset={opset}: the lowest accepted for a deep "
                         f"model is {DEEP_MIN_OPSET} (torch.onnx.export writes the heads' "
                         f"einsum from opset 12 on); give {DEEP_MIN_OPSET} to {top}.")
    plan = deep_plan(model, task_input, named_columns, X)
    rtol = DEEP_TOLERANCE
    Xs, ts = deep_check.check_rows(plan, X, task, n_check, random_state)
    graph = build_deep_graph(plan, dt, _deep_doc(model, plan), {}, opsets)
    extra = deep_card(plan)
    sidecars = _sidecar_files(plan)
    listed = {key: {"file": None if target is None else target.name + suffix,
                    "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
              for key, (suffix, text) in sidecars.items()}
    if None in listed:
        extra["tokenizer"] = listed[None]
    for field, ending in (("tokenizers", ".tokenizer.json"), ("tables", ".table.json")):
        entries = {k: v for k, v in listed.items()
                   if k is not None and sidecars[k][0].endswith(ending)}
        if entries:
            extra[field] = entries
    _set_card(graph, model_card(model, plan, dt, rtol, *_signature(graph), extra=extra))
    big = sum(t.ByteSize() for t in graph.graph.initializer) > EXTERNAL_BYTES
    refs = deep_check.references(plan, Xs, ts, rtol)  # (first: predict names a bad X)
    _verified(graph, target, big, lambda session: _compare(
        _deep_run(session, plan, Xs, ts, dt), refs, rtol), target_opset)
    for suffix, text in sidecars.values():
        if target is not None:
            target.with_name(target.name + suffix).write_text(text, encoding="utf-8")
    return graph


def _sidecar_files(plan: Any) -> dict[str | None, tuple[str, str]]:
    """What is written beside the graph to prepare its inputs, as ``{key: (file suffix,
    JSON)}``: a text model's tokenizer (key None, ``.tokenizer.json``), each text modality's
    (key its name, ``.NAME.tokenizer.json``), and each table modality with categorical
    columns' columns and vocabularies (``.NAME.table.json``: its input holds the codes of
    those columns first, then the numbers)."""
    if plan.input_kind == "text" and plan.source is not None:
        return {None: (".tokenizer.json",
                       json.dumps(plan.source.tokenizer_.to_json(), ensure_ascii=False))}
    spec = plan.modalities or {}
    out = {name: (f".{name}.tokenizer.json", json.dumps(tok, ensure_ascii=False))
           for name, tok in spec.get("tokenizers", {}).items()}
    out.update({name: (f".{name}.table.json", json.dumps(table, ensure_ascii=False))
                for name, table in spec.get("tables", {}).items()})
    return out


def _deep_run(session: Any, plan: Any, X: Any, task: Any, dtype: np.dtype
              ) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, deep_check.feeds(plan, X, task, dtype)),
                    strict=True))


def _deep_doc(model: Any, plan: Any) -> str:
    given = "by column" if plan.named else "X" if plan.modalities is None else \
        ", ".join(name for name, _, _ in modal_inputs(plan))
    return (f"regmtl {type(model).__name__}: {plan.n_tasks} task(s), {plan.input_kind} input, "
            f"served {plan.form} (inputs {given}"
            f"{', task' if plan.form == 'rows' else ''}).")


def check_onnx(model: Any, source: Any, X: Any = None, task: Any = None, offset: Any = None,
               *, rtol: float | None = None, n_check: int = SAMPLE_ROWS,
               random_state: Any = 0) -> dict[str, float]:
    """Check an exported graph against the model: ONNX Runtime's outputs on ``X`` (and
    ``task``, ``offset`` as the graph takes them; drawn rows when omitted) against
    ``predict`` / ``predict_proba``, to ``rtol`` (the graph's verified tolerance by default).

    Parameters
    ----------
    model : estimator
        The fitted model the graph was exported from.
    source : str, path-like or onnx.ModelProto
        The graph.
    X, task, offset : array-like, optional
        Rows to check on (drawn when X is omitted; as ``export_onnx`` takes them).
    rtol : float, optional
        The tolerance (relative to each output's largest magnitude).
    n_check, random_state
        Rows drawn, and their seed, when X is omitted.

    Returns
    -------
    dict
        The largest relative difference of each output (the fraction of differing labels).

    Raises
    ------
    ExportMismatch
        An output differs beyond ``rtol`` (a graph whose weights were changed, or another
        model's).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 4))
    >>> Y = X @ rng.standard_normal((4, 3))
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.01).fit(X, Y)  # a shared design
    >>> graph = rm.export_onnx(model, dtype="float32")
    >>> report = rm.check_onnx(model, graph, X[:20])
    >>> sorted(report), bool(report["prediction"] <= 1e-4)
    (['prediction'], True)
    """
    session = _session(source)
    card = read_card(session.get_modelmeta().custom_metadata_map)
    if not card:
        raise ValueError("the graph has no regmtl model card: it was not written by "
                         "export_onnx.")
    dt = np.dtype(card["dtype"])
    names = {i.name for i in session.get_inputs()}
    if is_deep(model):
        return _check_deep(model, session, card, names, dt, X, task, rtol, n_check,
                           random_state)
    plan = plan_of(model, card["form"] != "shared" and "task" in names, "offset" in names,
                   "X" not in names)
    if plan.form != card["form"] or plan.n_tasks != card["n_tasks"] or \
            plan.n_features != card["training"]["n_features"]:
        raise ExportMismatch(f"the graph serves {card['n_tasks']} tasks of "
                             f"{card['training']['n_features']} features ({card['form']}); "
                             f"the model {plan.n_tasks} of {plan.n_features} ({plan.form}).")
    tol = float(card.get("verified_tolerance", TOLERANCE[dt])) if rtol is None else rtol
    Xs, ts, off = _check_rows(model, plan, X, task, offset, n_check, random_state)
    got = _run(session, plan, Xs, ts, off, dt)
    return _compare(got, _references(model, plan, Xs, ts, off), tol)


def _check_deep(model: Any, session: Any, card: dict, names: set, dt: np.dtype, X: Any,
                task: Any, rtol: float | None, n_check: int, random_state: Any
                ) -> dict[str, float]:
    """``check_onnx`` of a deep model."""
    plan = deep_plan(model, card["form"] == "rows", bool(card.get("named_columns")), X)
    if plan.form != card["form"] or plan.n_tasks != card["n_tasks"] or \
            card.get("family") != "deep":
        raise ExportMismatch(f"the graph serves {card['n_tasks']} tasks ({card['form']}, "
                             f"{card.get('family', 'linear')}); the model {plan.n_tasks} "
                             f"({plan.form}, deep).")
    tol = float(card.get("verified_tolerance", DEEP_TOLERANCE)) if rtol is None else rtol
    Xs, ts = deep_check.check_rows(plan, X, task, n_check, random_state)
    refs = deep_check.references(plan, Xs, ts, tol)  # (first: predict names a bad X)
    return _compare(_deep_run(session, plan, Xs, ts, dt), refs, tol)


def _doc(model: Any, plan: LinearPlan) -> str:
    kinds = sorted(set(plan.losses))
    return (f"regmtl {type(model).__name__}: {plan.n_tasks} task(s) of {plan.n_features} "
            f"features, loss {', '.join(kinds)}, served {plan.form} "
            f"(inputs X{', task' if plan.form == 'rows' else ''}"
            f"{', offset' if plan.offset else ''}); labels {label_kind(plan) or 'none'}.")


def _type_name(elem: int) -> str:
    onnx = require("onnx")
    return onnx.helper.tensor_dtype_to_np_dtype(elem).name if elem != \
        onnx.TensorProto.STRING else "string"


def _shape(value_info: Any) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _save(graph: Any, target: Path, external: bool) -> None:
    onnx = require("onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(graph, str(target), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=target.name + ".data",
                        size_threshold=1024)
    else:
        onnx.save_model(graph, str(target))


def _remove(target: Path) -> None:
    for f in (target, target.with_name(target.name + ".data")):
        if f.exists():
            f.unlink()
