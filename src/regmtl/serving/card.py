"""The model card an exported graph carries in its metadata (``metadata_props``, read with
``onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map``): what was fitted,
how well it was solved, what goes in and what comes out. Every value is a string; the
structured ones are JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .deep_plan import modal_inputs
from .linear import LinearPlan, label_kind

__all__ = ["deep_card", "model_card", "read_card"]

#: the prefix of every key regmtl writes
PREFIX = "regmtl."
#: task ids listed in the card up to this many (the task input's encoder holds them all)
MAX_LISTED_TASKS = 10_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else repr(v)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)


def model_card(model: Any, plan: LinearPlan, dtype: np.dtype, tolerance: float,
               inputs: list[tuple[str, str, list]], outputs: list[tuple[str, str, list]],
               extra: dict | None = None) -> dict[str, str]:
    """The card of ``model`` exported as ``plan``: regmtl's version, the estimator and its
    parameters, penalty, alpha, each task's loss, the certificate (absolute and relative,
    :func:`certificate`), the training data's shape, the label tables, the tasks, the inputs
    and outputs (names, element types, shapes) and the tolerance the export was verified to
    (and ``extra``: a deep model's, :func:`deep_card`)."""
    from .._version import __version__

    est = getattr(model, "best_estimator_", model)
    params = {k: _jsonable(v) for k, v in est.get_params(deep=False).items()} \
        if hasattr(est, "get_params") else {}
    cert = certificate(est)
    sizes = getattr(est, "task_sizes_", None)
    training = {"n_features": plan.n_features, "n_tasks": plan.n_tasks,
                "n_samples": None if sizes is None else _jsonable(np.sum(sizes)),
                "n_samples_per_task_min_max": None if sizes is None else
                [_jsonable(np.min(sizes)), _jsonable(np.max(sizes))]}
    if hasattr(est, "n_samples_"):
        training["n_samples"] = int(est.n_samples_)
    card = {
        "version": __version__,
        "estimator": type(model).__name__,
        "params": params,
        "penalty": repr(getattr(est, "penalty", None) or getattr(est, "strategy_", "")),
        "alpha": _jsonable(getattr(est, "alpha_", getattr(est, "alpha", None))),
        "loss_per_task": plan.losses if len(set(plan.losses)) > 1 else plan.losses[:1],
        "certificate": cert,
        "objective": _jsonable(getattr(est, "objective_", None)),
        "training": training,
        "form": plan.form,
        "tasks": _jsonable(plan.tasks[:MAX_LISTED_TASKS]),
        "n_tasks": plan.n_tasks,
        "labels": None if label_kind(plan) is None else
        [None if c is None else _jsonable(c) for c in plan.classes[:MAX_LISTED_TASKS]],
        "union_classes": None if plan.union is None else _jsonable(plan.union),
        "feature_names": plan.feature_names,
        "named_columns": plan.named,
        "dtype": np.dtype(dtype).name,
        "inputs": [{"name": n, "type": t, "shape": s} for n, t, s in inputs],
        "outputs": [{"name": n, "type": t, "shape": s} for n, t, s in outputs],
        "unknown_task": "NaN outputs; the label is the empty string (strings), the "
                        "smallest int64 (integers), NaN (numbers) or false",
        "verified_tolerance": tolerance,
        "family": "linear",
        **(extra or {}),
    }
    return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in card.items()}


def certificate(est: Any) -> dict[str, Any]:
    """The card's ``certificate`` of a fitted linear model (empty where it has none):
    ``kind`` (``dual_gap`` or ``kkt_residual``), ``value`` (the absolute duality gap, or the
    KKT residual), ``relative`` (what the fit compared with ``tol``: the gap over
    ``objective_at_zero``, the KKT residual itself) and ``objective_at_zero`` (the objective
    at W = 0 with fitted intercepts). A model saved before the last two were kept gives
    None for them (the KKT residual, relative already, is its own ``relative``)."""
    for attr in ("dual_gap_", "kkt_residual_"):
        if hasattr(est, attr):
            value = getattr(est, attr)
            relative = getattr(est, "certificate_relative_", None)
            if relative is None and attr == "kkt_residual_":
                relative = value
            return {"kind": attr.rstrip("_"), "value": _jsonable(value),
                    "relative": _jsonable(relative),
                    "objective_at_zero": _jsonable(getattr(est, "objective_at_zero_", None))}
    return {}


def read_card(metadata: dict[str, str]) -> dict[str, Any]:
    """The card of an exported graph from its metadata map (JSON values decoded)."""
    out = {}
    for key, value in metadata.items():
        if not key.startswith(PREFIX):
            continue
        try:
            out[key[len(PREFIX):]] = json.loads(value)
        except (TypeError, ValueError):
            out[key[len(PREFIX):]] = value
    return out


def deep_card(plan: Any) -> dict:
    """What a deep model's card adds: the family, the net (its class and config), the input
    kind and, for a table, the fit's standardization and categorical vocabularies; for a
    model fitted on a :class:`~regmtl.deep.Modalities`, the modalities (names, kinds, sizes)
    and the graph's inputs of them (the names, then the missing mask)."""
    net = plan.net
    try:
        config = net.config()
    except Exception:  # (a custom encoder or trunk without a JSON config)
        config = None
    out = {"family": "deep", "net": type(net).__name__, "net_config": _jsonable(config),
           "input_kind": plan.input_kind, "head_kinds": list(plan.heads)[:MAX_LISTED_TASKS],
           "inputs_as_the_net_reads_them": plan.source is None}
    src = plan.source
    if src is not None and getattr(src, "x_mean_", None) is not None and \
            plan.input_kind == "table":
        out["x_mean"] = _jsonable(src.x_mean_)
        out["x_scale"] = _jsonable(src.x_scale_)
    if plan.categories:
        out["categories"] = _jsonable(plan.categories)
    if plan.input_kind == "images" and src is not None:
        out["image_shape"] = list(src.input_size_)
    if plan.modalities is not None:
        spec = plan.modalities
        out["modalities"] = {"names": list(spec["names"]), "kinds": dict(spec["kinds"]),
                             "sizes": _jsonable(spec["sizes"]),
                             "inputs": [name for name, _, _ in modal_inputs(plan)]}
    return out
