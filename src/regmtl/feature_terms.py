r"""Penalty factors, unpenalized and excluded features, bounds and standardization: the
per-feature terms of a fit (glmnet's ``penalty.factor``, ``exclude``, ``lower.limits`` /
``upper.limits`` and ``standardize``), and the problem they make for the solvers.

With factors :math:`d_j \ge 0` (or :math:`d_{jt}` where the penalty separates over tasks)
and a box :math:`\ell \le W \le u`, a fit solves

.. math::

    \min_{W, b}\; F(W, b) + \Omega(D W) \quad \text{s.t.}\; \ell \le W \le u,

:math:`D = \mathrm{diag}(d)` (entrywise :math:`D \circ W` for factors per task). For the norms
of entries and rows (L1, L2,1, L1,inf and the group parts of the dirty and robust models)
:math:`\Omega(DW) = \sum_j d_j \omega(W_j)`, glmnet's and skglm's weighted penalties; for the
metric penalties (trace, mean, graph, clustered) it is the penalty in the feature metric
:math:`D`; a nonconvex penalty sees the magnitudes :math:`d_j |w_j|`. Each penalty says which
in its ``factor_entry``.

A ridge part, :math:`\frac{\alpha (1 - \rho)}{2} \|W\|_F^2` of the elastic net, L2 and L2,1
(:meth:`~regmtl.Penalty.ridge_part`), takes a factor by one of two conventions
(``factor_convention``):

- ``"unit"`` (the default): the ridge of :math:`d_j w_j`, :math:`\sum_j d_j^2 \|W_j\|^2`;
- ``"glmnet"``: :math:`\sum_j d_j \|W_j\|^2`, glmnet's ``penalty.factor`` (and glum's
  ``P1 = P2 = d``), so that the elastic net is
  :math:`\alpha (\rho \sum_{jt} d_j |W_{jt}| + \frac{1 - \rho}{2} \sum_j d_j \|W_j\|^2)`.
  In the units :math:`v_j = d_j w_j` below it is the ridge weighted per feature by
  :math:`1 / d_j` (:func:`ridge_weights`); a penalty without a ridge part fits the same under
  both, one whose squared term is in the feature metric (mean, graph, clustered, the
  temporal smoothing) refuses it unless every weight is 1.

How the solvers see it, each step exact:

- :math:`d_j = \infty` (or ``exclude``): the column is left out; its row of W is 0.
- :math:`0 < d_j < \infty`: a change of unit, :math:`\tilde x_j = x_j / d_j`,
  :math:`v_j = d_j w_j`: the solver fits the plain penalty on :math:`\tilde X` (every solver,
  screening rule, working set and duality gap as they are), and :math:`W = D^{-1} V`. The
  objective is the same number at corresponding points, so the certificate is the fit's.
  Under ``"glmnet"`` the penalty also carries the ridge's weights :math:`r_j = 1 / d_j`
  (:class:`~regmtl.penalties.factored.PartlyPenalized`: the prox's shrink
  :math:`1 / (1 + s l_2 r_j)`, block coordinate descent with a ridge per entry, the conjugate
  :math:`\sum (\|G_g\| - a)_+^2 / (2 l_2 r_j)`: a duality gap wherever the change of unit
  has one).
- :math:`d_j = 0` (unpenalized): with the squared loss on a dense design, the free columns
  (and the intercept) are projected out of each task's rows exactly
  (Frisch-Waugh-Lovell, the projection weighted by the rows' weights, its small Gram's
  pseudo-inverse kept), the penalized problem is solved on the projected rows, and the free
  coefficients are the weighted least squares of the residuals: the duality gap of the
  projected problem certifies the whole (its dual points are those orthogonal to the free
  columns). Otherwise the free rows enter :class:`~regmtl.penalties.factored.PartlyPenalized`
  (no penalty on them at all, never a small one), certified by the KKT residual.
- :math:`d_{jt} = 0` in some tasks only (a penalty separable over tasks: a sum of one term
  per entry, so that entry's term is dropped): the same, per task: projected out of the rows
  of the tasks where it is free (its column there then 0, so the penalty holds the penalized
  entry at 0) and certified by the duality gap, else free entries of
  :class:`~regmtl.penalties.factored.PartlyPenalized` and the KKT residual. A penalty that
  couples the tasks has no term of one task alone to drop: refused by name.
- bounds: a box in the prox (:class:`~regmtl.penalties.factored.PartlyPenalized`), refused by
  name where the penalty's prox takes none.
- ``standardize=True``: each column's unit is its standard deviation over the rows of the
  objective (weighted by the row weights; about the weighted mean with intercepts, about 0
  without), i.e. the factor :math:`d_j s_j`; coefficients are reported in the input's units,
  as glmnet does. A column constant over those rows is left out with intercepts (the
  intercepts carry it), and keeps the unit 1 without. Under ``"glmnet"`` the ridge weight
  stays :math:`1 / d_j`: glmnet's :math:`d_j` on the standardized coefficient
  :math:`s_j w_j`, :math:`d_j s_j^2 w_j^2`.
- ``standardize="task"``: each task's columns in that task's own units :math:`s_{jt}` (the
  same deviation over the task's rows alone), i.e. the unit :math:`d_j s_{jt}` of entry
  :math:`(j, t)`: the penalty acts on :math:`V` with :math:`v_{jt} = d_j s_{jt} w_{jt}`, each
  task's design columns divided by their units (:func:`task_deviations`). For the penalties
  separable over tasks this is a factor per feature and task; for those that couple the
  tasks (L2,1, trace, ...) it is a change of each task's units, exact as above. A column
  constant within task t (:math:`s_{jt} = 0`) keeps the unit 1 there; with intercepts its
  values in that task are replaced by 0 and its constant :math:`\kappa_{jt}` is carried by
  the task's intercept (:math:`b_t = b'_t - \kappa_{jt} w_{jt}`), so the penalties of
  entries and rows give it the coefficient 0 there, as ``True`` leaves a constant column out;
  constant in every task, it is left out. One design shared by the tasks (a target matrix)
  takes it where its tasks weigh the rows alike (no label missing in one task only: it is
  then ``True``), else it is refused by name. Under ``"glmnet"`` the ridge weight of entry
  :math:`(j, t)` is again :math:`1 / d_j` (:math:`1 / d_{jt}` for factors per task), so the
  ridge is :math:`d_j s_{jt}^2 w_{jt}^2`: glmnet's ridge of each task's standardized
  coefficient, as a fit of each task alone on its own standardized columns has it, exact
  for the L2,1 ridge too (its weights stay one per feature). A factor 0 in some tasks only
  leaves the entry free in those tasks (unit 1, no deviation taken), as without
  standardization.

Factors are rescaled as glmnet rescales them, unless ``rescale_factors=False``: an excluded
feature counts as a factor of 1, and the factors then sum to the number of features (with
nothing excluded: the finite factors sum to their number).

>>> import numpy as np
>>> from regmtl.feature_terms import feature_terms, ridge_weights
>>> from regmtl import ElasticNet
>>> terms = feature_terms([0.0, 0.5, 2.0], None, None, None, False, False, 3, 1,
...                       factor_convention="glmnet")
>>> ridge_weights(terms, ElasticNet(0.5), 1.0).tolist()  # 1 / d_j where 0 < d_j < inf
[1.0, 2.0, 0.5]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .penalties import Penalty
from .penalties.factored import PartlyPenalized, box_kind, box_refusal

__all__ = ["CONVENTIONS", "FeatureTerms", "Reduced", "box_holds_zero", "by_position",
           "check_convention", "check_fitted", "check_standardize", "feature_terms",
           "grid_reference", "reduce_problem", "ridge_weights", "task_deviations", "terms_of"]


@dataclass(frozen=True)
class FeatureTerms:
    """The checked per-feature terms of a fit, in the input's units.

    ``factor``: (p,) or (p, T), rescaled, ``inf`` where a feature is excluded; ``lower`` /
    ``upper``: None or (p, T) arrays (``-inf`` / ``inf`` where unbounded); ``standardize``:
    whether the columns' standard deviations multiply the factors (False, True: over all the
    objective's rows, ``"task"``: each task's own); ``convention``: how a factor enters a
    ridge part, ``"unit"`` (:math:`d_j^2`) or ``"glmnet"`` (:math:`d_j`)."""

    factor: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    standardize: bool | str
    convention: str = "unit"

    @property
    def per_task(self) -> bool:
        return self.factor.ndim == 2


# --------------------------------------------------------------------- checking
def _by_feature(value: Any, name: str, n_features: int, feature_names: Any, fill: float,
                n_tasks: int, allow_tasks: bool) -> np.ndarray:
    """A per-feature array from a scalar, a (p,) or (p, T) array, or a dict keyed by feature
    name or position (features left out take ``fill``)."""
    if isinstance(value, dict):
        out = np.full(n_features, fill, dtype=np.float64)
        names = None if feature_names is None else [str(f) for f in feature_names]
        for key, v in value.items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                j = int(key)
                if not 0 <= j < n_features:
                    raise ValueError(f"{name}: feature {j} is out of range for "
                                     f"{n_features} features.")
            elif names is not None and str(key) in names:
                j = names.index(str(key))
            else:
                known = "the columns are " + ", ".join(names[:8]) + (
                    ", ..." if len(names) > 8 else "") if names else \
                    "the input had no column names: key by position"
                raise ValueError(f"{name}: unknown feature {key!r} ({known}).")
            out[j] = _number(v, f"{name}[{key!r}]")
        return out
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers (a scalar, one per feature, or a dict "
                         f"keyed by feature); got {type(value).__name__}.") from None
    if arr.ndim == 0:
        return np.full(n_features, float(arr))
    if arr.shape == (n_features,):
        return arr.copy()
    if arr.shape == (n_features, n_tasks) and allow_tasks:
        return arr.copy()
    shapes = f"({n_features},)" + (f" or ({n_features}, {n_tasks})" if allow_tasks else "")
    raise ValueError(f"{name} has shape {arr.shape}; expected a scalar or shape {shapes} "
                     f"(one per feature{', or per feature and task' if allow_tasks else ''}).")


def _number(v: Any, name: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {v!r}.") from None


def by_position(terms: dict, feature_names: Any, n_features: int) -> dict:
    """``terms`` (the estimators' parameters by name) with every dict keyed by feature and
    every list of feature names as arrays by position, for problems that carry no column
    names (a CV's folds); checked as a fit checks them."""
    out = dict(terms)
    for key, fill in (("penalty_factor", 1.0), ("lower_bounds", -np.inf),
                      ("upper_bounds", np.inf)):
        if isinstance(out.get(key), dict):
            out[key] = _by_feature(out[key], key, n_features, feature_names, fill, 1, False)
    if out.get("exclude") is not None:
        out["exclude"] = _excluded(out["exclude"], n_features, feature_names)
    return out


def _excluded(exclude: Any, n_features: int, feature_names: Any) -> np.ndarray:
    """``exclude`` (positions, names or a bool mask) as a bool mask of the features."""
    mask = np.zeros(n_features, dtype=bool)
    if exclude is None:
        return mask
    arr = np.asarray(exclude)
    if arr.dtype == bool:
        if arr.shape != (n_features,):
            raise ValueError(f"exclude: a mask of shape {arr.shape} for {n_features} "
                             "features.")
        return arr.copy()
    keys = list(np.atleast_1d(arr).tolist()) if not isinstance(exclude, (list, tuple)) \
        else list(exclude)
    marks = _by_feature({k: 1.0 for k in keys}, "exclude", n_features, feature_names, 0.0,
                        1, False)
    return marks > 0


def check_standardize(standardize: Any) -> bool | str:
    """``standardize`` checked: ``False``, ``True`` (each column in its standard deviation over
    all the objective's rows) or ``"task"`` (each task's columns in that task's own); a
    ``ValueError`` naming the argument and the values it takes otherwise."""
    if isinstance(standardize, (bool, np.bool_)):
        return bool(standardize)
    if isinstance(standardize, str) and standardize == "task":
        return "task"
    raise ValueError(f"standardize must be False, True (each column in its standard "
                     f"deviation over all the rows) or 'task' (each task's columns in that "
                     f"task's own standard deviations); got {standardize!r}.")


#: the values of ``factor_convention``: how a penalty factor enters a ridge part
CONVENTIONS = ("unit", "glmnet")


def check_convention(factor_convention: Any) -> str:
    """``factor_convention`` checked: one of :data:`CONVENTIONS` (``ValueError`` naming it and
    the values otherwise)."""
    if not isinstance(factor_convention, str) or factor_convention not in CONVENTIONS:
        raise ValueError(f"factor_convention={factor_convention!r} is not known; use 'unit' "
                         "(a factor is a change of unit: a ridge part sees d_j^2) or "
                         "'glmnet' (glmnet's penalty.factor: the ridge part weighed by d_j).")
    return factor_convention


def feature_terms(penalty_factor: Any, exclude: Any, lower_bounds: Any, upper_bounds: Any,
                  rescale_factors: bool, standardize: bool | str, n_features: int,
                  n_tasks: int, feature_names: Any = None, penalty: Penalty | None = None,
                  factor_convention: str = "unit") -> FeatureTerms | None:
    """The checked terms, or None when they change nothing (no factor but ones, nothing
    excluded, no bound, no standardization): the fit is then today's, bit for bit.

    Raises ``ValueError`` naming the argument: a factor that is NaN or negative, a bound that
    is NaN, ``lower > upper``, a shape that fits neither p nor p x T, factors per task where
    ``penalty`` does not separate over tasks, every feature excluded, a ``standardize``
    other than False, True and ``"task"``, or an unknown ``factor_convention``."""
    convention = check_convention(factor_convention)
    p, T = n_features, n_tasks
    standardize = check_standardize(standardize)
    if penalty_factor is None and exclude is None and lower_bounds is None and \
            upper_bounds is None and not standardize:
        return None  # (nothing formed: a plain fit allocates nothing of size p here)
    if penalty_factor is None:
        factor = np.ones(p)
    else:
        factor = _by_feature(penalty_factor, "penalty_factor", p, feature_names, 1.0, T, True)
        if np.isnan(factor).any() or (factor < 0).any():
            bad = np.flatnonzero(np.isnan(factor).ravel() | (factor.ravel() < 0))[0]
            raise ValueError(f"penalty_factor must be >= 0 (0: unpenalized, inf: excluded); "
                             f"entry {bad} is {factor.ravel()[bad]!r}.")
        if factor.ndim == 2 and penalty is not None and not penalty.separates_over_tasks:
            raise ValueError(f"penalty_factor of shape (p, T) needs a penalty separable over "
                             f"tasks (l1, l2, elasticnet); {penalty!r} couples the tasks (a "
                             "feature's coefficients of all tasks are penalized together, so "
                             "neither a factor nor a 0 can be one task's alone): give one "
                             "factor per feature, shape (p,).")
    drop = _excluded(exclude, p, feature_names)
    if drop.any():
        factor = factor.copy()
        factor[drop] = np.inf
    full_rows = np.isinf(factor) if factor.ndim == 1 else np.isinf(factor).all(axis=1)
    if full_rows.all():
        raise ValueError("penalty_factor / exclude: every feature is excluded; keep one.")
    finite = np.isfinite(factor)
    if rescale_factors and finite.any() and factor[finite].sum() > 0:
        # glmnet's rule: an excluded feature counts as a factor of 1, and the factors sum to
        # the number of features
        scale = factor.size / (factor[finite].sum() + (~finite).sum())
        factor = np.where(finite, factor * scale, factor)
    lower = upper = None
    if lower_bounds is not None:
        lower = np.broadcast_to(_by_feature(lower_bounds, "lower_bounds", p, feature_names,
                                            -np.inf, T, True).reshape(p, -1), (p, T)).copy()
    if upper_bounds is not None:
        upper = np.broadcast_to(_by_feature(upper_bounds, "upper_bounds", p, feature_names,
                                            np.inf, T, True).reshape(p, -1), (p, T)).copy()
    for name, b, wrong in (("lower_bounds", lower, np.inf), ("upper_bounds", upper, -np.inf)):
        if b is not None and np.isnan(b).any():
            raise ValueError(f"{name} holds NaN; use -inf / inf for no bound.")
        if b is not None and np.any(b == wrong):
            raise ValueError(f"{name} holds {wrong}: no coefficient can reach it; use "
                             f"{-wrong} for no bound.")
    if lower is not None and upper is not None and (lower > upper).any():
        j, t = np.argwhere(lower > upper)[0]
        raise ValueError(f"lower_bounds > upper_bounds at feature {j}, task {t} "
                         f"({lower[j, t]} > {upper[j, t]}).")
    if lower is not None and (lower == -np.inf).all():
        lower = None
    if upper is not None and (upper == np.inf).all():
        upper = None
    if not standardize and lower is None and upper is None and np.all(factor == 1.0):
        return None
    return FeatureTerms(factor, lower, upper, standardize, convention)


def terms_of(model: Any, n_features: int, n_tasks: int, penalty: Penalty | None = None, *,
             rescale: bool | None = None) -> FeatureTerms | None:
    """:func:`feature_terms` of an estimator's seven per-feature parameters
    (``penalty_factor``, ``exclude``, ``lower_bounds``, ``upper_bounds``, ``rescale_factors``,
    ``standardize``, ``factor_convention``, each absent one at its default) and its
    ``feature_names_in_``; ``rescale`` in place of its ``rescale_factors`` where given."""
    if rescale is None:
        rescale = getattr(model, "rescale_factors", True)
    return feature_terms(*(getattr(model, name, None) for name in (
        "penalty_factor", "exclude", "lower_bounds", "upper_bounds")), rescale,
        getattr(model, "standardize", False), n_features, n_tasks,
        getattr(model, "feature_names_in_", None), penalty,
        getattr(model, "factor_convention", "unit"))


def check_fitted(terms: FeatureTerms | None, W: np.ndarray) -> None:
    """That fitted coefficients W (p x T, the input's units) keep the terms they were fitted
    under: an excluded feature's row exactly 0, every entry inside its bounds (to rounding
    of the change of units, ``1e-12`` relative). ``ValueError`` naming the feature and task
    otherwise (a model file whose coefficients were changed after the fit)."""
    if terms is None:
        return
    W = np.asarray(W, dtype=np.float64)
    gone = np.isinf(_col(terms.factor))  # (p, 1) or (p, T)
    if gone.shape[1] in (1, W.shape[1]) and np.any(W[np.broadcast_to(gone, W.shape)] != 0.0):
        j, t = np.argwhere(gone & (W != 0.0))[0]
        raise ValueError(f"coef_ of the excluded feature {j} is {float(W[j, t])!r} in task "
                         f"{t}, not 0.")
    for name, b, outside in (("lower_bounds", terms.lower, np.less),
                             ("upper_bounds", terms.upper, np.greater)):
        if b is None:
            continue
        if b.shape != W.shape:  # (the classes' layout: a bound shared by the columns)
            if not np.all(b == b[:, :1]):
                continue
            b = np.broadcast_to(b[:, :1], W.shape)
        slack = 1e-12 * np.maximum(np.abs(b), 1.0)
        edge = b - slack if outside is np.less else b + slack
        with np.errstate(invalid="ignore"):
            bad = outside(W, edge) & np.isfinite(b)
        if bad.any():
            j, t = np.argwhere(bad)[0]
            raise ValueError(f"coef_ at feature {j}, task {t} is {float(W[j, t])!r}, outside "
                             f"its {name} {float(b[j, t])!r}.")


# --------------------------------------------------------------------- the reduced problem
@dataclass
class Reduced:
    """The problem the solver sees, and the way back to the input's coefficients.

    ``kept`` (p,): the columns not excluded; ``scale``: the unit of each kept column
    ((p',) or (p', T); 1 on free entries); ``free`` (p',): the features unpenalized in every
    task; ``partial``: None, or (p', T) the entries unpenalized in their task on the other
    features; ``projection``: the Frisch-Waugh-Lovell pieces where the free columns (and the
    intercept) were projected out (then ``fit_intercept`` is False); ``shift`` (p', T) or
    None: the constant of each column replaced by 0 in a task where it is constant
    (``standardize="task"`` with intercepts), carried by that task's intercept."""

    data: Any
    penalty: Penalty
    fit_intercept: bool
    kept: np.ndarray
    scale: np.ndarray
    free: np.ndarray
    projection: Any = None
    partial: np.ndarray | None = None
    shift: np.ndarray | None = None

    def start(self, W0: np.ndarray | None) -> np.ndarray | None:
        """A start in the input's units (p x T) as the reduced problem's variable."""
        if W0 is None:
            return None
        V = np.asarray(W0, dtype=np.float64)[self.kept] * _col(self.scale)
        if self.projection is not None:
            if self.partial is not None:  # (their columns are projected out: 0)
                V = np.where(self.partial, 0.0, V)
            V = V[~self.free]
        return V

    def start_intercept(self, W0: np.ndarray | None, b0: np.ndarray | None
                        ) -> np.ndarray | None:
        r"""A start's intercepts (T,) as the reduced problem's: :math:`b'_t = b_t +
        \sum_j \kappa_{jt} w_{jt}` over the columns replaced by 0 in task t (``shift``)."""
        if b0 is None or W0 is None or self.shift is None:
            return b0
        W0 = np.asarray(W0, dtype=np.float64)[self.kept]
        return np.asarray(b0, dtype=np.float64) + (self.shift * W0).sum(axis=0)

    def coefficients(self, V: np.ndarray, b: np.ndarray, n_features: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` in the input's units from the reduced problem's solution."""
        T = V.shape[-1]
        Wk = np.zeros((int(self.kept.sum()), T))
        if self.projection is not None:
            Wk[~self.free] = V / _col(self.scale)[~self.free]
            b, Wz = self.projection.free_part(V)  # (free entries: unit 1)
            Wk[self.free] = Wz[:int(self.free.sum())]
            if self.partial is not None:
                rows = self.projection.partial_rows
                Wk[rows] = np.where(self.partial[rows], Wz[int(self.free.sum()):], Wk[rows])
        else:
            Wk[...] = V / _col(self.scale)
        W = np.zeros((n_features, T))
        W[self.kept] = Wk
        if self.shift is not None:  # (a constant column's part in its task's intercept)
            b = np.asarray(b, dtype=np.float64) - (self.shift * Wk).sum(axis=0)
        return W, b

    def unscaled_variable(self, V: np.ndarray, n_features: int) -> np.ndarray:
        """A lifted variable (..., p', T) in the input's units on all p features."""
        s = _col(self.scale)
        out = np.zeros(V.shape[:-2] + (n_features, V.shape[-1]))
        out[..., self.kept, :] = V / s
        return out


def _col(scale: np.ndarray) -> np.ndarray:
    return scale[:, None] if scale.ndim == 1 else scale


def column_deviations(data: Any, fit_intercept: bool) -> np.ndarray:
    """Each column's standard deviation over the rows of the objective, weighted by the row
    weights ``c`` (about the weighted mean with intercepts, about 0 without)."""
    c = np.asarray(data.c, dtype=np.float64)
    X = data.X
    if data.shared:  # one weight per row of the shared design: its tasks' weights summed
        c = c.reshape(data.n_tasks, -1).sum(axis=0)
    total = c.sum()
    w = c / total if total > 0 else np.full(c.size, 1.0 / max(c.size, 1))
    if sp.issparse(X):
        X = X.tocsc()
        m = np.asarray(X.T @ w).ravel() if fit_intercept else np.zeros(X.shape[1])
        col = np.repeat(np.arange(X.shape[1]), np.diff(X.indptr))
        wr = w[X.indices]
        d = X.data - m[col]  # (two passes: exact for a column far from 0; its zeros below)
        full = np.diff(X.indptr) == X.shape[0]  # (no zero left out: none, not a rounding)
        unstored = np.where(full, 0.0, w.sum() - np.bincount(col, wr, minlength=X.shape[1]))
        sq = np.bincount(col, wr * d * d, minlength=X.shape[1]) + m * m * unstored
    else:
        X = np.asarray(X)
        m = w @ X if fit_intercept else np.zeros(X.shape[1])
        sq = w @ ((X - m) ** 2)  # (two passes: a constant column far from 0 gives 0)
    return np.sqrt(np.maximum(sq, 0.0))


def task_deviations(data: Any, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Each task's standard deviation and mean of each column over its own rows, weighted
    by the row weights ``c`` (the objective's): ``(s, m)``, both (p, T), with

    .. math::

        m_{jt} = \frac{\sum_{r \in t} c_r x_{rj}}{\sum_{r \in t} c_r}, \qquad
        s_{jt}^2 = \frac{\sum_{r \in t} c_r (x_{rj} - m_{jt})^2}{\sum_{r \in t} c_r}

    (about 0 without intercepts: :math:`m = 0`; a task without weight has :math:`s = m = 0`).
    Two passes over the rows, segment sums over ``indptr`` (no loop over tasks). The stacked
    layout only: one design shared by the tasks has one column for all of them."""
    if data.shared:
        raise ValueError(_SHARED_TASK_UNITS)
    c = np.asarray(data.c, dtype=np.float64)
    T, p = data.n_tasks, data.n_features
    tot = np.asarray(data.task_sums(c), dtype=np.float64)
    safe = np.where(tot > 0, tot, 1.0)[:, None]
    rows = data.task_of
    X = data.X
    if sp.issparse(X):
        coo = X.tocoo()
        seg = rows[coo.row]
        key = seg * p + coo.col
        cr = c[coo.row]
        m = np.bincount(key, cr * coo.data, minlength=T * p).reshape(T, p) / safe \
            if fit_intercept else np.zeros((T, p))
        d = coo.data - m[seg, coo.col]
        # (the weight of a task's zeros left out of a column: none where the column stores
        # every row of the task, not the rounding of a difference, which would give a
        # column constant there a deviation of 1e-8 of its level)
        full = np.bincount(key, minlength=T * p).reshape(T, p) == np.diff(data.indptr)[:, None]
        unstored = np.where(full, 0.0,
                            tot[:, None] - np.bincount(key, cr, minlength=T * p).reshape(T, p))
        sq = np.bincount(key, cr * d * d, minlength=T * p).reshape(T, p) + m * m * unstored
    else:  # (a column at a time: O(N) memory, each column contiguous in a Fortran X)
        X = np.asarray(X)
        m, sq = np.zeros((T, p)), np.empty((T, p))
        for j in range(p):
            x = X[:, j]
            if fit_intercept:
                m[:, j] = data.task_sums(c * x) / safe[:, 0]
                x = x - m[rows, j]
            sq[:, j] = data.task_sums(c * x * x)
    s = np.sqrt(np.maximum(sq, 0.0) / safe)
    return np.ascontiguousarray(s.T), np.ascontiguousarray(m.T)


_SHARED_TASK_UNITS = (
    "standardize='task' on one design with a target matrix: the tasks share its columns, and "
    "a label missing in some tasks only gives them different deviations, which one column "
    "cannot hold. Give the tasks one design each (a list, or the long form with task=), or "
    "use standardize=True.")


def _rows_alike(data: Any) -> bool:
    """Whether the tasks of a shared design weigh its rows alike (each task's deviations are
    then the pooled ones)."""
    C = np.asarray(data.c, dtype=np.float64).reshape(data.n_tasks, -1)
    tot = C.sum(axis=1, keepdims=True)
    return bool(np.all(tot > 0) and np.allclose(C / tot, C[0] / tot[0], rtol=1e-12,
                                                 atol=0.0))


def _task_units(factor: np.ndarray, data: Any, fit_intercept: bool
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``standardize="task"``: the units :math:`d_j s_{jt}` (p, T), and with intercepts the
    entries whose column is constant in their task (replaced by 0 there, unit 1) with those
    constants, or None; a column constant in every task is left out (``inf``)."""
    sd, mean = task_deviations(data, fit_intercept)
    flat = sd <= 1e-12 * np.maximum(np.abs(mean), sd.max(axis=0, initial=0.0))
    sd = np.where(flat, 1.0, sd)
    factor = (factor if factor.ndim == 2 else factor[:, None]) * sd
    if not fit_intercept or not flat.any():
        return factor, None, None
    everywhere = flat.all(axis=1)
    factor[everywhere] = np.inf  # (as standardize=True leaves a constant column out)
    some = flat & ~everywhere[:, None]
    if not some.any():
        return factor, None, None
    return factor, some, np.where(some, mean, 0.0)


def ridge_weights(terms: FeatureTerms, penalty: Penalty, alpha: float
                  ) -> np.ndarray | None:
    r"""The per-feature weights of the penalty's ridge in the reduced problem's units, or
    None where they are all 1 (the fit is the change of unit's).

    Under ``"glmnet"`` a factor :math:`d_j` weighs the ridge by :math:`d_j`: in the units
    :math:`v_j = d_j s_j w_j` of the reduced problem (:math:`s_j` the deviation under
    ``standardize``, else 1) the ridge of the change of unit,
    :math:`v_j^2 = d_j^2 s_j^2 w_j^2`, is weighted by :math:`1 / d_j`, giving glmnet's
    :math:`d_j s_j^2 w_j^2` (its ridge of the standardized coefficient); under
    ``standardize="task"`` the same weight on :math:`v_{jt} = d_j s_{jt} w_{jt}` gives
    :math:`d_j s_{jt}^2 w_{jt}^2`, each task's standardized coefficient. Refused
    (``ValueError``) where the penalty's squared term is not a ridge it can weigh
    (:meth:`~regmtl.Penalty.ridge_part` None) and the weights are not all 1."""
    if terms.convention != "glmnet":
        return None
    d = terms.factor
    live = np.isfinite(d) & (d > 0)
    if np.all(d[live] == 1.0):
        return None
    part = penalty.ridge_part(alpha if alpha > 0 else 1.0)
    if part is None:
        raise ValueError(
            f"factor_convention='glmnet' weighs a ridge part by d_j, and {penalty!r} has a "
            "squared term that is no ridge of entries or rows (a quadratic in the feature "
            "metric, which glmnet has no counterpart of): use factor_convention='unit', "
            "where a factor is a change of the feature's unit.")
    if part == 0.0:
        return None
    return np.where(live, 1.0 / np.where(live, d, 1.0), 1.0)


def reduce_problem(terms: FeatureTerms, data: Any, datafit: Any, penalty: Penalty,
                   alpha: float, fit_intercept: bool) -> Reduced:
    """The problem of ``regmtl.feature_terms`` for the solvers (see the module's
    docstring): columns excluded, rescaled, the free ones projected out or left free, the
    box and the ridge weights in the penalty. Raises ``ValueError`` naming what the input or
    penalty cannot take."""
    if not getattr(data, "rows_local", True):
        raise ValueError("penalty_factor, exclude, lower_bounds, upper_bounds and standardize "
                         "take data in memory; a fit on Dask task blocks takes none of them.")
    T = data.n_tasks
    factor = terms.factor
    if factor.ndim == 2 and factor.shape[1] != T:
        raise ValueError(f"penalty_factor of shape (p, T) has {factor.shape[1]} columns for "
                         f"{T} tasks (on the classes' layout a task has a column per class: "
                         "give one factor per feature).")
    if factor.ndim == 2 and data.shared:
        raise ValueError("penalty_factor of shape (p, T) scales each task's columns apart: "
                         "give the tasks one design each (a list, or the long form with "
                         "task=), not one design with a target matrix.")
    ridge = ridge_weights(terms, penalty, alpha)  # (1 / d: the units' deviations cancel)
    zero = shift = None
    if terms.standardize == "task" and data.shared and not _rows_alike(data):
        raise ValueError(_SHARED_TASK_UNITS)
    if terms.standardize == "task" and not data.shared:
        factor, zero, shift = _task_units(factor, data, fit_intercept)
    elif terms.standardize:  # (pooled; on a shared design whose tasks weigh rows alike, each
        sd = column_deviations(data, fit_intercept)  # task's deviations are these)
        flat = sd <= 1e-12 * max(float(sd.max(initial=0.0)), 1e-300)
        sd = np.where(flat, 1.0, sd)
        factor = factor * (sd if factor.ndim == 1 else sd[:, None])
        factor = np.where(flat if factor.ndim == 1 else flat[:, None], np.inf, factor) \
            if fit_intercept else factor
    rows_out = np.isinf(factor) if factor.ndim == 1 else np.isinf(factor).all(axis=1)
    kept = ~rows_out
    f = factor[kept]
    ridge = None if ridge is None else ridge[kept]
    if zero is not None:
        zero, shift = zero[kept], shift[kept]
    lower = None if terms.lower is None else terms.lower[kept]
    upper = None if terms.upper is None else terms.upper[kept]
    if f.ndim == 2 and np.isinf(f).any():  # an entry left out: the bound 0 <= w <= 0
        gone = np.isinf(f)
        lower = np.where(gone, 0.0, -np.inf if lower is None else lower)
        upper = np.where(gone, 0.0, np.inf if upper is None else upper)
        f = np.where(gone, 1.0, f)
    free = (f == 0.0) if f.ndim == 1 else (f == 0.0).all(axis=1)
    partial = None
    if f.ndim == 2 and ((f == 0.0) & ~free[:, None]).any():
        if not penalty.separates_over_tasks:
            raise ValueError(f"penalty_factor of shape (p, T): a feature unpenalized in some "
                             f"tasks only needs a penalty separable over tasks; {penalty!r} "
                             "couples the tasks (a feature's coefficients of all tasks are "
                             "penalized together): give the feature 0 in every task or "
                             "none.")
        partial = (f == 0.0) & ~free[:, None]
    if (free.any() or partial is not None or rows_out.any()) and \
            type(penalty).feature_blocks is not Penalty.feature_blocks:
        raise ValueError(f"{penalty!r} takes positive finite penalty factors only: its blocks "
                         "of features name every column, so a feature cannot be left "
                         "unpenalized (0) or out (inf, exclude) of them.")
    scale = np.where(f == 0.0, 1.0, f)
    work = data.with_columns(kept) if rows_out.any() else data
    if np.any(scale != 1.0) or zero is not None:
        work = _scaled(work, scale, zero)
    if lower is not None:
        lower = lower * _col(scale)
    if upper is not None:
        upper = upper * _col(scale)
    loose = free[:, None] if partial is None else (free[:, None] | partial)
    bounded_free = loose.any() and any(
        b is not None and np.isfinite(b[np.broadcast_to(loose, b.shape)]).any()
        for b in (lower, upper))
    if loose.any() and not bounded_free and _projects(work, datafit, free):
        proj = Projection(work, free, fit_intercept, partial)
        pen_rows = ~free
        boxed = lower is not None or upper is not None
        if boxed:
            _check_box(penalty, alpha)
        pen = penalty
        if boxed or ridge is not None:
            pen = PartlyPenalized(penalty, np.ones(int(pen_rows.sum()), dtype=bool),
                                  None if lower is None else lower[pen_rows],
                                  None if upper is None else upper[pen_rows],
                                  None if ridge is None else ridge[pen_rows])
        return Reduced(proj.data, pen, False, kept, scale, free, proj, partial, shift)
    if loose.any() or lower is not None or upper is not None or ridge is not None:
        if (lower is not None or upper is not None) and not free.all():
            pen_rows = ~free
            touched = any(b is not None and np.isfinite(b[pen_rows]).any()
                          for b in (lower, upper))
            if touched:
                _check_box(penalty, alpha)
        penalty = PartlyPenalized(penalty, ~free if partial is None else f != 0.0, lower,
                                  upper, ridge)
    return Reduced(work, penalty, fit_intercept, kept, scale, free, partial=partial,
                   shift=shift)


def _check_box(penalty: Penalty, alpha: float) -> None:
    if box_kind(penalty, alpha) is None:
        raise ValueError(box_refusal(penalty))


def _scaled(data: Any, scale: np.ndarray, zero: np.ndarray | None = None) -> Any:
    """The problem on the columns divided by their units (a copy of the design; per task
    where ``scale`` is (p, T); ``x_shift`` scaled alike); ``zero`` (p, T) or None: entries
    whose column is replaced by 0 in that task's rows."""
    M = 1.0 / scale
    if zero is not None:
        M = np.where(zero, 0.0, M)
    return _multiplied(data, M)


def _multiplied(data: Any, M: np.ndarray) -> Any:
    """The problem on the columns multiplied by ``M`` ((p,), or (p, T): each task's rows by
    its column; a copy of the design, ``x_shift`` multiplied alike; a sparse design keeps no
    entry multiplied by 0)."""
    X = data.X
    M = np.asarray(M, dtype=np.float64)
    if M.ndim == 1:
        X = (X @ sp.diags(M)).tocsc() if sp.issparse(X) and X.format == "csc" else (
            sp.csr_matrix(X @ sp.diags(M)) if sp.issparse(X) else np.asfortranarray(
                np.asarray(X) * M))
        shift = None if data.x_shift is None else data.x_shift * M[:, None]
    else:
        by_task = M.T  # (T, p)
        rows = data.task_of
        if sp.issparse(X):
            coo = X.tocoo()
            X = sp.csc_matrix((coo.data * by_task[rows[coo.row], coo.col],
                               (coo.row, coo.col)), shape=X.shape)
            if not by_task.all():
                X.eliminate_zeros()
        else:  # (a column at a time: each contiguous in a Fortran X, no (N, p) gather)
            X = np.asarray(X)
            out = np.empty(X.shape, order="F")
            for j in range(X.shape[1]):
                np.multiply(X[:, j], by_task[rows, j], out=out[:, j])
            X = out
        shift = None if data.x_shift is None else data.x_shift * M
    return dataclasses.replace(data, X=X, x_shift=shift, _cache={})


def _projects(data: Any, datafit: Any, free: np.ndarray) -> bool:
    """Whether the free columns are projected out exactly: the squared loss (one for every
    task), a dense design in this process, the stacked layout or a shared one whose tasks
    weigh its rows alike."""
    if getattr(datafit, "name", "") != "squared" or sp.issparse(data.X) or \
            data.class_blocks is not None:
        return False
    if data.shared:
        C = np.asarray(data.c).reshape(data.n_tasks, -1)
        tot = C.sum(axis=1, keepdims=True)
        return bool(np.all(tot > 0) and np.allclose(C / tot, C[0] / tot[0], rtol=0,
                                                     atol=1e-15))
    return True


class Projection:
    r"""The free columns Z of every task (with the column of ones where intercepts are
    fitted) projected out of its rows, in the rows' weights ``c``:
    :math:`\tilde X_t = X_t - Z_t A_t^{+} Z_t^\top C_t X_t` with :math:`A_t = Z_t^\top C_t
    Z_t` (its pseudo-inverse kept: collinear dummies are fine), the same for ``y``. A feature
    free in some tasks only (``partial``, p x T) is one of task t's columns Z_t where it is
    free there (a column of zeros in the other tasks' rows); its penalized column in task t is
    then 0 (projected out), so that the penalty holds that entry at 0.
    :meth:`free_part` gives the free coefficients and intercepts of penalized ones."""

    def __init__(self, data: Any, free: np.ndarray, fit_intercept: bool,
                 partial: np.ndarray | None = None):
        self.source = data
        self.free = free
        self.fit_intercept = fit_intercept
        self.partial_rows = np.zeros(free.size, dtype=bool) if partial is None else \
            partial.any(axis=1)
        X = np.asarray(data.X)
        Z = np.hstack([X[:, free], X[:, self.partial_rows]])
        if partial is not None:  # (a partly free column: in the rows of its free tasks)
            Z[:, int(free.sum()):] *= partial[self.partial_rows].T[data.task_of]
        if fit_intercept:
            Z = np.hstack([np.ones((X.shape[0], 1)), Z])
        self.k = Z.shape[1]
        P = np.asfortranarray(X[:, ~free])
        y = np.asarray(data.y, dtype=np.float64)
        if data.shared:
            n = X.shape[0]
            w = np.asarray(data.c).reshape(data.n_tasks, n)[0]
            A = Z.T @ (w[:, None] * Z)
            self.pinv = np.linalg.pinv(A, hermitian=True)[None]
            B = self.pinv[0] @ (Z.T @ (w[:, None] * P))
            Xr = np.asfortranarray(P - Z @ B)
            Y = y.reshape(data.n_tasks, n).T
            Yr = Y - Z @ (self.pinv[0] @ (Z.T @ (w[:, None] * Y)))
            yr = Yr.ravel(order="F")
        else:
            c = np.asarray(data.c, dtype=np.float64)
            cZ = c[:, None] * Z
            A = np.stack([_segment_sums(cZ * Z[:, [a]], data) for a in range(self.k)],
                         axis=1)  # (T, k, k)
            self.pinv = np.linalg.pinv(A, hermitian=True)
            ZtCP = np.stack([_segment_sums(cZ[:, [a]] * P, data) for a in range(self.k)],
                            axis=1)  # (T, k, p_pen)
            B = self.pinv @ ZtCP
            rows = data.task_of
            Xr = np.array(P, order="F", copy=True)
            for a in range(self.k):
                Xr -= Z[:, [a]] * B[rows, a, :]
            if partial is not None:  # (in its span: exactly 0, not its rounding)
                Xr *= ~partial[~free].T[rows]
            ZtCy = np.stack([_segment_sums(cZ[:, a] * y, data) for a in range(self.k)],
                            axis=1)  # (T, k)
            beta = np.einsum("tab,tb->ta", self.pinv, ZtCy)
            yr = y - np.einsum("ra,ra->r", Z, beta[rows])
        self.partial = partial
        self.Z = Z
        self.data = dataclasses.replace(data, X=Xr, y=yr, x_shift=None, _cache={})

    def free_part(self, W_pen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(b, W_free)``: the intercepts (T,) and the coefficients (k_free, T) of Z's
        columns (the features free in every task, then those free in some: 0 in the others)
        that minimize the weighted squares of each task's residual given its penalized ones
        ``W_pen`` (in the units of the columns this projection was built on; its partly free
        entries read as 0)."""
        data = self.source
        if self.partial is not None:
            W_pen = np.where(self.partial[~self.free], 0.0, W_pen)
        pen_cols = np.asarray(data.X)[:, ~self.free]
        part = dataclasses.replace(data, X=np.asfortranarray(pen_cols), x_shift=None,
                                   _cache={})
        r = np.asarray(data.y, dtype=np.float64) - part.linear(W_pen)
        T = data.n_tasks
        if data.shared:
            n = pen_cols.shape[0]
            w = np.asarray(data.c).reshape(T, n)[0]
            beta = (self.pinv[0] @ (self.Z.T @ (w[:, None] * r.reshape(T, n).T))).T
        else:
            c = np.asarray(data.c, dtype=np.float64)
            ZtCr = np.stack([_segment_sums(c * self.Z[:, a] * r, data)
                             for a in range(self.k)], axis=1)
            beta = np.einsum("tab,tb->ta", self.pinv, ZtCr)
        if self.fit_intercept:
            return beta[:, 0].copy(), np.ascontiguousarray(beta[:, 1:].T)
        return np.zeros(T), np.ascontiguousarray(beta.T)


def _segment_sums(A: np.ndarray, data: Any) -> np.ndarray:
    """Per-task sums of the rows of A ((N,) or (N, m)): (T,) or (T, m); 0 for a task
    without rows."""
    A = np.asarray(A)
    n_t = np.diff(data.indptr)
    out = np.zeros((data.n_tasks,) + A.shape[1:])
    full = n_t > 0
    if full.any():
        out[full] = np.add.reduceat(A, data.indptr[:-1][full], axis=0)
    return out


def grid_reference(red: Reduced, datafit: Any, ref: Any) -> Any:
    """The reference whose ``G0`` gives ``alpha_max`` of the reduced problem: ``ref`` (the
    problem at W = 0) where no entry is left free, else the gradient at the penalized entries
    with the free ones (and the intercepts) fitted, unpenalized, first (the rows of a loss
    with kinks given the subgradient that fit's optimality pins,
    :func:`~regmtl.solvers.certificates.kinks.kink_dual`). A feature free in some tasks only
    is fitted in those tasks, held at 0 in the others (the box ``[0, 0]``)."""
    pen = red.penalty
    if not isinstance(pen, PartlyPenalized) or pen.penalized.all():
        return ref
    from .penalties.separable import L1, L2, L21, ElasticNet
    from .solvers.certificates.certify import Reference
    from .solvers.certificates.kinks import kink_dual
    from .solvers.solve import solve

    data = red.data
    shape = (data.n_features, data.n_tasks)
    mask = pen._mask(shape)
    loose = ~mask.all(axis=1)  # (the rows with a free entry)
    part = data.with_columns(loose)
    held = mask[loose]  # (their entries penalized in their task: 0 in the free fit)
    fit_pen = L2() if not held.any() else PartlyPenalized(
        L2(), np.zeros(int(loose.sum()), dtype=bool), np.where(held, 0.0, -np.inf),
        np.where(held, 0.0, np.inf))
    res = solve(part, datafit, fit_pen, 0.0, fit_intercept=red.fit_intercept, tol=1e-10,
                max_iter=1000)
    f = part.linear(res.W, res.b if red.fit_intercept else None)
    if held.any():
        part = _multiplied(part, ~held)
    bound = datafit.bind(data)
    G0 = np.zeros(shape)
    rows = pen.rows
    penalized = data.with_columns(rows)
    entrywise = isinstance(pen.base, (L1, ElasticNet))  # (alpha_max: the largest |G_jt|)
    grouped = type(pen.base) is L21  # (alpha_max: the largest row norm of G)
    G0[rows] = penalized.adjoint(
        data.c * kink_dual(data, bound, f, part, red.fit_intercept,
                           penalized if entrywise or grouped else None, rows=grouped))
    return Reference(ref.b0, ref.f0, ref.P0, np.where(mask, G0, 0.0))


def box_holds_zero(red: Reduced) -> bool:
    """Whether W = 0 meets the bounds (else no alpha makes it the solution)."""
    pen = red.penalty
    if not isinstance(pen, PartlyPenalized):
        return True
    return (pen.lower is None or bool(np.all(np.asarray(pen.lower) <= 0))) and \
        (pen.upper is None or bool(np.all(np.asarray(pen.upper) >= 0)))
