r"""The rows a deep model's graph is verified on, its feeds, and the model's own outputs on them.

Rows are given (in the model's input form: a table or DataFrame, images, token ids, texts, a
sparse bag of words, a :class:`~regmtl.deep.Modalities`, with ``task`` in the long form) or
drawn in that form over every fitted task: numeric columns about the fit's ``x_mean_`` and
``x_scale_``, categorical values from each vocabulary with one row in eight an unseen one,
pixels in [0, 1], token ids over the vocabulary and past it (the out-of-vocabulary bucket),
texts of vocabulary words and an unknown one, bags of a few words; each modality drawn so,
one row in four missing each of the images, tables and texts. The references are the model's
public ``predict`` / ``predict_proba`` (a plain net's call), grouped where the long form needs
it (tasks of values apart from tasks of classes, and tasks by their number of classes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .deep_plan import DeepPlan, raw_inputs, vocab_type
from .linear import check_task_ids, sample_size, task_dtype, task_positions

__all__ = ["check_rows", "feeds", "references"]

#: one drawn categorical value in this many is outside the vocabulary
UNSEEN_EVERY = 8
#: one drawn row in this many lacks a given modality (images, tables, texts)
MISSING_EVERY = 4


# ----------------------------------------------------------------------------- rows
def check_rows(plan: DeepPlan, X: Any, task: Any, n: int, random_state: Any
               ) -> tuple[Any, Any]:
    """``(X, task)`` the graph is checked on, in the model's input form."""
    if X is None:
        if plan.source is None:
            raise ValueError("X: a MultiTaskNet (or a head transferred onto one) is exported "
                             "on inputs it reads (a batch of its input, or a dict of its "
                             "columns' tensors); give X.")
        X, task = _sample(plan, sample_size(n), np.random.default_rng(random_state))
    if plan.modalities is not None and not _is_modalities(X):
        raise ValueError(f"X is a {type(X).__name__}, but the model was fitted on a "
                         f"Modalities {plan.modalities['names']}: give the rows to check on "
                         "as one regmtl.deep.Modalities of its modalities (and task, one id "
                         "per row, in the long form).")
    if plan.form != "rows":
        return X, None
    return X, check_task_ids(plan, task, _n_rows(X))


def _is_modalities(X: Any) -> bool:
    from ..deep.modalities import Modalities

    return isinstance(X, Modalities)


def _n_rows(X: Any) -> int:
    if isinstance(X, dict):
        return int(len(next(iter(X.values()))))
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _sample(plan: DeepPlan, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
    T = plan.n_tasks
    task = None
    if plan.form == "rows":
        pos = np.arange(n) % T if T <= n else np.sort(rng.choice(T, n, replace=False))
        task = plan.tasks[pos]
    kind, src = plan.input_kind, plan.source
    if kind == "modalities":
        return _modal_sample(plan.modalities, n, rng), task
    if kind in ("images", "tokens", "text", "sparse"):
        size = [plan.n_features] if kind == "sparse" else getattr(src, "input_size_", [])
        return _draw(kind, n, rng, size, getattr(src, "tokenizer_", None),
                     int(src.n_features_in_)), task
    p = plan.n_features
    center = np.asarray(getattr(src, "x_mean_", np.zeros(p)), dtype=np.float64)
    spread = np.asarray(getattr(src, "x_scale_", np.ones(p)), dtype=np.float64)
    X = center + spread * rng.standard_normal((n, p))
    if plan.feature_names is None:
        return X, task

    frame = pd.DataFrame(X, columns=plan.feature_names)
    for col, vocab in (plan.categories or {}).items():
        values = np.empty(n, dtype=object)
        values[:] = [vocab[k] for k in rng.integers(0, len(vocab), n)]
        unseen = np.arange(n) % UNSEEN_EVERY == UNSEEN_EVERY - 1
        if vocab_type(col, vocab) == "string":
            values[unseen] = "zz-unseen"
        else:
            values[unseen] = max(int(v) for v in vocab) + 1
        frame[col] = values if vocab_type(col, vocab) == "string" else values.astype(np.int64)
    return frame, task


def _draw(kind: str, n: int, rng: np.random.Generator, size: list, tokenizer: Any = None,
          length: int = 8) -> Any:
    """``n`` rows of an input kind but a DataFrame: images of shape ``size`` (pixels in
    [0, 1]), token ids below ``size[0] + 2`` (``length`` of them, 0-padded), texts of the
    ``tokenizer``'s words and an unknown one, bags of a few of ``size[0]`` words, a table of
    ``size[0]`` standard normal columns."""
    if kind == "images":
        return rng.uniform(0.0, 1.0, (n, *size))
    if kind == "tokens":
        ids = rng.integers(1, int(size[0]) + 2, (n, length))
        cut = rng.integers(1, length + 1, n)
        ids[np.arange(length)[None, :] >= cut[:, None]] = 0
        return ids
    if kind == "text":
        words = list(tokenizer.words) + ["zzunseenword"]
        return np.array([" ".join(rng.choice(words, rng.integers(1, 9)).tolist())
                         for _ in range(n)], dtype=object)
    if kind == "sparse":
        import scipy.sparse as sp

        V = int(size[0])
        nnz = min(V, 5)
        rows = np.repeat(np.arange(n), nnz)
        cols = np.concatenate([rng.choice(V, nnz, replace=False) for _ in range(n)])
        vals = rng.integers(1, 4, n * nnz).astype(np.float64)
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, V))
    return rng.standard_normal((n, int(size[0])))


