r"""Knowledge transfer: a model for a new task from what a fitted multi-task model's tasks share.

At its optimum every penalty of the library is a *quadratic* penalty on each task in disguise
(variational forms: ``|w| = min_d (w^2/d + d)/2``, ``sum_j ||W_j|| = min_d sum_j (||W_j||^2/d_j
+ d_j)/2``, ``||W||_* = min_D (tr(W^T D^-1 W) + tr D)/2`` with ``D = (W W^T)^(1/2)``). A new
task inherits that quadratic, with the old tasks' ``d`` or ``D``, and is fitted by a generalized
ridge toward a prior mean::

    minimize_{z, b}  1/(2n) sum_i s_i (y_i - x_i . (w0 + B z) - b)^2  +  alpha/2 sum_k lam_k z_k^2

(the logistic loss for classifiers), ``w = w0 + B z``, where the structure gives:

========  ==============================  ===================  ===================  ===============
strategy  fitted penalty                  prior mean ``w0``    basis ``B``          ``lam_k``
========  ==============================  ===================  ===================  ===============
support   ``L21(rho)``, ``L1``,           0                    unit vectors of     ``rho/d_j+1-rho``
          ``ElasticNet(rho)``, ``Dirty``,                      the support
          ``RobustFeatures``,
          ``TemporalGroupLasso``,
          ``FusedGroupLasso``, ``MCP``,
          ``SCAD``, ``CappedL1``,
          ``NonconvexFusedGroupLasso``
subspace  ``Trace``, ``SparseLowRank``,   0                    left singular        ``1/sigma_k``
          ``RobustLowRank``,                                   vectors of W
          ``SharedStructure``
mean      ``MeanRegularized(r)``,         ``w_bar/(1+r)``      identity             ``1+r``;
          ``GraphLaplacian(A)``           (graph: ``w_bar``)                        ``2 dbar``
cluster   ``Clustered(k, eta)``           nearest cluster      identity             ``2(1+eta)``
                                          mean
========  ==============================  ===================  ===================  ===============

(each penalty declares its strategy, ``transfer_strategy``, and what it shares,
``shared_parts``; the table lists the first ones) with ``d_j = ||W_j||_2`` (L2,1) or
``mean_t |W_jt|`` (L1, elastic net), ``sigma_k`` the nonzero
singular values of W, ``w_bar`` the mean task and ``dbar`` the graph's mean degree (a new task
joined to the others as an average task is). The robust models (``RobustFeatures``,
``RobustLowRank``) read ``d_j`` and ``sigma_k`` from their shared part ``P`` alone: a new task is
taken to be an inlier, its outlier column zero. Features outside the support and directions
outside the subspace are not used (their weight is infinite). The ridge penalty ``"l2"`` shares
nothing between tasks, so it has no ``"auto"`` strategy.

The strength ``alpha``. The model's own, carried to a task with ``n`` samples, reads
``alpha_model * nbar / n`` (``nbar`` the median of the model's ``task_sizes_``): the penalty of
the 1/n_t-normalized objective is a prior precision times ``sigma^2 / n_t``. That is exact for
the quadratic penalties (mean, graph, clusters), not for the others: the alpha of L1, L2,1 or
the trace norm buys sparsity or low rank with bias, and its quadratic at the optimum shrinks a
new task on the fixed support far more than the coefficients' spread warrants (median 2x to
7x, up to 37x, the test MSE of CV on related sparse tasks). So ``alpha="auto"`` chooses by
exact leave-one-out (squared loss) or stratified K-fold (logistic loss) among a few
model-anchored values: the carried strength; the prior's own (the prior read as a Gaussian
``theta_k ~ N(0, s/lam_k)``, ``s`` matched to the old tasks' coefficients,
``alpha = sigma^2 / (n s)`` with ``sigma^2`` their median residual variance); a half-decade
grid between the two, half a decade below the smaller and up to a decade above the larger (a
new task that fits the shared structure less well than the old ones). Few anchored candidates
keep the choice steady with 5 samples, where a free search over 46 values overfits the
held-out losses (held-out schools of School with 5 to 40 rows: medians 0.77 to 0.99 of
``"cv"``'s test MSE; ``scripts/transfer_default.py``). With fewer than 3 samples (2 per
class) it carries the model's strength. ``alpha="model"`` forces the carried strength,
``alpha="cv"`` a 46-value grid, which strategies that are not the fitted penalty's own always
use.

With ``n >= cv_min_samples`` the fit falls back to the single-task model (ridge or L2
logistic, its alpha cross-validated) when that one's held-out losses are lower by more than
1.645 standard errors of the paired difference (a one-sided test at 5%): old tasks that share
nothing with the new one cannot make it much worse than learning it alone, once there are
samples enough to tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .datafits import loss_on_targets
from .penalties import make_penalty
from .penalties.base import SharedPart
from .persistence import SaveMixin
from .transfer_ridge import class_codes, loss_value, ridge_fit

__all__ = ["transfer", "TransferredTask", "Prior", "structure_priors", "STRATEGIES",
           "transfer_loss"]

#: strategies of :func:`transfer` (``"auto"`` picks the fitted penalty's own)
STRATEGIES = ("auto", "support", "subspace", "mean", "cluster", "single")

_NONZERO = 1e-8  # relative size below which a row norm or singular value counts as zero


@dataclass
class Prior:
    """The quadratic a new task inherits: ``w = mean + basis @ z``, penalty
    ``alpha/2 sum_k weights_k z_k^2``; ``alpha`` is the model's strength for this shape (None
    where the shape does not come from the model's own penalty)."""

    strategy: str
    mean: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    alpha: float | None
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- the model's parts
@dataclass
class _Source:
    W: np.ndarray            # p x T, in the space the penalty acted on
    penalty: Any
    alpha: float
    loss: Any                # the loss of the fit: the model's, then the new task's
    n_ref: float
    mean: np.ndarray         # feature standardization of that space (zeros / ones if none)
    scale: np.ndarray
    n_features: int
    feature_names: Any
    clusters: np.ndarray | None
    P: np.ndarray | None     # p x T parts of the decompositions (Dirty, SparseLowRank, ...)
    Q: np.ndarray | None
    b: np.ndarray            # intercepts in that space
    noise: np.ndarray | None  # per-task residual variance (squared loss)
    sizes: np.ndarray | None


