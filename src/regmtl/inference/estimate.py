"""A fitted model's coefficients with their covariance: what ``coef_table`` prints and
``wald_test`` tests, computed once by the method :func:`~regmtl.inference.route.choose_method`
picks."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import clone

from .covariance import task_covariance
from .debiased import TaskBlock, debiased_covariance, flat_features, nodewise_precision
from .route import choose_method, excluded_mask, fitted_model, penalized_mask
from .rows import ModelRows, TaskRows, model_rows

__all__ = ["Estimate", "estimate"]


@dataclass(frozen=True)
class Estimate:
    """Coefficients and their covariance, block-diagonal over tasks.

    Attributes
    ----------
    tasks : list
        The tasks' labels (those with rows).
    names : list of str
        The q coefficient names of each task: the features, then ``"intercept"``.
    coef : ndarray of shape (T, q)
        Each task's ``(w_t, b_t)``.
    cov : ndarray of shape (T, q, q)
        Each task's covariance (NaN rows and columns for an excluded feature, held at 0).
    penalized : ndarray of shape (T, q)
        Whether each coefficient is penalized in the fit.
    method : str
        How ``cov`` was estimated.
    shared_design : bool
        Whether the tasks share one design (their errors assumed uncorrelated).
    """

    tasks: list
    names: list[str]
    coef: np.ndarray
    cov: np.ndarray
    penalized: np.ndarray
    method: str
    shared_design: bool


def _debiased(rows: ModelRows, excluded: np.ndarray, nodewise: Any
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each task's debiased coefficients and covariance (``inference.debiased``): the
    features' block; the intercept, partialled out, keeps its fitted value with NaN
    variance, and so does an excluded feature. One nodewise precision serves every task of a
    shared design with equal curvatures (the squared loss), else one per task. The losses
    that profile a scale have it estimated (Pearson over the residual degrees of freedom),
    the others 1; the Huber loss takes the sandwich."""
    fi = rows.fit_intercept
    p = len(rows.names) - int(fi)
    cache: dict = {}
    coefs, covs, flat = [], [], {}
    for t in rows.tasks:
        keep = ~excluded[t.index]
        constant = flat_features(t.X[:, :p], t.curvature, fi) & keep
        if constant.any():  # (absorbed by the intercept within the task: not identified)
            flat[t.task] = [rows.names[j] for j in np.flatnonzero(constant)]
            keep = keep & ~constant
        block = TaskBlock(t.X[:, :p][:, keep], t.curvature, t.score, t.coef[:p][keep],
                          intercept=fi, dispersion=None if t.loss.profiles_scale else 1.0)
        key = None
        if rows.shared_design:  # (the same design array and curvatures: the same precision)
            digest = hashlib.blake2b(np.ascontiguousarray(block.w).tobytes(), digest_size=16)
            key = (id(t.X), keep.tobytes(), digest.digest())
        precision = cache.get(key) if key is not None else None
        try:
            if precision is None:
                precision = nodewise_precision(block.X, block.w, fi, lam=nodewise)
                cache = {} if key is None else {key: precision}
            b, cov = debiased_covariance(block, precision, robust=t.loss.name == "huber")
        except ValueError as exc:
            raise ValueError(
                f"task {t.task!r}: the debiased intervals cannot be computed ({exc}) It has "
                f"{len(t.X)} rows for {int(keep.sum())} features: give the task more rows, "
                "fit fewer features, or refit with alpha=0 for an unpenalized "
                "fit's standard errors.") from None
        coef, V = t.coef.copy(), np.full((len(t.coef),) * 2, np.nan)
        idx = np.flatnonzero(keep)
        coef[idx] = b
        V[np.ix_(idx, idx)] = cov
        coefs.append(coef)
        covs.append(V)
    if flat:
        first = next(iter(flat))
        warnings.warn(
            f"{sum(map(len, flat.values()))} coefficient(s) in {len(flat)} task(s) have no "
            f"debiased interval (NaN): their feature is constant within the task (task "
            f"{first!r}: {flat[first][:5]}), so the task's intercept absorbs it; exclude such "
            "features per task, or read them across tasks.", UserWarning,
            stacklevel=4)
    return np.array(coefs), np.array(covs)


def _seeds(random_state: Any, n: int) -> list:
    """One seed per task for the bootstrap: an int's (or a RandomState's draw's) spawned
    sequences, a Generator itself, or fresh entropy for None; anything else refused."""
    if isinstance(random_state, np.random.Generator):
        return [random_state] * n
    if isinstance(random_state, np.random.RandomState):
        random_state = int(random_state.randint(2**31 - 1))
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(
            random_state, (int, np.integer)) or random_state < 0):
        raise ValueError(f"random_state={random_state!r:.40}: give an int >= 0, a NumPy "
                         "Generator or RandomState, or None.")
    return np.random.SeedSequence(random_state).spawn(n)


