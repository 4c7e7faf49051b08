r"""The trace norm with a loss other than the squared one on wide or sparse data: a growing
subspace of W's columns, each restricted problem small enough to be solved in Gram form.

For ``Omega = alpha ||W||_*`` the optimum satisfies ``G in alpha d||W||_*`` with ``G = -grad``
of the data term (p x T), so ``||G||_2 <= alpha`` and W's columns span the top left singular
vectors of G, a space of at most T (in practice the rank r) dimensions. With an orthonormal
basis ``U`` (p x k) of a guess of that space, ``W = U C`` turns the problem into the same
multi-task problem on the k features ``X U`` with the penalty ``alpha ||C||_*`` (``||U C||_* =
||C||_*``): a problem of k << p features and tasks of more rows than features, solved by the
solver table (proximal Newton in Gram form), warm-started from ``U' W``. After each restricted
solve one pass over the data gives the full gradient and the duality gap of the whole problem;
the left singular vectors of G whose singular values exceed ``alpha`` (where the dual bound
fails), less their part in the basis, join it, and the next restricted problem is solved to a
twentieth of the gap (tighter where no direction is new: what fails then lies in the basis) --
a working set of directions, as a working set of features for the lasso. The basis is pruned
to W's own directions (a rotation of ``X U``, no pass) when it would pass ``4 T`` or the
tasks' mean number of rows (past it the restricted problems lose their Gram form). At the
optimum no direction violates, and the gap of the whole problem is that of the last
restricted one. A pass costs one product with X and one with its transpose, plus
``X u`` for each new direction; the restricted solves touch only ``N x k`` numbers, so X is
never copied nor densified (a sparse X stays sparse).

Sparse plus low rank (``penalty.spans_subspace_and_entries``: ``alpha (||Q||_* + g ||P||_1)``
over ``V = (P, Q)``, ``W = P + Q``) is solved the same way with the sparse part restricted to
a working set F of features: ``P = E_F P_F`` beside ``Q = U C`` makes the problem one on the
``|F| + k`` features ``[X_F, X U]`` under ``alpha (g ||P_F||_1 + ||C||_*)``
(:class:`RestrictedSparseLowRank`, a norm with the dual norm ``max(max|G_F| / g,
||G_U||_2)``). Both parts see the same gradient, so the one pass gives both dual bounds: the
features with an entry ``|G_jt| > alpha g`` join F (the largest first, at most as many as F
holds, 32 at least) as the violating directions join U, and F is pruned to P's nonzero rows
when it outgrows the rows the Gram form allows beside U.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..datafits import Datafit
from ..penalties import Penalty
from ..penalties.base import NormPenalty, svt
from ..penalties.spectral import spectral_norm
from ..taskdata import TaskData
from .certificates import Certificate, Reference, certify, duality_gap_terms, fit_intercepts
from .result import SolverResult

__all__ = ["subspace_solve", "subspace_applies", "RestrictedSparseLowRank"]

#: The basis holds at most this many times T directions; past it, it restarts from W's own.
MAX_BASIS_RATIO = 4
#: The sparse part's working set takes at most this many new features in a step, or as many
#: as it holds where that is more (it at most doubles).
MIN_NEW_FEATURES = 32


class RestrictedSparseLowRank(NormPenalty):
    r"""Sparse plus low rank on a working set: ``alpha (g ||M_F||_1 + ||M_U||_*)`` on
    ``M = [M_F; M_U]`` (m x T), whose first ``n_entries`` rows are the sparse part's rows on
    the working set of features and the rest the low-rank part's coordinates ``C`` in an
    orthonormal basis U (``||U C||_* = ||C||_*``). A norm, with the dual norm
    ``max(max|G_F| / g, ||G_U||_2)``; the prox soft-thresholds ``M_F`` and
    singular-value-thresholds ``M_U``."""

    name = "restricted_sparse_lowrank"
    distributable = False
    _param_names = ("n_entries", "sparse_weight")

    def __init__(self, n_entries: int, sparse_weight: float):
        self.n_entries = int(n_entries)
        self.sparse_weight = float(sparse_weight)

    def value(self, V: np.ndarray, alpha: float) -> float:
        k, low = self.n_entries, V[self.n_entries:]
        nuc = np.linalg.svd(low, compute_uv=False).sum() if low.size else 0.0
        return float(alpha * (nuc + self.sparse_weight * np.abs(V[:k]).sum()))

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        k, thr = self.n_entries, step * alpha * self.sparse_weight
        top = np.sign(V[:k]) * np.maximum(np.abs(V[:k]) - thr, 0.0)
        return np.vstack([top, svt(V[k:], step * alpha)])

    def dual_norm(self, G: np.ndarray) -> float:
        k = self.n_entries
        return float(max(np.abs(G[:k]).max(initial=0.0) / self.sparse_weight,
                         spectral_norm(G[k:])))


def subspace_applies(data: TaskData) -> bool:
    """A basis of ``MAX_BASIS_RATIO * T`` directions is much smaller than p (at most half),
    so that the restricted problems are small and never qualify again."""
    return data.rows_local and data.n_features >= 2 * MAX_BASIS_RATIO * data.n_tasks


def _fitted_scores(data: TaskData, datafit: Datafit, W: np.ndarray, b: np.ndarray,
                   fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """The scores at ``(W, b)``, with the intercepts minimized exactly when fitted."""
    f = data.linear(W, b)
    if fit_intercept:
        S = datafit.state(data.y, f)
        S, b = fit_intercepts(data, datafit, S, b.copy())
        f = datafit.scores(data.y, S)
    return f, b


def _certified(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float, W: np.ndarray,
               f: np.ndarray, fit_intercept: bool, ref: Reference) -> tuple[Certificate,
                                                                          np.ndarray]:
    """The whole problem's certificate and minus the data term's gradient ``G = X' (c
    theta)``, from one product with X' (the duality gap's own)."""
    if penalty.has_dual and alpha > 0:
        gap, primal, dual, _, G = duality_gap_terms(data, datafit, penalty, alpha, W, f,
                                                    fit_intercept)
        return Certificate("duality_gap", gap, primal, dual, ref.P0), G
    cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref)
    return cert, data.adjoint(data.c * datafit.theta(data.y, f))


def _left_vectors(M: np.ndarray, above: float) -> np.ndarray:
    """The left singular vectors of M (p x T, T small) whose singular values exceed ``above``,
    from the T x T Gram's eigendecomposition (then orthonormalized)."""
    if not M.size:
        return np.zeros((M.shape[0], 0))
    lam, E = np.linalg.eigh(M.T @ M)
    s = np.sqrt(np.maximum(lam, 0.0))
    keep = s > above
    if not keep.any():
        return np.zeros((M.shape[0], 0))
    Q, _ = np.linalg.qr((M @ E[:, keep]) / s[keep])
    return Q