def transfer_loss(model_loss: Any, loss: Any = None, y: Any = None) -> Any:
    """The loss a new task's transfer fits (a :class:`~regmtl.datafits.Datafit`).

    ``loss`` names it (a registered name or a loss object); without it, the model's own loss
    (``model_loss``: the estimator's ``loss``, or its loss object). A model fitted with one
    loss per task needs ``loss``. For a classifier the new task's labels ``y`` decide, as in
    :class:`~regmtl.MultiTaskClassifier`: two classes the logistic loss, more the multinomial
    (the new task's classes are its own).
    """
    from .datafits import Datafit, Mixed, make_loss

    if loss is not None:
        if isinstance(loss, (list, tuple, np.ndarray)):
            raise ValueError(f"loss={loss!r}: a new task takes one loss (a name or a loss "
                             "object), not a list.")
        datafit = make_loss(loss)
    else:
        datafit = model_loss if isinstance(model_loss, Datafit) else make_loss(model_loss)
        if isinstance(datafit, Mixed):
            names = sorted({part.name for part in datafit.losses})
            raise ValueError(
                f"transfer: the model was fitted with one loss per task ({names}); pass the "
                "new task's loss, e.g. transfer(model, X_new, y_new, loss=" f"{names[0]!r}).")
    if datafit.kind in ("binary", "multiclass") and y is not None:
        n_classes = np.unique(np.asarray(y)).size
        datafit = make_loss("multinomial" if n_classes > 2 else "logistic")
    return datafit


def _loss_parameters(loss: Any) -> list[float]:
    """A registered loss's constructor parameters, in order (Huber's delta, the quantile)."""
    import inspect

    names = [n for n, par in inspect.signature(type(loss).__init__).parameters.items()
             if n != "self" and par.kind is par.POSITIONAL_OR_KEYWORD]
    return [float(getattr(loss, n)) for n in names]


def _source(model: Any) -> _Source:
    from .estimators import MultiTaskClassifier, MultiTaskRegressor

    est = getattr(model, "best_estimator_", model)
    if not isinstance(est, (MultiTaskRegressor, MultiTaskClassifier)):
        raise TypeError(
            f"model: transfer takes a fitted regmtl MultiTaskRegressor / MultiTaskClassifier "
            f"(or their CV versions), or a deep model from regmtl.deep; got "
            f"{type(model).__name__}.")
    check_is_fitted(est)
    p = est.n_features_in_
    scale = np.asarray(getattr(est, "feature_scale_", np.ones(p)), dtype=np.float64)
    mean = np.asarray(getattr(est, "feature_mean_", np.zeros(p)), dtype=np.float64)
    # the penalty acted on standardized weights when the model was fitted standardized, and
    # on d_j w_j under penalty factors (a change of units: folded into the scale)
    scale = scale * _factor_units(est, p)
    W = np.atleast_2d(est.coef_).T * scale[:, None]
    parts = {}
    for attr in ("P_", "Q_"):
        if hasattr(est, attr):
            parts[attr] = np.atleast_2d(getattr(est, attr)).T * scale[:, None]
    sizes = getattr(est, "task_sizes_", None)
    n_ref = float(np.median(sizes)) if sizes is not None else float("nan")
    b = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)) + \
        np.atleast_2d(est.coef_) @ mean
    return _Source(W=W, penalty=make_penalty(est.penalty), alpha=float(np.median(est.alpha)),
                   loss=est._fitted_loss(), n_ref=n_ref, mean=mean, scale=scale, n_features=p,
                   feature_names=getattr(est, "feature_names_in_", None),
                   clusters=getattr(est, "task_clusters_", None),
                   P=parts.get("P_"), Q=parts.get("Q_"), b=b,
                   noise=getattr(est, "residual_variance_", None), sizes=sizes)


def _factor_units(est: Any, p: int) -> np.ndarray:
    """The units ``d_j`` in which the model's penalty saw its weights (its positive penalty
    factors, rescaled as the fit rescaled them; 1 where it had none or a feature was
    excluded, its weights 0). A model whose terms a new task cannot inherit is refused by
    name: unpenalized features (no prior to borrow), bounds (the new task's fit takes none),
    factors per task, ``standardize`` (True or ``"task"``: the training rows' deviations
    are not kept), or ``factor_convention="glmnet"`` with a ridge part (it weighed the
    factors otherwise)."""
    from .feature_terms import terms_of

    terms = terms_of(est, p, int(est.n_tasks_))
    if terms is None:
        return np.ones(p)
    why = ("unpenalized features (factor 0): a new task has no prior to borrow for them"
           if np.any(terms.factor == 0) else
           "bounds: the new task's fit takes none" if terms.lower is not None
           or terms.upper is not None else
           "factors per task" if terms.factor.ndim == 2 else
           f"standardize={terms.standardize!r}: the training rows' deviations are not kept"
           if terms.standardize
           else "factor_convention='glmnet' with a ridge part: its ridge saw the factors "
           "otherwise than its norm" if terms.convention == "glmnet"
           and make_penalty(est.penalty).ridge_part(1.0) != 0.0 else "")
    if why:
        raise ValueError(f"model: transfer takes a model with positive penalty factors or "
                         f"excluded features, not {why}. Refit the model without them to "
                         "transfer from it.")
    return np.where(np.isfinite(terms.factor), terms.factor, 1.0)


def _intercept_prior(src: _Source, n_eff: float) -> tuple[float, float] | None:
    """(mean, beta) of the new intercept's penalty ``beta/2 (b - mean)^2``: the old tasks'
    intercepts as draws of ``N(mean, tau^2)``, ``tau^2`` their variance less their estimation
    noise, read in the objective's units (``sigma^2 / (n tau^2)``; sigma = 1 for the losses
    other than squared). None (a free intercept) with fewer than 3 tasks or no spread."""
    if src.b.size < 3 or not np.all(np.isfinite(src.b)):
        return None
    var = float(np.var(src.b, ddof=1))
    if src.loss.quadratic:
        if src.noise is None or src.sizes is None:
            return None
        sigma2 = float(np.median(src.noise))
        var -= float(np.median(src.noise / src.sizes))
    else:
        sigma2 = 1.0
    if var <= 1e-12 * max(1.0, float(np.mean(src.b**2))):
        return None
    return float(np.mean(src.b)), sigma2 / (n_eff * var)


def _unit_columns(p: int, idx: np.ndarray) -> np.ndarray:
    B = np.zeros((p, idx.size))
    B[idx, np.arange(idx.size)] = 1.0
    return B