def _refitter(model: Any, excluded: np.ndarray):
    """``refit(rows, idx) -> coef``: the model refitted unpenalized on a task's rows ``idx``
    alone, as the bootstrap needs: its loss the task's (with its fitted parameters), the
    task's excluded features (``excluded``, (T, p)) held at 0, nothing else per task."""
    def refit(rows: TaskRows, idx: np.ndarray) -> np.ndarray:
        one = clone(model).set_params(alpha=0.0, penalty_factor=None, task_weight="equal",
                                      warm_start=False)
        held = np.flatnonzero(excluded[rows.index])
        one.set_params(exclude=held if held.size else None)
        if "loss" in one.get_params():  # (a regressor takes labels as a list of one loss)
            one.set_params(loss=[rows.loss] if rows.loss.kind == "binary" else rows.loss)
        fi = bool(model.fit_intercept)
        Xr = rows.X[idx, :-1] if fi else rows.X[idx]
        off = rows.offset[idx] if np.any(rows.offset) else None
        kw = {} if off is None else {"offset": off}
        one.fit(Xr, rows.y[idx], sample_weight=rows.weight[idx], **kw)
        coef = np.ravel(one.coef_)
        return np.concatenate([coef, np.ravel(one.intercept_)]) if fi else coef
    return refit


def estimate(model: Any, X: Any, y: Any, task: Any = None, offset: Any = None,
             sample_weight: Any = None, method: str = "auto", n_boot: int = 200,
             random_state: Any = None, nodewise: Any = "cv") -> Estimate:
    """The coefficients of a fitted model and their covariance on its rows.

    Parameters
    ----------
    model : MultiTaskRegressor, MultiTaskClassifier, or a search with a refit
        The fitted model.
    X, y, task, offset, sample_weight
        The rows of the fit, in any input form of ``model.fit``.
    method : {"auto", "fisher", "sandwich", "kernel", "bootstrap", "debiased"}
        See :func:`~regmtl.inference.route.choose_method`.
    n_boot : int, default=200
        Resamples of ``"bootstrap"``.
    random_state : int, Generator or None
        Seeds ``"bootstrap"``.
    nodewise : {"cv", "universal"} or float, default="cv"
        The nodewise lassos' penalty of ``"debiased"``
        (:func:`~regmtl.inference.debiased.nodewise_precision`'s ``lam``).

    Returns
    -------
    Estimate
    """
    model = fitted_model(model)
    rows = model_rows(model, X, y, task, offset, sample_weight)
    method = choose_method(model, [t.loss for t in rows.tasks], method)
    if method == "bootstrap" and (not isinstance(n_boot, (int, np.integer)) or n_boot < 2):
        raise ValueError(f"n_boot={n_boot!r}: give an integer >= 2 (200 or more for "
                         "intervals).")
    excluded, penalized = excluded_mask(model), penalized_mask(model)
    if method == "debiased":
        coefs, covs = _debiased(rows, excluded, nodewise)
        pens = [np.append(penalized[t.index], False) if rows.fit_intercept
                else penalized[t.index] for t in rows.tasks]
        return Estimate([t.task for t in rows.tasks], rows.names, coefs, covs,
                        np.array(pens), method, rows.shared_design)
    q = len(rows.names)
    seeds = _seeds(random_state, len(rows.tasks))
    refit = _refitter(model, excluded)
    coefs, covs, pens = [], [], []
    for t, full in enumerate(rows.tasks):
        keep = np.ones(q, dtype=bool)
        keep[:excluded.shape[1]] = ~excluded[full.index]
        sub = replace(full, X=full.X[:, keep], coef=full.coef[keep])

        def refit_kept(_: TaskRows, idx: np.ndarray, full=full, keep=keep) -> np.ndarray:
            return refit(full, idx)[keep]

        V = np.full((q, q), np.nan)
        V[np.ix_(keep, keep)] = task_covariance(sub, method, refit_kept, n_boot,
                                                np.random.default_rng(seeds[t]))
        coefs.append(full.coef)
        covs.append(V)
        pen = np.zeros(q, dtype=bool)
        pen[:penalized.shape[1]] = penalized[full.index]
        pens.append(pen)
    return Estimate([t.task for t in rows.tasks], rows.names, np.array(coefs), np.array(covs),
                    np.array(pens), method, rows.shared_design)
