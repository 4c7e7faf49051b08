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
``|F| + k`` features ``[X_F, X U]`` under ``alpha (g ||P_F||_1 + ||C||_*)`` (the penalty's
``on_working_set(|F|)``, a norm with the dual norm ``max(max|G_F| / g, ||G_U||_2)``). Both
parts see the same gradient, so the one pass gives both dual bounds: the features with an
entry ``|G_jt| > alpha g`` join F (the largest first, at most as many as F holds, 32 at
least, while ``|F| + k`` stays within the tasks' mean rows) as the violating directions join
U, and the features where P is zero leave F. Between the passes the iterate is kept as its
pieces ``(P_F, C)``: no p x T matrix is formed but the gradient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.sparse

from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.spectral import spectral_norm
from ...taskdata import TaskData
from ..certificates.certify import (
    Certificate,
    Reference,
    certify,
    dual_point,
    duality_gap_terms,
    per_row,
    scores_intercepts,
)
from ..result import SolverResult

__all__ = ["subspace_solve", "subspace_applies"]

#: The basis holds at most this many times T directions; past it, it restarts from W's own.
MAX_BASIS_RATIO = 4
#: The sparse part's working set takes at most this many new features in a step, or as many
#: as it holds where that is more (it at most doubles).
MIN_NEW_FEATURES = 32


def subspace_applies(data: TaskData) -> bool:
    """A basis of ``MAX_BASIS_RATIO * T`` directions is much smaller than p (at most half),
    so that the restricted problems are small and never qualify again."""
    return data.rows_local and data.n_features >= 2 * MAX_BASIS_RATIO * data.n_tasks


def _fitted_scores(data: TaskData, datafit: Datafit, W: np.ndarray, b: np.ndarray,
                   fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """The scores at ``(W, b)``, with the intercepts minimized exactly when fitted."""
    f = data.linear(W, b)
    if fit_intercept:
        f, b = scores_intercepts(data, datafit, f, b.copy())
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


def _orthonormalized(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q, R`` of the QR factorization of A (p x m, m small, Fortran order), Q written over
    A: Householder (LAPACK's, as ``np.linalg.qr``) with no p x m workspace beside A."""
    return scipy.linalg.qr(np.asfortranarray(A), overwrite_a=True, mode="economic",
                           check_finite=False)


def _left_vectors(M: np.ndarray, above: float) -> np.ndarray:
    """The left singular vectors of M (p x T, T small) whose singular values exceed ``above``,
    from the T x T Gram's eigendecomposition (then orthonormalized in place)."""
    if not M.size:
        return np.zeros((M.shape[0], 0))
    lam, E = np.linalg.eigh(M.T @ M)
    s = np.sqrt(np.maximum(lam, 0.0))
    keep = s > above
    if not keep.any():
        return np.zeros((M.shape[0], 0))
    A = (E[:, keep].T @ M.T).T  # (M E, in Fortran order: its QR in place)
    A /= s[keep]
    return _orthonormalized(A)[0]


def _orthogonal_part(U: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Orthonormal columns that extend U's to span ``[U, new]``: ``new`` orthogonalized
    against U (twice, for rounding; in place, ``new`` is overwritten), those with a norm left
    (above 1e-8)."""
    new = np.asfortranarray(new)
    for _ in range(2):
        new -= U @ (U.T @ new)
    Q, R = _orthonormalized(new)
    kept = np.abs(np.diag(R)) > 1e-8
    return Q if kept.all() else Q[:, kept]


#: Rows of the basis rotated at a time, in place (U E, E of at most as many columns as U).
ROTATE_ROWS = 4096


def restricted_data(data: TaskData, XU: np.ndarray) -> TaskData:
    """The same problem (rows, targets, weights) on the features ``X U`` (N x k or n x k)."""
    return dataclasses.replace(data, X=np.asfortranarray(XU), x_shift=None, _cache={},
                               _small=None)


def _parts(penalty: Penalty, W: np.ndarray, V0: np.ndarray | None) -> np.ndarray | None:
    """The start ``(P, Q)`` of a sparse plus low-rank penalty (``V0``, else W lifted), or None
    for a penalty of W itself."""
    if not penalty.spans_subspace_and_entries:
        return None
    return np.asarray(penalty.lift(W) if V0 is None else V0, dtype=np.float64)


def _new_features(G: np.ndarray, bound: float, F: np.ndarray) -> np.ndarray:
    """The features outside F with an entry ``|G_jt| > bound``, the largest first, at most
    ``max(|F|, MIN_NEW_FEATURES)``."""
    top = np.abs(G).max(axis=1)
    top[F] = 0.0
    new = np.flatnonzero(top > bound)
    return new[np.argsort(-top[new], kind="stable")[:max(F.size, MIN_NEW_FEATURES)]]


def _columns(X, F: np.ndarray) -> np.ndarray:
    """``X[:, F]`` as a dense array (F is small)."""
    cols = X[:, F]
    return np.asarray(cols.toarray() if hasattr(cols, "toarray") else cols, dtype=np.float64)


def _piece_certificate(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                       value: float, f: np.ndarray, fit_intercept: bool,
                       ref: Reference) -> tuple[Certificate, np.ndarray]:
    """The whole problem's duality gap and ``G = X' (c theta)`` at the scores f, the
    penalty's value given (from the restricted variable: no p x T iterate is formed)."""
    theta = dual_point(data, datafit, f, fit_intercept)
    G = data.adjoint(data.c * theta)
    s = penalty.dual_scaling(G, alpha)
    dual = (datafit.dual_value(data.y, per_row(s, data) * theta, data.c)
            - penalty.scaled_conjugate(G, s, alpha))
    primal = datafit.value(data.y, f, data.c) + value
    return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, ref.P0), G


def _products(X, Q: np.ndarray) -> np.ndarray:
    """``X Q`` (N x m, m small); for a sparse X a column of Q at a time: scipy's product
    would make a C-ordered copy of Q (p x m)."""
    if not scipy.sparse.issparse(X):
        return np.asarray(X @ Q)
    XQ = np.empty((X.shape[0], Q.shape[1]))
    for j in range(Q.shape[1]):
        XQ[:, j] = X @ Q[:, j]
    return XQ


class _Pieces:
    """The iterate as its pieces: the sparse part's rows ``P_F`` on the features F and the
    low-rank part's coordinates C in the basis U, with ``X_F`` and ``X U`` (N x |F|, N x k);
    ``W = E_F P_F + U C`` (``P_F`` empty for the trace norm)."""

    def __init__(self, X, U: np.ndarray, C: np.ndarray, F: np.ndarray, PF: np.ndarray,
                 capacity: int):
        self.X, self.U, self.C, self.F, self.PF = X, U, C, F, PF
        # the basis's columns in one buffer of ``capacity`` columns once it grows: U a view
        self.capacity, self._buf = capacity, None
        self.XU = np.asarray(X @ U).reshape(X.shape[0], -1)
        self.XF = _columns(X, F)

    def design(self) -> np.ndarray:
        return np.hstack([self.XF, self.XU]) if self.F.size else self.XU

    def variable(self) -> np.ndarray:
        return np.vstack([self.PF, self.C]) if self.F.size else self.C

    def set_variable(self, M: np.ndarray) -> None:
        self.PF, self.C = M[:self.F.size], M[self.F.size:]

    def _room(self, k: int) -> np.ndarray:
        """The buffer of the basis with room for k columns, U's columns first (allocated
        once at ``capacity`` columns, again only past it): the basis grows and rotates in
        place, no second p x k copy beside it."""
        if self._buf is None or self._buf.shape[1] < k:
            buf = np.empty((self.U.shape[0], max(k, self.capacity)))
            buf[:, :self.U.shape[1]] = self.U
            self._buf = buf
        return self._buf

    def rotate(self, E: np.ndarray) -> None:
        """The basis ``U E`` (E with orthonormal columns spanning C's column space, at most
        as many as U's): rotated in place, a block of rows at a time."""
        k, m = E.shape
        buf = self._room(k)
        for lo in range(0, buf.shape[0], ROTATE_ROWS):
            rows = slice(lo, lo + ROTATE_ROWS)
            buf[rows, :m] = buf[rows, :k] @ E
        self.U, self.XU, self.C = buf[:, :m], self.XU @ E, E.T @ self.C

    def extend(self, new: np.ndarray) -> None:
        """The basis with ``new`` directions (orthogonalized against it) appended, at C = 0."""
        if new.shape[1] == 0:
            return
        k = self.U.shape[1]
        Q = _orthogonal_part(self.U, new)
        if Q.shape[1]:
            buf = self._room(k + Q.shape[1])
            buf[:, k:k + Q.shape[1]] = Q
            self.U = buf[:, :k + Q.shape[1]]
            self.XU = np.hstack([self.XU, _products(self.X, Q)])
            self.C = np.vstack([self.C, np.zeros((Q.shape[1], self.C.shape[1]))])

    def set_features(self, F: np.ndarray) -> None:
        """The working set F (sorted), ``P_F`` kept on the features that stay, 0 on new."""
        stay, joining = np.intersect1d(F, self.F), np.setdiff1d(F, self.F)
        old_at, new_at = np.searchsorted(self.F, stay), np.searchsorted(F, stay)
        PF = np.zeros((F.size, self.C.shape[1]))
        PF[new_at] = self.PF[old_at]
        XF = np.empty((self.X.shape[0], F.size))
        XF[:, new_at] = self.XF[:, old_at]
        XF[:, np.searchsorted(F, joining)] = _columns(self.X, joining)
        self.F, self.PF, self.XF = F, PF, XF

    def assemble(self, g: float | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(W, V)``: V = W for the trace norm, else ``(P, Q)`` with ``W = P + Q``."""
        if g is None:
            W = self.U @ self.C
            return W, W
        V = np.zeros((2, *shape))
        V[0][self.F] = self.PF
        np.matmul(self.U, self.C, out=V[1])
        return V[0] + V[1], V


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
    ``penalty.on_working_set(|F|)``) from ``(C0, b0)`` to the relative gap ``tol`` (the
    table's row for it); ``max_iter`` bounds the outer steps and, each, the restricted solve.
    The iteration count returned is that of the restricted solves plus one per outer step (a
    pass over X). Between the passes the iterate is kept as its pieces (no p x T matrix but
    the gradient)."""
    X, shape = data.X, (data.n_features, data.n_tasks)
    V = _parts(penalty, W, V0)
    g = None if V is None else float(penalty.sparse_weight)
    W = np.asarray(W, dtype=np.float64) if V is None else penalty.compose(V)  # (the row's own)
    V = W if V is None else V
    f, b = _fitted_scores(data, datafit, W, b, fit_intercept)
    cert, G = _certified(data, datafit, penalty, alpha, V, f, fit_intercept, ref)
    # at most 4 T directions, and no more than the tasks' mean rows: the restricted
    # problems keep more rows than features (Gram form)
    rows = max(data.n_obs // data.n_tasks, 8)
    cap = min(MAX_BASIS_RATIO * data.n_tasks, rows)
    pieces = _pieces_of(X, V, g, shape, cap)
    start = (W, V)  # (returned where it is the answer; the trace norm's read in the basis)
    V = W = None
    by_pieces = penalty.has_dual and alpha > 0
    n_iter, step, shrink, best, stalls = 0, 0, 1.0, np.inf, 0
    while True:
        if verbose:
            print(f"[subspace] step {step:3d}  basis {pieces.U.shape[1]:4d}  features "
                  f"{pieces.F.size:5d}  {cert.kind} {cert.relative:.3e}")
        done = cert.converged(tol)
        stalls = 0 if cert.relative < 0.9 * best else stalls + 1
        best = min(best, cert.relative)
        if done or step >= max_iter or stalls >= 5:
            G = None  # (not held beside the iterate formed)
            W, V = start if start is not None else pieces.assemble(g, shape)
            return SolverResult(W, b, max(n_iter, 1), cert, done, V,
                                stalled=not done and step < max_iter)
        # the features with an entry where the dual bound |G_jt| <= alpha g fails, while the
        # restricted problem keeps its Gram form (no more features than the tasks' mean rows)
        F = pieces.F if g is None else pieces.F[np.any(pieces.PF != 0.0, axis=1)]
        joining = (np.zeros(0, dtype=np.intp) if g is None
                   else _new_features(G, alpha * g, pieces.F))
        # the directions where the dual bound ||G||_2 <= alpha fails, less their part in the
        # basis (a restricted solve to its tolerance leaves little there); G let go first
        U = pieces.U
        R, G = _left_vectors(G, alpha), None
        R -= U @ (U.T @ R)
        new, R = _left_vectors(R, 1e-6), None
        room = rows - min(U.shape[1] + new.shape[1], cap) - F.size
        E = None  # the basis pruned to its own directions (X U rotated): past the cap, or to
        if U.shape[1] + new.shape[1] > cap or (joining.size and room <= 0):  # make room
            C = pieces.C
            E = _left_vectors(C, 1e-9 * float(np.linalg.norm(C, 2)) if C.any() else np.inf)
            room = rows - min(E.shape[1] + new.shape[1], cap) - F.size
        U = None
        if joining.size and room <= 0:
            # P's support outgrows the Gram form of the restricted problems (a small
            # sparse_weight): the caller goes on from here over the parts themselves
            W, V = start if start is not None else pieces.assemble(g, shape)
            return SolverResult(W, b, max(n_iter, 1), cert, False, V, stalled=True)
        joining = np.sort(joining[:max(room, 0)])
        if new.shape[1] == 0 and joining.size == 0:
            shrink *= 0.1  # what violates lies in the restricted problem: solve it more tightly
        if E is not None:
            pieces.rotate(E)
        pieces.extend(new[:, :max(cap - pieces.U.shape[1], 1)])
        new = None  # (not held through the restricted solve and the next pass)
        if start is not None and g is None:  # the trace norm's start, in the first basis
            pieces.C = pieces.U.T @ start[0]
        start = None
        if g is not None:  # P's own rows and the violating ones
            pieces.set_features(np.union1d(F, joining))
        inner_tol = max(0.05 * shrink * cert.relative, 0.3 * tol)
        small_penalty = penalty if g is None else penalty.on_working_set(pieces.F.size)
        small = restricted_data(data, pieces.design())
        res = restricted_solve(small, small_penalty, pieces.variable(), b, inner_tol,
                               max_iter)
        if verbose:
            print(f"[subspace]   restricted: {res.n_iter} iterations, {res.certificate.kind} "
                  f"{res.certificate.relative:.3e} (asked {inner_tol:.1e})")
        n_iter += res.n_iter + 1
        step += 1
        pieces.set_variable(res.W)
        f, b = _fitted_scores(small, datafit, res.W, res.b, fit_intercept)
        small = None  # (its N x k design not held through the pass, nor beside the next)
        if by_pieces:
            cert, G = _piece_certificate(data, datafit, penalty, alpha,
                                         small_penalty.value(res.W, alpha), f, fit_intercept,
                                         ref)
        else:
            W, V = pieces.assemble(g, shape)
            cert, G = _certified(data, datafit, penalty, alpha, V, f, fit_intercept, ref)
            W = V = None


def _pieces_of(X, V: np.ndarray, g: float | None, shape: tuple[int, int],
               capacity: int) -> _Pieces:
    """The start's pieces: none for the trace norm (its basis starts empty); for sparse plus
    low rank P's nonzero rows and Q's own directions. The basis grows in one buffer of
    ``capacity`` columns (the cap; a larger one only where a basis passes it)."""
    T = shape[1]
    if g is None:
        return _Pieces(X, np.zeros((shape[0], 0)), np.zeros((0, T)), np.zeros(0, np.intp),
                       np.zeros((0, T)), capacity)
    F = np.flatnonzero(np.any(V[0] != 0.0, axis=1))
    U = _left_vectors(V[1], 1e-9 * spectral_norm(V[1]) if V[1].any() else np.inf)
    return _Pieces(X, U, U.T @ V[1], F, V[0][F], capacity)