def _support_block(d: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit basis of the features with ``d_j > 0`` and their weights ``rho/d_j + 1 - rho``."""
    idx = np.flatnonzero(d > _NONZERO * max(float(d.max(initial=0.0)), 1e-300))
    return _unit_columns(d.size, idx), rho / d[idx] + (1.0 - rho), idx


def _subspace_block(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors of W with nonzero singular values, weights ``1/sigma_k``."""
    U, s, _ = np.linalg.svd(W, full_matrices=False)
    keep = s > _NONZERO * max(float(s.max(initial=0.0)), 1e-300)
    return U[:, keep], 1.0 / s[keep]


def _variable(src: _Source) -> np.ndarray:
    """The penalty's variable at the fit: ``(P, Q)`` for the decompositions, else W."""
    return src.W if src.P is None or src.Q is None else np.stack([src.P, src.Q])


def _shared(src: _Source, native: bool, own: SharedPart) -> tuple[list[SharedPart], float | None]:
    """The parts a new task borrows and the carried alpha: the penalty's own declaration
    (:meth:`~regmtl.Penalty.shared_parts`) under its strategy, else ``own`` (alpha by CV)."""
    if not native:
        return [own], None
    return src.penalty.shared_parts(_variable(src)), (
        src.alpha if src.penalty.transfer_alpha else None)


def _quadratic(parts: list[SharedPart]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The basis, weights and info of support and subspace parts, in their order."""
    bases, weights, info, support = [], [], {}, []
    for part in parts:
        if part.kind == "subspace":
            U, lam = _subspace_block(part.value)
            info.update(rank=U.shape[1], subspace=U)
        else:
            U, lam, idx = _support_block(part.value, part.rho)
            support.append(idx)
            if part.info:
                info[part.info] = idx
        bases.append(U)
        weights.append(part.weight * lam)
    if support:
        info["support"] = support[0] if len(support) == 1 else np.unique(np.concatenate(support))
    return np.hstack(bases), np.concatenate(weights), info


def _support_prior(src: _Source, native: bool) -> Prior:
    own = SharedPart("support", np.linalg.norm(src.W, axis=1))
    parts, alpha = _shared(src, native, own)
    B, lam, info = _quadratic(parts)
    return Prior("support", np.zeros(src.W.shape[0]), B, lam, alpha,
                 {"support": info.pop("support"), **info})


def _subspace_prior(src: _Source, native: bool) -> Prior:
    parts, alpha = _shared(src, native, SharedPart("subspace", src.W))
    B, lam, info = _quadratic(parts)
    return Prior("subspace", np.zeros(src.W.shape[0]), B, lam, alpha, info)


def _mean_prior(src: _Source, native: bool) -> Prior:
    p = src.W.shape[0]
    (part,), alpha = _shared(src, native, SharedPart("mean", src.W.mean(axis=1)))
    return Prior("mean", part.value, np.eye(p), np.full(p, part.weight), alpha)


def _cluster_priors(src: _Source, native: bool) -> list[Prior]:
    if src.clusters is None:
        raise ValueError("strategy='cluster' needs a model fitted with the Clustered penalty "
                         "(its task_clusters_); use strategy='mean' for other models.")
    W, p = src.W, src.W.shape[0]
    (part,), _ = _shared(src, native, SharedPart("cluster", None, 4.0))
    out = []
    for c in np.unique(src.clusters):
        members = np.flatnonzero(src.clusters == c)
        out.append(Prior("cluster", W[:, members].mean(axis=1), np.eye(p),
                         np.full(p, part.weight), src.alpha if native else None,
                         {"cluster": int(c), "members": members}))
    return out


_BUILDERS = {"support": lambda s, n: [_support_prior(s, n)],
             "subspace": lambda s, n: [_subspace_prior(s, n)],
             "mean": lambda s, n: [_mean_prior(s, n)],
             "cluster": _cluster_priors}


def _single_prior(p: int) -> Prior:
    return Prior("single", np.zeros(p), np.eye(p), np.ones(p), None)


def structure_priors(model: Any, strategy: str = "auto") -> list[Prior]:
    """The prior(s) a new task inherits from ``model`` (in the model's feature space; one per
    cluster for ``"cluster"``). See the module docstring for the table."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {STRATEGIES}.")
    src = _source(model)
    return _priors(src, strategy)


def _priors(src: _Source, strategy: str) -> list[Prior]:
    native = src.penalty.transfer_strategy
    if strategy == "auto":
        if native is None:
            raise ValueError(
                f"model: its penalty {type(src.penalty).__name__} learns every task on its "
                "own, so there is no shared structure to transfer. Pass strategy='mean' "
                "(shrink toward the mean task, strength by CV), or fit the new task alone "
                "(strategy='single').")
        strategy = native
    if strategy == "single":
        return [_single_prior(src.W.shape[0])]
    return _BUILDERS[strategy](src, strategy == native)


# ---------------------------------------------------------------------------- the fits
def _weighted_center(G: np.ndarray, t: np.ndarray, w: np.ndarray, intercept: bool):
    W = w.sum()
    if not intercept:
        return G, t, np.zeros(G.shape[1]), 0.0
    gm = w @ G / W
    tm = float(w @ t / W)
    return G - gm, t - tm, gm, tm


def _ridge_path(G: np.ndarray, t: np.ndarray, w: np.ndarray, alphas: np.ndarray,
                intercept: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ridge ``1/(2 sum w) sum w_i (t_i - g_i u - b)^2 + alpha/2 ||u||^2`` for every
    alpha: (U (len(alphas), r), b (len(alphas),), squared leave-one-out residuals
    (len(alphas), n), from the closed form ``r_i / (1 - h_ii)`` with the penalty held fixed)."""
    Wsum = w.sum()
    Gc, tc, gm, tm = _weighted_center(G, t, w, intercept)
    sq = np.sqrt(w)
    A = sq[:, None] * Gc
    c = sq * tc
    if A.shape[1]:
        Ua, s, Vt = np.linalg.svd(A, full_matrices=False)
        Uc = Ua.T @ c
    else:
        Ua, s, Vt, Uc = np.zeros((len(t), 0)), np.zeros(0), np.zeros((0, 0)), np.zeros(0)
    base_h = w / Wsum if intercept else np.zeros(len(t))
    coefs, bs, loo = [], [], []
    for a in alphas:
        f = s / (s**2 + a * Wsum)
        u = Vt.T @ (f * Uc)
        b = tm - float(gm @ u)
        r = t - G @ u - b
        h = base_h + (Ua**2) @ (s * f)
        e = r / np.maximum(1.0 - h, 1e-12)
        coefs.append(u)
        bs.append(b)
        loo.append(e**2)
    return np.array(coefs).reshape(len(alphas), -1), np.array(bs), np.array(loo)


def _inverse_plus_diagonal(K: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``(K + diag(d))^-1`` for a PSD ``K`` and ``d > 0``, through the eigenvalues of
    ``D^-1/2 K D^-1/2`` (stable when ``K`` dwarfs ``d``, as with a tiny alpha)."""
    r = 1.0 / np.sqrt(d)
    lam, Q = np.linalg.eigh(r[:, None] * K * r[None, :])
    return (r[:, None] * Q / (1.0 + np.maximum(lam, 0.0))) @ (Q.T * r[None, :])


def _shrunk_path(G: np.ndarray, t: np.ndarray, w: np.ndarray, alphas: np.ndarray,
                 beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_ridge_path` with the intercept penalized too, ``+ beta/2 b^2``: the
    normal equations of ``theta = (u, b)`` (primal, or the n x n dual form when n < r + 1)."""
    n, r = G.shape
    A = np.hstack([G, np.ones((n, 1))])
    Wsum = w.sum()
    dual = n < r + 1 and np.all(w > 0) and np.all(alphas > 0) and beta > 0
    if not dual:
        M = (A.T * w) @ A / Wsum
        rhs = A.T @ (w * t) / Wsum
    coefs, bs, loo = [], [], []
    for a in alphas:
        P = np.r_[np.full(r, a), beta]
        if dual:
            # residual D S^-1 t over 1 - h_ii = d_i (S^-1)_ii: no cancellation near h = 1
            AP = A / P
            Sinv = _inverse_plus_diagonal(AP @ A.T, Wsum / w)
            dual_coef = Sinv @ t
            theta = AP.T @ dual_coef
            e = dual_coef / np.diag(Sinv)
        else:
            Minv = np.linalg.pinv(M + np.diag(P))
            theta = Minv @ rhs
            h = np.einsum("ij,jk,ik->i", A, Minv, A) * w / Wsum
            e = (t - A @ theta) / np.maximum(1.0 - h, 1e-12)
        coefs.append(theta[:r])
        bs.append(theta[r])
        loo.append(e**2)
    return np.array(coefs).reshape(len(alphas), -1), np.array(bs), np.array(loo)


def _clearly_worse(losses: np.ndarray, other: np.ndarray, w: np.ndarray,
                   z: float = 1.645) -> bool:
    """True when ``other``'s held-out losses are lower by more than ``z`` standard errors of
    the paired (weighted) mean difference: a one-sided test at 5%."""
    d = losses - other
    W = w.sum()
    mean = float(w @ d / W)
    n_eff = W**2 / float(w @ w)
    var = float(w @ (d - mean) ** 2 / W)
    return mean > z * np.sqrt(var / max(n_eff - 1.0, 1.0))


def _carried_alpha(src: _Source, n: float) -> float:
    """The model's strength read for a task of ``n`` (weighted) samples: ``alpha nbar / n``."""
    return float(src.alpha * src.n_ref / n)


def _prior_alpha(src: _Source, prior: Prior, n: float) -> float | None:
    """The strength at which the prior, read as a Gaussian, has the old tasks' spread.

    The penalty ``alpha/2 sum_k lam_k z_k^2`` of the 1/n-normalized objective is the prior
    ``theta_k ~ N(0, s / lam_k)`` (``theta = B^T (w - w0)``) with ``s = sigma^2 / (n alpha)``.
    ``s`` is matched to the old tasks (the prior's members): ``sum_kt theta_kt^2 = T s sum_k
    1/lam_k``; ``sigma^2`` is their median residual variance (1 for the losses other than
    squared). None
    when there is nothing to match (no basis, no spread, no residual variance).
    """
    W = src.W if "members" not in prior.info else src.W[:, prior.info["members"]]
    if prior.basis.shape[1] == 0:
        return None
    theta = prior.basis.T @ (W - prior.mean[:, None])
    s = float(np.sum(theta**2)) / (W.shape[1] * float(np.sum(1.0 / prior.weights)))
    if src.loss.quadratic:
        if src.noise is None:
            return None
        sigma2 = float(np.median(src.noise))
    else:
        sigma2 = 1.0
    if not (s > 0 and sigma2 > 0 and np.isfinite(s * sigma2)):
        return None
    return sigma2 / (n * s)


def _auto_grid(anchors: list[float], step: float = 0.5, below: float = 0.5,
               above: float = 1.0) -> np.ndarray:
    """The candidates of ``alpha="auto"``: the anchors, a geometric grid between them with
    at most ``step`` decades between neighbours, and points ``step`` apart up to ``below``
    decades under the smallest and ``above`` decades over the largest (more: a new task that
    fits the shared structure less well than the old tasks do)."""
    lo, hi = min(anchors), max(anchors)
    k = max(1, int(np.ceil(np.log10(hi / lo) / step - 1e-9))) if hi > lo else 1
    down = lo * 10.0 ** -np.arange(step, below + 1e-9, step)
    up = hi * 10.0 ** np.arange(step, above + 1e-9, step)
    return np.unique(np.r_[anchors, np.geomspace(lo, hi, k + 1), down, up])


def _auto_candidates(src: _Source, prior: Prior, carried: float, n: float) -> np.ndarray:
    """The grid of ``alpha="auto"`` for one prior, anchored at the carried strength and at
    the prior's own (:func:`_prior_alpha`, where it exists)."""
    anchors = [a for a in (carried, _prior_alpha(src, prior, n))
               if a is not None and 0 < a < np.inf]
    return _auto_grid(anchors) if anchors else np.array([carried])


def _fewest_per_class(y: np.ndarray, loss: Any) -> float:
    """The rarest class's count (-1/+1 labels, or a one-hot table); inf for a regression."""
    if loss.kind == "multiclass":
        return float(y.sum(axis=0).min())
    if loss.kind == "binary":
        return float(min(np.sum(y > 0), np.sum(y < 0)))
    return np.inf


def _can_cross_validate(y: np.ndarray, loss: Any) -> bool:
    """At least 3 samples, and 2 of each class for a classifier."""
    return len(y) >= 3 and _fewest_per_class(y, loss) >= 2


def _curvature(loss: Any, y: np.ndarray, offset: np.ndarray | None, w: np.ndarray) -> float:
    """The loss's curvature on the new task's scale: its bound where it declares one (1
    squared and Huber, 1/4 logistic, 1/2 multinomial), else the mean ``l''`` at the best
    intercept (the log links: about the mean target for Poisson), or for a loss without
    curvature (the pinball loss) one over the targets' mean absolute deviation."""
    if np.isfinite(loss.curvature):
        return float(loss.curvature)
    W = w.sum()
    offset = np.zeros(len(w)) if offset is None else offset
    if loss.smooth:
        _, b = ridge_fit(loss, np.zeros((len(y), 0)), y, offset, w, 0.0, True)
        return float(w @ loss.hessian(y, offset + b) / W)
    t = y - offset
    spread = float(w @ np.abs(t - np.median(t)) / W)
    return 1.0 / spread if spread > 0 else 1.0


def _alpha_grid(G: np.ndarray, w: np.ndarray, curvature: float) -> np.ndarray:
    """Geometric grid from (nearly) no penalty to full shrinkage, on the data's scale (the
    centered design's, at least a hundredth of the uncentered one's: rows all alike have no
    spread, and a grid down to 1e-18 only fits rounding errors) times the loss's curvature."""
    top = 1.0
    if G.shape[1]:
        Gc, _, _, _ = _weighted_center(G, np.zeros(len(w)), w, True)
        sq = np.sqrt(w)[:, None]
        top = max(np.linalg.norm(sq * Gc, 2) ** 2,
                  1e-2 * np.linalg.norm(sq * G, 2) ** 2) / w.sum()
    top = max(float(top), 1e-12) * curvature
    return top * np.geomspace(1e-6, 1e3, 46)


@dataclass
class _Fit:
    prior: Prior
    u: np.ndarray
    b: float
    alpha: float
    cv_error: float | None
    cv_losses: np.ndarray | None = None  # held-out loss of every sample at that alpha


class _Problem:
    """The new task's data against one prior: design ``G = X B / sqrt(lam)``, offset ``X w0``
    (plus the new task's own offset); ``y`` as the loss reads it (-1/+1 labels for the
    logistic loss, a one-hot table for the multinomial)."""

    def __init__(self, X, y, w, prior: Prior, loss: Any, intercept: bool,
                 b_prior: tuple[float, float] | None = None, offset: np.ndarray | None = None):
        self.prior, self.loss, self.intercept = prior, loss, intercept
        self.G = X @ (prior.basis / np.sqrt(prior.weights))
        # a shrunk intercept b = bbar + (its deviation, penalized by beta)
        self.bbar, self.beta = b_prior if (b_prior and intercept) else (0.0, None)
        self.offset = X @ prior.mean + self.bbar + (0.0 if offset is None else offset)
        self.X, self.y, self.w = X, y, w
        # the folds of a loss that is not smooth fit its smoothed version (transfer_ridge)
        self.smoothing = None if loss.smooth else 2e-2 / _curvature(loss, y, self.offset, w)

    def _path(self, alphas: np.ndarray):
        t = self.y - self.offset
        if self.beta is None:
            return _ridge_path(self.G, t, self.w, alphas, self.intercept)
        return _shrunk_path(self.G, t, self.w, alphas, self.beta)

    def _ridge(self, rows, alpha: float, start=None,
               exact: bool = True) -> tuple[np.ndarray, Any]:
        return ridge_fit(self.loss, self.G[rows], self.y[rows], self.offset[rows],
                         self.w[rows], alpha, self.intercept, start, beta=self.beta or 0.0,
                         smoothing=None if exact else self.smoothing)

    def fit(self, alpha: float, start=None) -> _Fit:
        if self.loss.quadratic:
            U, b, _ = self._path(np.array([alpha]))
            return _Fit(self.prior, U[0], float(b[0]) + self.bbar, alpha, None)
        u, b = self._ridge(slice(None), alpha, start)
        return _Fit(self.prior, u, b + self.bbar, alpha, None)

    def scores(self, fit: _Fit, rows: Any = slice(None)) -> np.ndarray:
        """The linear predictor of ``rows`` ((n,), or (n, K) for the multinomial)."""
        f = self.G[rows] @ fit.u + fit.b - self.bbar
        return f + (self.offset[rows] if f.ndim == 1 else self.offset[rows, None])

    def objective(self, fit: _Fit) -> float:
        f = self.scores(fit)
        if self.loss.quadratic:
            data = 0.5 * self.w @ (self.y - f) ** 2 / self.w.sum()
        else:
            data = loss_value(self.loss, self.y, f, self.w / self.w.sum())
        b = np.asarray(fit.b) - self.bbar
        shrink = 0.0 if self.beta is None else 0.5 * self.beta * float(np.sum(b**2))
        return float(data + 0.5 * fit.alpha * np.sum(fit.u**2) + shrink)

    def held_out(self, f: np.ndarray, rows: Any) -> np.ndarray:
        """Per row, the held-out loss: the loss's deviance (squared error, Poisson deviance,
        twice the pinball loss, ...), the log-loss for classes."""
        y = self.y[rows]
        if f.ndim == 2:
            m = f.max(axis=1)
            return m + np.log(np.exp(f - m[:, None]).sum(axis=1)) - np.sum(y * f, axis=1)
        d = self.loss.deviance(y, f)
        return 0.5 * d if self.loss.kind == "binary" else d

    def cross_validate(self, alphas: np.ndarray, cv: int, random_state: Any) -> _Fit:
        """The alpha with the lowest cross-validated error (ties: the larger alpha)."""
        losses = self.cv_losses(alphas, cv, random_state)
        err = losses @ self.w / self.w.sum()
        k = len(err) - 1 - int(np.argmin(err[::-1]))
        fit = self.fit(float(alphas[k]))
        fit.cv_error, fit.cv_losses = float(err[k]), losses[k]
        return fit

    def cv_losses(self, alphas: np.ndarray, cv: int, random_state: Any) -> np.ndarray:
        """Held-out loss of every sample (len(alphas), n): squared leave-one-out residuals
        (exact, squared loss), else K-fold deviances (stratified for classes)."""
        if self.loss.quadratic:
            return self._path(alphas)[2]
        return self._kfold(alphas, cv, random_state)

    def _kfold(self, alphas, cv, random_state) -> np.ndarray:
        if self.loss.kind in ("binary", "multiclass"):
            labels = self.y if self.y.ndim == 1 else np.argmax(self.y, axis=1)
            n_splits = min(cv, int(_fewest_per_class(self.y, self.loss)))
            splits = StratifiedKFold(n_splits=n_splits, shuffle=True,
                                     random_state=random_state).split(self.G, labels)
        else:
            splits = KFold(n_splits=min(cv, len(self.w)), shuffle=True,
                           random_state=random_state).split(self.G)
        total = np.zeros((len(alphas), len(self.w)))
        for tr, te in splits:
            start = None
            for k, a in enumerate(alphas[::-1]):  # strong to weak penalty, warm-started
                u, b = self._ridge(tr, float(a), start, exact=False)
                start = (u, b)
                fold = _Fit(self.prior, u, b + self.bbar, float(a), None)
                total[len(alphas) - 1 - k, te] = self.held_out(self.scores(fold, te), te)
        return total


# ---------------------------------------------------------------------------- the result
class TransferredTask(SaveMixin, BaseEstimator):
    """A linear model for one new task, fitted by :func:`~regmtl.transfer`.

    It predicts like a single-task scikit-learn model (``predict``, ``score``, and
    ``predict_proba`` for a classifier) and is saved with ``save`` like the other models.
    Users get one from :func:`~regmtl.transfer` rather than building it.

    Attributes
    ----------
    coef_ : ndarray of shape (p,), or (K, p) for the multinomial loss
        Weights on the features as given (the model's raw units), one row per class of a
        multinomial task.
    intercept_ : float, or ndarray of shape (K,) for the multinomial loss
        The intercept (per class, summing to zero, for the multinomial loss).
    strategy_ : str
        ``"support"``, ``"subspace"``, ``"mean"``, ``"cluster"`` or ``"single"`` (the
        single-task fit, asked for or chosen by the fallback: then ``fell_back_`` is True).
    alpha_ : float
        Strength of the new task's penalty.
    alpha_source_ : str
        ``"model"`` (the model's own, carried to n samples: forced, or the winner of
        ``alpha="auto"``), ``"cv"`` (chosen by cross-validation) or ``"given"``.
    prior_mean_ : ndarray of shape (p,)
        ``w0`` in the model's feature space.
    support_ : ndarray of int (support), ``rank_`` (subspace), ``cluster_`` (cluster)
        The structure used.
    cv_error_, single_task_cv_error_ : float
        With alpha chosen by cross-validation (``"auto"`` included): the cross-validated
        error (the loss's mean deviance: squared error, Poisson deviance, ...; the log-loss
        for classes) of the transfer fit and of the single-task fit (fallback on).
    classes_ : ndarray of shape (K,)
        Classifiers only: the new task's classes (``classes_[1]`` is the positive class of
        a binary task).
    fell_back_ : bool
        Whether the fallback replaced the transfer fit by the single-task fit.
    loss_ : str
        The registered name of the new task's loss (``"squared"``, ``"logistic"``,
        ``"multinomial"``, ``"poisson"``, ...).
    loss_params_ : ndarray
        The loss's constructor parameters (Huber's delta, the quantile), where it has some.
    n_features_in_ : int
        Number of features p.
    feature_names_in_ : ndarray of shape (p,)
        The source model's feature names, when it has them.
    n_samples_ : int
        Number of samples of the new task.

    See Also
    --------
    regmtl.transfer : Fits one.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.r_[np.ones(3), np.zeros(7)]
    >>> Xs = [rng.normal(size=(60, 10)) for _ in range(4)]
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, [X @ w for X in Xs])
    >>> X_new = rng.normal(size=(8, 10))
    >>> new = rm.transfer(model, X_new, X_new @ w)
    >>> type(new).__name__, new.coef_.shape, new.strategy_, new.alpha_source_
    ('TransferredTask', (10,), 'support', 'cv')
    >>> bool(new.score(X_new, X_new @ w) > 0.9)  # R^2 on the new task
    True
    """

    # ------------------------------------------------------------------ what save writes
    @classmethod
    def saved_rules(cls, n_tasks: int, n_features: int, single: bool,
                    classes: tuple[int, ...] | None = None) -> dict[str, tuple]:
        """The attributes :func:`~regmtl.transfer` sets, with the rule a saved file must meet
        (see :meth:`regmtl.persistence.SaveMixin.saved_rules`); one task of p features
        (``classes``: its number of classes, a row of ``coef_`` each beyond two)."""
        from .datafits import LOSSES

        p = n_features
        K = classes[0] if classes else 2
        return {
            "coef_": ("array", "f", (p,) if K <= 2 else (K, p)),
            "intercept_": ("float", "finite") if K <= 2 else ("array", "f", (K,)),
            "strategy_": ("str", ("support", "subspace", "mean", "cluster", "single")),
            "fell_back_": ("bool",), "alpha_": ("float",),
            "alpha_source_": ("str", ("model", "cv", "given")),
            "prior_mean_": ("array", "f", (p,)),
            "loss_": ("str", tuple(sorted(LOSSES))), "loss_params_": ("array", "f", (range(8),)),
            "n_features_in_": ("int", 1, None),
            "n_samples_": ("int", 1, None), "cv_error_": ("float",),
            "single_task_cv_error_": ("float",), "feature_names_in_": ("labels", (p,)),
            "support_": ("array", "iu", (range(p + 1),), (0, p - 1)), "rank_": ("int", 0, p),
            "cluster_": ("int", 0, None), "classes_": ("labels", (range(2, 100001),)),
        }

    @classmethod
    def saved_required(cls, attrs: dict) -> tuple[str, ...]:
        """The attributes every saved file holds; a classifier's its ``classes_`` too."""
        from .datafits import LOSSES

        loss = attrs.get("loss_")
        name = loss.get("value") if isinstance(loss, dict) else None
        classes = name in LOSSES and LOSSES[name].kind in ("binary", "multiclass")
        return ("coef_", "intercept_", "loss_", "n_features_in_",
                *(("classes_",) if classes else ()))

    def _loss(self) -> Any:
        """The new task's loss object, rebuilt from ``loss_`` and ``loss_params_``."""
        from .datafits import LOSSES

        return LOSSES[self.loss_](*getattr(self, "loss_params_", ()))

    def _scores(self, X: Any, offset: Any = None) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ValueError("This TransferredTask is not fitted; get one from regmtl.transfer.")
        X = _check_new_x(X, self.n_features_in_, getattr(self, "feature_names_in_", None),
                         "X")
        f = X @ self.coef_.T + self.intercept_
        o = _check_offset(offset, X.shape[0], self._loss())
        return f if o is None else f + o

    def predict(self, X: Any, offset: Any = None) -> np.ndarray:
        """Predicted values (regression: the loss's mean, ``exp`` of the score for the log
        links) or labels (classification).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, p)
            Features of the new task, in the units the source model was fitted on (a
            DataFrame is matched to the model's feature names).
        offset : array-like of shape (n_samples,), optional
            The rows' offsets, for a loss that takes one (a log exposure for Poisson).

        Returns
        -------
        ndarray of shape (n_samples,)
            Predictions.
        """
        f = self._scores(X, offset)
        if f.ndim == 2:
            return self.classes_[np.argmax(f, axis=1)]
        if self._loss().kind == "binary":
            return self.classes_[(f > 0).astype(int)]
        return self._loss().mean(f)

    def decision_function(self, X: Any, offset: Any = None) -> np.ndarray:
        """The scores ``x . coef_ + intercept_`` (plus the offset).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, p)
            Features of the new task.
        offset : array-like of shape (n_samples,), optional
            The rows' offsets, for a loss that takes one.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, K)
            Scores (for a binary classifier, positive means ``classes_[1]``; one per class
            for the multinomial loss).
        """
        return self._scores(X, offset)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (classification only).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, p)
            Features of the new task.

        Returns
        -------
        ndarray of shape (n_samples, K)
            Probabilities of ``classes_``.

        Raises
        ------
        AttributeError
            If the transferred task is a regression.
        """
        if self._loss().kind not in ("binary", "multiclass"):
            raise AttributeError("predict_proba: this transferred task is a regression.")
        f = self._scores(X)
        if f.ndim == 1:
            p = 0.5 * (1.0 + np.tanh(0.5 * f))
            return np.column_stack([1.0 - p, p])
        E = np.exp(f - f.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def score(self, X: Any, y: Any, sample_weight: Any = None, offset: Any = None) -> float:
        """R^2 (squared loss), D^2, the fraction of deviance explained against the best
        constant (other regression losses), or accuracy (classification).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, p)
            Features of the new task.
        y : array-like of shape (n_samples,)
            True targets or labels.
        sample_weight : array-like of shape (n_samples,), optional
            Sample weights.
        offset : array-like of shape (n_samples,), optional
            The rows' offsets, for a loss that takes one.

        Returns
        -------
        float
            The score.
        """
        loss = self._loss()
        if loss.kind in ("binary", "multiclass"):
            return float(accuracy_score(np.asarray(y), self.predict(X),
                                        sample_weight=sample_weight))
        if loss.quadratic:
            return float(r2_score(np.asarray(y, dtype=np.float64), self.predict(X, offset),
                                  sample_weight=sample_weight))
        y = np.asarray(y, dtype=np.float64)
        w = _check_weights(sample_weight, len(y))
        o = np.zeros(len(y)) if offset is None else _check_offset(offset, len(y), loss)
        _, b = ridge_fit(loss, np.zeros((len(y), 0)), y, o, w, 0.0, True)
        null = w @ loss.deviance(y, o + b)
        fitted = w @ loss.deviance(y, self._scores(X, offset))
        return float(1.0 - fitted / null) if null > 0 else float(fitted == 0)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")


# ---------------------------------------------------------------------------- input checks
def _check_new_x(X: Any, p: int, names: Any, what: str) -> np.ndarray:
    if names is not None and hasattr(X, "columns"):
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(f"{what}: lacks the model's feature column(s) {missing[:10]}.")
        X = X[list(names)]
    X = check_array(X, dtype=np.float64, input_name=what, ensure_min_samples=1)
    if X.shape[1] != p:
        raise ValueError(f"{what} has {X.shape[1]} features, but the model was fitted on {p}; "
                         "give the new task the same features, in the same order and units.")
    return X


def _check_new_y(y: Any, n: int, loss: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The targets as the loss reads them (-1/+1 labels, a one-hot table of the new task's
    classes, or numbers in the loss's domain) and the classes (None for a regression)."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = np.ravel(y) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y_new has shape {np.shape(y)}; expected ({n},), one target per row "
                         "of X_new.")
    if loss.kind not in ("binary", "multiclass"):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_new")
        loss.check_targets(y, "y_new")
        return y, None
    if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
        raise ValueError("y_new contains NaN or infinity; give a label for every row.")
    classes = np.unique(y)
    if loss.kind == "multiclass":
        if classes.size < 2:
            raise ValueError(f"y_new holds {classes.size} class {classes.tolist()}; a new "
                             "task needs samples of at least two classes.")
        return class_codes(y, classes), classes
    if classes.size != 2:
        raise ValueError(f"y_new holds {classes.size} class(es) {classes.tolist()[:5]}; a "
                         "binary new task needs samples of both classes.")
    return np.where(y == classes[1], 1.0, -1.0), classes


def _check_offset(offset: Any, n: int, loss: Any) -> np.ndarray | None:
    """The new task's offset (n,), for a loss that takes one (else its refusal)."""
    if offset is None:
        return None
    if not loss.takes_offset():
        loss.with_offset(np.zeros(1), np.ones(1), np.zeros(1))  # the loss's own refusal
    o = check_array(offset, ensure_2d=False, dtype=np.float64, input_name="offset")
    if o.shape != (n,):
        raise ValueError(f"offset has shape {o.shape}; expected ({n},), one per row.")
    return o


def _check_weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                    input_name="sample_weight")
    if w.shape != (n,) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"sample_weight must hold {n} non-negative weights with a positive "
                         "sum (one per row of X_new).")
    return w


def _is_deep(model: Any) -> bool:
    mod = type(model).__module__
    if mod.startswith("regmtl.deep"):
        return True
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


# ---------------------------------------------------------------------------- transfer
def transfer(
    model: Any,
    X_new: Any,
    y_new: Any,
    *,
    strategy: str = "auto",
    alpha: float | str = "auto",
    sample_weight: Any = None,
    cv_min_samples: int = 20,
    cv: int = 5,
    fallback: bool = True,
    intercept: str = "shrink",
    random_state: int | None = 0,
    loss: Any = None,
    offset: Any = None,
    **deep_options: Any,
) -> Any:
    r"""A model for a new task that uses what the fitted model's tasks share.

    Parameters
    ----------
    model : fitted MultiTaskRegressor, MultiTaskClassifier (or CV versions), or a deep model
        Deep models (``regmtl.deep`` estimators and nets) get a new head on the frozen trunk:
        see :func:`regmtl.deep.transfer_head`, which receives ``deep_options``. A model whose
        penalty constrains the signs (``positive=True``) is refused: the new task's ridge fit
        would not keep the constraint.
    X_new : array-like or DataFrame of shape (n, p)
        The new task's features, in the units the model was fitted on (a model fitted on
        standardized features by ``regmtl fit`` standardizes them itself). A deep model takes
        any input its net reads: images, token ids, sparse rows, a dict of named inputs, or a
        DataFrame with the categorical columns it was fitted on.
    y_new : array-like of shape (n,)
        Targets (labels for a classifier: two, or more for the multinomial loss, the new
        task's own classes). At least 2 samples.
    strategy : {"auto", "support", "subspace", "mean", "cluster", "single"}
        ``"auto"``: the fitted penalty's structure (module docstring table). Another strategy
        reads that structure from the coefficients; its strength has no model value and is
        chosen by cross-validation. ``"single"`` fits the new task alone.
    alpha : "auto", "model", "cv" or float
        ``"auto"``: where the strategy is the fitted penalty's own, the best by
        cross-validation of the model's strength carried to n (``alpha_model * nbar / n``),
        the prior's own strength (matched to the old tasks' spread) and a few values between
        and above them (module docstring); else the 46-value grid of ``"cv"``.
        ``"model"`` forces the carried strength, ``"cv"`` the grid; a float is used as is.
    sample_weight : array-like of shape (n,), optional
    cv_min_samples : int, default=20
        Fewest samples for the fallback check.
    cv : int, default=5
        Folds of the cross-validation, scored by the loss's deviance (log-loss for classes,
        Poisson or Gamma deviance, twice the Huber or pinball loss); the squared loss uses
        exact leave-one-out.
    fallback : bool, default=True
        Return the single-task fit when its cross-validated losses are clearly lower (one-sided
        paired test at 5%); needs ``cv_min_samples`` samples.
    intercept : {"shrink", "free"}, default="shrink"
        ``"shrink"``: the new intercept is pulled toward the old tasks' mean intercept, with
        the strength their spread implies (a prior ``N(mean, tau^2)``, ``tau^2`` their
        variance less their estimation noise, ``sigma^2`` the median residual variance);
        ``"free"``: unpenalized, as in the multi-task objective. The single-task fit always
        has a free intercept.
    random_state : int, optional
        Seeds the cross-validation folds.
    loss : str or loss object, optional
        The new task's loss (``"poisson"``, ``rm.Huber(2.0)``, ...). Default: the model's
        own; a model fitted with one loss per task needs it. A classifier's new task takes
        the logistic loss with two classes and the multinomial loss with more.
    offset : array-like of shape (n,), optional
        The new task's offset of the linear predictor (a log exposure for Poisson), for a
        loss that takes one; give it again to ``predict``.
    **deep_options
        Deep models only: passed to :func:`regmtl.deep.transfer_head`.

    Returns
    -------
    TransferredTask
        ``predict``, ``score``, ``coef_``, ``intercept_``, ``strategy_``, ``alpha_`` ...

    Examples
    --------
    >>> import numpy as np, regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.r_[np.ones(3), np.zeros(17)]
    >>> Xs = [rng.normal(size=(60, 20)) for _ in range(6)]
    >>> ys = [X @ w + 0.1 * rng.normal(size=60) for X in Xs]
    >>> m = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, ys)
    >>> X_new = rng.normal(size=(8, 20))
    >>> new = rm.transfer(m, X_new, X_new @ w)
    >>> new.strategy_, new.support_.tolist()
    ('support', [0, 1, 2])
    """
    if _is_deep(model):
        from .deep.transfer import transfer_head

        return transfer_head(model, X_new, y_new, **deep_options)
    if deep_options:
        raise TypeError(f"transfer: unexpected argument(s) {sorted(deep_options)} (they are "
                        "options of deep models only).")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {STRATEGIES}.")
    if intercept not in ("shrink", "free"):
        raise ValueError(f"intercept={intercept!r} is not 'shrink' or 'free'.")
    if isinstance(alpha, str):
        if alpha not in ("auto", "model", "cv"):
            raise ValueError(f"alpha={alpha!r}: give 'auto', 'model', 'cv' or a number >= 0.")
    elif not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha={alpha!r} must be a finite number >= 0.")
    src = _source(model)
    src.loss = transfer_loss(src.loss, loss, y_new if src.loss.kind in (
        "binary", "multiclass") and loss is None else None)
    # (a loss named for the new task that reads a parameter from the data, Huber()'s delta,
    # reads it on the new task's targets; the model's own loss holds the one it was fitted on)
    src.loss = loss_on_targets(src.loss, [y_new])
    if bool(getattr(src.penalty, "positive", False)):
        raise ValueError(
            f"model: its penalty {src.penalty!r} constrains every coefficient to be >= 0, "
            "which the new task's fit (a ridge toward the shared structure) does not keep. Fit "
            "the new task with that penalty itself (MultiTaskRegressor / MultiTaskClassifier), "
            "or transfer from a model fitted without positive=True.")
    Xr = _check_new_x(X_new, src.n_features, src.feature_names, "X_new")
    n = Xr.shape[0]
    y, classes = _check_new_y(y_new, n, src.loss)
    o = _check_offset(offset, n, src.loss)
    if n < 2:
        raise ValueError(
            f"X_new has {n} sample; transfer needs at least 2 (one is spent on the new task's "
            "intercept). With a single sample, predict with the model's prior mean instead.")
    w = _check_weights(sample_weight, n)
    est = getattr(model, "best_estimator_", model)
    fit_b = bool(est.fit_intercept)
    X = (Xr - src.mean) / src.scale
    priors = _priors(src, strategy)

    use_cv = alpha == "cv" or (alpha == "auto" and priors[0].alpha is None)
    # "auto" with a model strength: the carried strength and the prior's own, chosen by CV
    choose = alpha == "auto" and not use_cv and _can_cross_validate(y, src.loss)
    if alpha == "model" and priors[0].alpha is None:
        raise ValueError(f"alpha='model': strategy {priors[0].strategy!r} is not the fitted "
                         "penalty's own, so the model has no strength for it; use alpha='cv' "
                         "or a number.")
    if not use_cv and isinstance(alpha, str) and not np.isfinite(src.n_ref):
        raise ValueError("model: it was fitted by an older regmtl without task_sizes_; refit "
                         "it, or pass alpha='cv' or a number.")
    check_after = fallback and priors[0].strategy != "single" and n >= cv_min_samples
    if use_cv or check_after:
        if n < 3:
            raise ValueError(f"X_new has {n} samples; cross-validating alpha needs at least 3. "
                             "Pass alpha='model' or a number.")
        if _fewest_per_class(y, src.loss) < 2:
            raise ValueError("y_new: cross-validation needs at least 2 samples of each class; "
                             "pass alpha='model' or a number, or fallback=False.")

    b_prior = (_intercept_prior(src, float(w.sum()))
               if intercept == "shrink" and priors[0].strategy != "single" else None)
    problems = [_Problem(X, y, w, pr, src.loss, fit_b, b_prior, o) for pr in priors]
    errors: dict[str, float] = {}
    if use_cv:
        curv = _curvature(src.loss, y, o, w)
        fits = [pb.cross_validate(_alpha_grid(pb.G, w, curv), cv, random_state)
                for pb in problems]
        pick = min(range(len(fits)), key=lambda k: fits[k].cv_error)
        source = "cv"
    elif choose:
        carried = _carried_alpha(src, float(w.sum()))
        fits = [pb.cross_validate(_auto_candidates(src, pb.prior, carried, float(w.sum())),
                                  cv, random_state) for pb in problems]
        pick = min(range(len(fits)), key=lambda k: fits[k].cv_error)
        source = "model" if np.isclose(fits[pick].alpha, carried, rtol=1e-12) else "cv"
    else:
        if isinstance(alpha, str):
            # the model's per-task prior, read for a task of w.sum() (weighted) samples
            a, source = _carried_alpha(src, float(w.sum())), "model"
        else:
            a, source = float(alpha), "given"
        fits = [pb.fit(a) for pb in problems]
        # several priors (clusters): the one the penalized objective prefers
        pick = min(range(len(fits)), key=lambda k: problems[k].objective(fits[k]))
    best = fits[pick]
    if check_after:
        if best.cv_losses is None:
            best.cv_losses = problems[pick].cv_losses(np.array([best.alpha]), cv,
                                                      random_state)[0]
            best.cv_error = float(best.cv_losses @ w / w.sum())
        pb1 = _Problem(X, y, w, _single_prior(X.shape[1]), src.loss, fit_b, offset=o)
        single = pb1.cross_validate(_alpha_grid(pb1.G, w, _curvature(src.loss, y, o, w)),
                                    cv, random_state)
        errors["single_task_cv_error_"] = single.cv_error
        if _clearly_worse(best.cv_losses, single.cv_losses, w):
            errors["cv_error_"] = best.cv_error
            best = single
    if best.cv_error is not None and "cv_error_" not in errors:
        errors["cv_error_"] = best.cv_error
    return _result(best, src, classes, source, errors, n)


def _result(fit: _Fit, src: _Source, classes, source: str, errors: dict,
            n: int) -> TransferredTask:
    pr = fit.prior
    v = (pr.basis / np.sqrt(pr.weights)) @ fit.u   # weights in the model's space
    v = v + (pr.mean if v.ndim == 1 else pr.mean[:, None])
    out = TransferredTask()
    coef = v.T / src.scale                          # (p,), or (K, p) for the multinomial
    intercept = fit.b - coef @ src.mean
    out.coef_ = coef
    # the classes' common shift changes nothing: the intercepts sum to zero
    out.intercept_ = float(intercept) if coef.ndim == 1 else intercept - np.mean(intercept)
    out.strategy_ = pr.strategy
    out.fell_back_ = pr.strategy == "single" and "cv_error_" in errors and \
        errors.get("single_task_cv_error_", np.inf) < errors["cv_error_"]
    out.alpha_ = float(fit.alpha)
    out.alpha_source_ = source
    out.prior_mean_ = pr.mean.copy()
    out.loss_ = src.loss.name
    params = _loss_parameters(src.loss)
    if params:
        out.loss_params_ = np.asarray(params, dtype=np.float64)
    out.n_features_in_ = src.n_features
    out.n_samples_ = n
    for k, val in errors.items():
        setattr(out, k, float(val))
    if src.feature_names is not None:
        out.feature_names_in_ = np.asarray(src.feature_names, dtype=object)
    if "support" in pr.info:
        out.support_ = np.asarray(pr.info["support"], dtype=np.int64)
    if "rank" in pr.info:
        out.rank_ = int(pr.info["rank"])
    if "cluster" in pr.info:
        out.cluster_ = int(pr.info["cluster"])
    if classes is not None:
        out.classes_ = classes
    return out