def _extend(U: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning ``[U, new]``: U kept, ``new`` orthogonalized against it
    (twice, for rounding) and those with a norm left (above 1e-8) appended."""
    if new.shape[1] == 0:
        return U
    for _ in range(2):
        new = new - U @ (U.T @ new)
    Q, R = np.linalg.qr(new)
    keep = np.abs(np.diag(R)) > 1e-8
    return np.hstack([U, Q[:, keep]])


def restricted_data(data: TaskData, XU: np.ndarray) -> TaskData:
    """The same problem (rows, targets, weights) on the features ``X U`` (N x k or n x k)."""
    return dataclasses.replace(data, X=np.asfortranarray(XU), x_shift=None, _cache={},
                               _small=None)


def _parts(penalty: Penalty, W: np.ndarray, V0: np.ndarray | None) -> np.ndarray | None:
    """The start ``(P, Q)`` of a sparse plus low-rank penalty (``V0``, else W lifted), or None
    for a penalty of W itself."""
    if not penalty.spans_subspace_and_entries:
        return None
    return np.array(penalty.lift(W) if V0 is None else V0, dtype=np.float64)


def _new_features(G: np.ndarray, bound: float, F: np.ndarray) -> np.ndarray:
    """The features outside F with an entry ``|G_jt| > bound``, the largest first, at most
    ``max(|F|, MIN_NEW_FEATURES)``."""
    top = np.abs(G).max(axis=1)
    top[F] = 0.0
    new = np.flatnonzero(top > bound)
    limit = max(F.size, MIN_NEW_FEATURES)
    if new.size > limit:
        new = new[np.argsort(-top[new], kind="stable")[:limit]]
    return np.sort(new)


def _columns(X, F: np.ndarray) -> np.ndarray:
    """``X[:, F]`` as a dense array (F is small)."""
    cols = X[:, F]
    return np.asarray(cols.toarray() if hasattr(cols, "toarray") else cols, dtype=np.float64)


def subspace_solve(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                   W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                   tol: float, max_iter: int, verbose: int = 0,
                   restricted_solve: Callable[..., SolverResult],
                   V0: np.ndarray | None = None) -> SolverResult:
    """Minimize ``datafit + alpha ||W||_*`` over a growing subspace of W's columns (with
    ``penalty.spans_subspace_and_entries``: ``datafit + alpha (||Q||_* + g ||P||_1)`` over
    ``W = P + Q``, P on a growing working set of features, from ``V0``).

    ``restricted_solve(data, penalty, C0, b0, tol, max_iter)`` solves the problem on the
    features ``X U`` (``[X_F, X U]``) under the penalty given (the trace norm, or
    :class:`RestrictedSparseLowRank`) from ``(C0, b0)`` to the relative gap ``tol`` (the
    table's row for it); ``max_iter`` bounds the outer steps and, each, the restricted solve.
    The iteration count returned is that of the restricted solves plus one per outer step (a
    pass over X)."""
    X = data.X
    V = _parts(penalty, W, V0)
    g = None if V is None else float(penalty.sparse_weight)
    W = np.array(W, dtype=np.float64) if V is None else penalty.compose(V)
    V = W if V is None else V
    f, b = _fitted_scores(data, datafit, W, b, fit_intercept)
    cert, G = _certified(data, datafit, penalty, alpha, V, f, fit_intercept, ref)
    U = np.zeros((data.n_features, 0))
    XU = np.zeros((X.shape[0], 0))
    F = np.zeros(0, dtype=np.intp)  # the sparse part's working set of features
    if g is not None:  # the start's own features and directions
        F = np.flatnonzero(np.any(V[0] != 0.0, axis=1))
        U = _left_vectors(V[1], 1e-9 * spectral_norm(V[1]) if V[1].any() else np.inf)
        XU = np.asarray(X @ U).reshape(X.shape[0], -1)
    XF = _columns(X, F)
    n_iter, step, shrink, best, stalls = 0, 0, 1.0, np.inf, 0
    # at most 4 T directions, and no more than the tasks' mean rows: the restricted
    # problems keep more rows than features (Gram form)
    rows = max(data.n_obs // data.n_tasks, 8)
    cap = min(MAX_BASIS_RATIO * data.n_tasks, rows)
    while True:
        if verbose:
            print(f"[subspace] step {step:3d}  basis {U.shape[1]:4d}  features {F.size:5d}  "
                  f"{cert.kind} {cert.relative:.3e}")
        if cert.converged(tol):
            return SolverResult(W, b, max(n_iter, 1), cert, True, V)
        stalls = 0 if cert.relative < 0.9 * best else stalls + 1
        best = min(best, cert.relative)
        if step >= max_iter or stalls >= 5:
            return SolverResult(W, b, max(n_iter, 1), cert, False, V,
                                stalled=step < max_iter)
        # the directions where the dual bound ||G||_2 <= alpha fails, less their part in the
        # basis (a restricted solve to its tolerance leaves little there)
        R = _left_vectors(G, alpha)
        R = R - U @ (U.T @ R)
        new = _left_vectors(R, 1e-6)
        joining = np.zeros(0, dtype=np.intp) if g is None else _new_features(G, alpha * g, F)
        if new.shape[1] == 0 and joining.size == 0:
            shrink *= 0.1  # what violates lies in the restricted problem: solve it more tightly
        low = W if g is None else V[1]  # the low-rank part
        if U.shape[1] + new.shape[1] > cap:  # pruned to its own directions (X U rotated)
            C = U.T @ low
            E = _left_vectors(C, 1e-9 * float(np.linalg.norm(C, 2)) if C.any() else np.inf)
            U, XU = U @ E, XU @ E
        new = new[:, :max(cap - U.shape[1], 1)]
        k = U.shape[1]
        U = _extend(U, new)
        if U.shape[1] > k:
            XU = np.hstack([XU, np.asarray(X @ U[:, k:])])
        C = U.T @ low
        if g is not None:
            if F.size + joining.size > max(rows - U.shape[1], 8):  # pruned to P's own rows
                keep = np.any(V[0][F] != 0.0, axis=1)
                F, XF = F[keep], XF[:, keep]
            order = np.argsort(np.concatenate([F, joining]), kind="stable")
            F = np.concatenate([F, joining])[order]
            XF = np.hstack([XF, _columns(X, joining)])[:, order]
        inner_tol = max(0.05 * shrink * cert.relative, 0.3 * tol)
        if g is None:  # (the trace norm of C)
            small, M0, small_penalty = XU, C, penalty
        else:
            small = np.hstack([XF, XU])
            M0 = np.vstack([V[0][F], C])
            small_penalty = RestrictedSparseLowRank(F.size, g)
        res = restricted_solve(restricted_data(data, small), small_penalty, M0, b, inner_tol,
                               max_iter)
        if verbose:
            print(f"[subspace]   restricted: {res.n_iter} iterations, {res.certificate.kind} "
                  f"{res.certificate.relative:.3e} (asked {inner_tol:.1e})")
        n_iter += res.n_iter + 1
        step += 1
        b = res.b
        if g is None:
            W = V = U @ res.W
        else:
            V = np.zeros((2, *W.shape))
            V[0][F] = res.W[:F.size]
            V[1] = U @ res.W[F.size:]
            W = penalty.compose(V)
        f, b = _fitted_scores(data, datafit, W, b, fit_intercept)
        cert, G = _certified(data, datafit, penalty, alpha, V, f, fit_intercept, ref)