def _modal_sample(spec: dict, n: int, rng: np.random.Generator) -> Any:
    """A :class:`~regmtl.deep.Modalities` of ``n`` drawn rows of the fit's modalities, one in
    :data:`MISSING_EVERY` of the images, tables and texts missing (never every modality of a
    row)."""
    from ..deep.modalities import Modalities
    from ..deep.tokenizer import Tokenizer

    names, kinds = spec["names"], spec["kinds"]
    can = np.array([kinds[m] in ("images", "table", "text") for m in names])
    gone = (rng.integers(0, MISSING_EVERY, (n, len(names))) == 0) & can[None, :]
    full = np.flatnonzero(gone.all(axis=1))
    gone[full, rng.choice(np.flatnonzero(can), len(full))] = False
    data = {}
    for j, name in enumerate(names):
        tok = Tokenizer.from_json(spec["tokenizers"][name]) if name in spec["tokenizers"] \
            else None
        if name in spec["tables"]:
            data[name] = _table_sample(spec["tables"][name], n, rng, gone[:, j])
            continue
        x = _draw(kinds[name], n, rng, spec["sizes"][name], tok)
        if kinds[name] == "text":
            x[gone[:, j]] = None
        elif can[j]:
            x[gone[:, j]] = np.nan
        data[name] = x
    return Modalities.from_dict(data, kinds)


# ----------------------------------------------------------------------------- feeds
def feeds(plan: DeepPlan, X: Any, task: Any, dtype: np.dtype) -> dict[str, np.ndarray]:
    """The graph's inputs for the rows ``X`` (the model's form) and their ``task``."""
    out: dict[str, np.ndarray] = {}
    kind = plan.input_kind
    if plan.source is None:
        xs = X if isinstance(X, dict) else {"X": X}
        ranks = {name: len(shape) for name, _, shape in raw_inputs(plan)}
        for name, value in xs.items():
            arr = _numpy(value)
            if name in ranks and arr.ndim != ranks[name]:  # (a column of one: (n,) or (n, 1))
                arr = arr.reshape(len(arr), -1) if ranks[name] == 2 else arr.reshape(len(arr))
            out[name] = arr.astype(np.int64) if arr.dtype.kind in "iub" else \
                np.ascontiguousarray(arr, dtype=dtype)
    elif kind == "modalities":
        out.update(_modal_feeds(plan.modalities, X, dtype))
    elif kind == "table":
        out.update(_table_feeds(plan, X, dtype))
    elif kind == "images":
        arr = _numpy(X).astype(np.float64)
        out["X"] = np.ascontiguousarray(arr.reshape(arr.shape[0], *plan.source.input_size_),
                                        dtype=dtype)
    elif kind == "tokens":
        out["X"] = np.ascontiguousarray(_numpy(X), dtype=np.int64)
    elif kind == "text":
        out["X"] = plan.source.tokenizer_.transform(np.asarray(X, dtype=object).tolist())
    else:
        dense = X.toarray() if hasattr(X, "toarray") else _numpy(X)
        out["X"] = np.ascontiguousarray(dense, dtype=dtype)
    if plan.form == "rows":
        values = np.asarray(task, dtype=object)
        out["task"] = values.astype(np.int64) if task_dtype(plan.tasks) == "int64" else \
            np.array([str(v) for v in values.tolist()], dtype=object)
    return out


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _table_feeds(plan: DeepPlan, X: Any, dtype: np.dtype) -> dict[str, np.ndarray]:
    names = plan.feature_names
    if hasattr(X, "columns") and names is not None:
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the feature column(s) the model was fitted on: "
                             f"{', '.join(map(str, missing[:10]))}.")
    if not plan.named:
        arr = np.asarray(X[names] if hasattr(X, "columns") and names else X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != plan.n_features:
            raise ValueError(f"X: rows of {plan.n_features} features, got shape {arr.shape}.")
        return {"X": np.ascontiguousarray(arr, dtype=dtype)}
    if not hasattr(X, "columns"):

        X = pd.DataFrame(np.asarray(X), columns=names)
    cats = plan.categories or {}
    out = {}
    for col in names:
        values = X[col]
        if col not in cats:
            out[col] = np.ascontiguousarray(values.to_numpy(dtype=np.float64), dtype=dtype)
        elif vocab_type(col, cats[col]) == "string":
            out[col] = np.array(["" if _missing(v) else str(v) for v in values.tolist()],
                                dtype=object)
        else:
            out[col] = np.asarray(values.to_numpy(), dtype=np.int64)
    return out


def _table_sample(table: dict, n: int, rng: np.random.Generator,
                  gone: np.ndarray) -> pd.DataFrame:
    """``n`` drawn rows of a table with categorical columns: each categorical value drawn from
    its vocabulary and an unseen one, the numbers standard normal; rows ``gone`` all NaN."""
    vocab = dict((c, v) for c, v in table["categories"])
    data = {}
    for col in table["columns"]:
        if col in vocab:
            values = np.array([*vocab[col], "zzunseenvalue"], dtype=object)
            data[col] = values[rng.integers(0, len(values), n)]
        else:
            data[col] = rng.standard_normal(n)
    frame = pd.DataFrame(data, columns=table["columns"])
    frame.loc[gone] = np.nan
    return frame


def _modal_feeds(spec: dict, X: Any, dtype: np.dtype) -> dict[str, np.ndarray]:
    """A :class:`~regmtl.deep.Modalities`' inputs as the graph reads them: its carried
    tensors (missing rows zero-filled, texts tokenized by the fit's tokenizers, 8-bit images
    divided by 255), bags of words dense, and the missing mask."""
    from ..deep.frames import ColumnCodes
    from ..deep.modalities import MISSING_KEY
    from ..deep.tokenizer import Tokenizer

    carried = X.carried({k: Tokenizer.from_json(v) for k, v in spec["tokenizers"].items()},
                        {k: ColumnCodes.from_json(v["categories"])
                         for k, v in spec["tables"].items()})
    given = dict(iter(X))
    out = {MISSING_KEY: X.missing()}
    for name in spec["names"]:
        kind, x = spec["kinds"][name], carried[name]
        if kind in ("text", "tokens"):
            out[name] = _numpy(x).astype(np.int64)
        elif kind == "sparse":
            out[name] = np.ascontiguousarray(given[name].toarray(), dtype=dtype)
        else:
            arr = _numpy(x)
            pixels = kind == "images" and arr.dtype.kind != "f"
            arr = arr / 255.0 if pixels else arr.astype(np.float64)
            out[name] = np.ascontiguousarray(arr.reshape(len(arr), *spec["sizes"][name]),
                                             dtype=dtype)
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


# ----------------------------------------------------------------------------- references
def references(plan: DeepPlan, X: Any, task: Any, rtol: float
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each graph output's reference from the model's own methods, with the mask of the
    entries it is compared on."""
    model, n = plan.model, _n_rows(X)
    if plan.raw:
        return _net_references(plan, X, None if plan.form != "rows" else
                               task_positions(plan, task))
    if plan.esmm:
        P = np.asarray(model.predict_proba(X), dtype=np.float64)
        sure = (np.abs(P[:, 0] - 0.5) > 4 * rtol) & (np.abs(P[:, 2] - 0.5) > 4 * rtol)
        return {"probabilities": (P, np.ones(n, dtype=bool)),
                "label": (np.asarray(model.predict(X)), np.broadcast_to(sure[:, None], (n, 2)))}
    if plan.form == "shared":
        return _shared_references(plan, X)
    W = plan.width
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pos = np.zeros(n, dtype=np.int64) if plan.form == "single" else task_positions(plan, task)
    heads = np.asarray(plan.heads, dtype=object)[pos]
    on_values = np.isin(heads, ["regression", "count"])
    kw = (lambda rows: {}) if plan.form == "single" else (
        lambda rows: {"task": np.asarray(task, dtype=object)[rows]})
    if plan.has_values:
        ref = np.full(n, np.nan)
        if on_values.any():
            ref[on_values] = np.asarray(model.predict(_take(X, on_values), **kw(on_values)),
                                        dtype=np.float64)
        out[plan.value_name] = (ref, on_values)
    if plan.has_classes:
        P = np.full((n, W), np.nan)
        labels = np.empty(n, dtype=object)
        widths = np.where(heads == "binary", 2, plan.K[pos])
        for k in np.unique(widths[~on_values]):
            rows = ~on_values & (widths == k)
            P[rows, :k] = np.asarray(model.predict_proba(_take(X, rows), **kw(rows)),
                                     dtype=np.float64)
            P[rows, k:] = 0.0
            labels[rows] = np.asarray(model.predict(_take(X, rows), **kw(rows)), dtype=object)
        out["probabilities"] = (P, ~on_values)
        out["label"] = (labels, ~on_values)
    return out


def _shared_references(plan: DeepPlan, X: Any) -> dict:
    model, T, W = plan.model, plan.n_tasks, plan.width
    n = _n_rows(X)
    classes = np.array([h in ("binary", "multiclass") for h in plan.heads])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pred = np.asarray(model.predict(X), dtype=object).reshape(n, T)
    if plan.has_values:
        ref = np.where(classes[None, :], np.nan, pred).astype(np.float64)
        out[plan.value_name] = (ref, np.broadcast_to(~classes[None, :], (n, T)))
    if plan.has_classes:
        probs = model.predict_proba(X)
        probs = probs if isinstance(probs, list) else [probs]
        P = np.full((n, T, W), np.nan)
        for t, q in enumerate(probs):
            if q is not None and classes[t]:
                q = np.asarray(q, dtype=np.float64)
                P[:, t, :q.shape[1]] = q
                P[:, t, q.shape[1]:] = 0.0
        out["probabilities"] = (P, np.broadcast_to(classes[None, :], (n, T)))
        out["label"] = (pred, np.broadcast_to(classes[None, :], (n, T)))
    return out


def _net_references(plan: DeepPlan, X: Any, rows: np.ndarray | None) -> dict:
    import torch

    net = plan.net
    x = {k: torch.as_tensor(_numpy(v)) for k, v in X.items()} if isinstance(X, dict) else \
        torch.as_tensor(_numpy(X))
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        x = x.to(next(net.parameters()).dtype)
    elif isinstance(x, dict):
        x = {k: v.to(next(net.parameters()).dtype) if v.is_floating_point() else v
             for k, v in x.items()}
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            x = x.to(device) if isinstance(x, torch.Tensor) else {k: v.to(device)
                                                                   for k, v in x.items()}
            got = net(x) if rows is None else net(x, rows=torch.from_numpy(rows).to(device))
    finally:
        net.train(was)
    n = _n_rows(X)
    if rows is not None:
        return {"output": (got.double().cpu().numpy(), np.ones(n, dtype=bool))}
    return {name: (got[name].double().cpu().numpy(), np.ones(n, dtype=bool))
            for name in plan.names}


def _take(X: Any, rows: np.ndarray) -> Any:
    idx = np.flatnonzero(rows)
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, list):
        return [X[i] for i in idx]
    return X[idx]
