r"""Row-separable penalties: solved by block coordinate descent, certified by a duality gap.

=========================  ==========================================================
penalty                    Omega(W)
=========================  ==========================================================
``L1()``                   alpha * sum_jt |W_jt|
``L2()``                   alpha / 2 * ||W||_F^2
``ElasticNet(rho)``        alpha * (rho ||W||_1 + (1 - rho) / 2 ||W||_F^2)
``L21(rho)``               alpha * (rho sum_j ||W_j||_2 + (1 - rho) / 2 ||W||_F^2)
=========================  ==========================================================
"""

from __future__ import annotations

import numpy as np

from .base import ENTRYWISE, ROWS, BlockStep, Penalty, check_ratio, inner

__all__ = ["L1", "L2", "ElasticNet", "L21"]


class _ElasticType(Penalty):
    r"""``alpha * (rho * sum_g ||W_g|| + (1 - rho) / 2 ||W||_F^2)`` over groups g.

    Groups are single entries (``group=False``) or rows (``group=True``).
    """

    group: bool = False
    _param_names = ("l1_ratio",)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_ratio(self.l1_ratio, "l1_ratio")
        return self

    def __init__(self, l1_ratio: float = 1.0):
        self.l1_ratio = l1_ratio

    @property
    def rho(self) -> float:
        """``l1_ratio`` as a float, validated (``ValueError`` outside [0, 1])."""
        return check_ratio(self.l1_ratio, "l1_ratio")

    def _norms(self, G: np.ndarray) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", G, G)) if self.group else np.abs(G)

    def value(self, W, alpha):
        rho = self.rho
        val = rho * self._norms(W).sum() if rho > 0 else 0.0
        if rho < 1:
            val += 0.5 * (1.0 - rho) * float(inner(W, W))
        return float(alpha * val)

    def prox(self, W, step, alpha):
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        if self.group:
            nrm = self._norms(W)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
            return W * (scale * shrink)[:, None]
        return np.sign(W) * np.maximum(np.abs(W) - thr, 0.0) * shrink

    def bcd_params(self, alpha):
        rho = self.rho
        return BlockStep(alpha * rho, alpha * (1.0 - rho), ROWS if self.group else ENTRYWISE)

    def dual_norm(self, G: np.ndarray) -> float:
        r"""Dual norm of the sparsity part: :math:`\max_{jt} |G_{jt}|` (L1) or
        :math:`\max_j \|G_j\|_2` (L2,1)."""
        return float(self._norms(G).max()) if G.size else 0.0

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float | np.ndarray:
        """1 when the conjugate is finite (rho < 1); else the largest scaling into the dual
        ball, per task for the entrywise norm (its dual is separable over tasks, so one task's
        violation does not shrink the others' dual points)."""
        if self.rho < 1.0:
            return 1.0
        if not self.group:
            m = np.abs(G).max(axis=0) if G.shape[0] else np.zeros(G.shape[1])
            return np.where(m <= alpha, 1.0, alpha / np.maximum(m, alpha))
        m = self.dual_norm(G)
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``Omega*(G) = sum_g (||G_g|| - alpha rho)_+^2 / (2 alpha (1 - rho))`` (0 if rho = 1)."""
        rho = self.rho
        if rho == 1.0:
            return 0.0
        excess = np.maximum(self._norms(G) - alpha * rho, 0.0)
        return float(np.dot(excess.ravel(), excess.ravel()) / (2.0 * alpha * (1.0 - rho)))

    def alpha_max(self, G0: np.ndarray) -> float:
        rho = self.rho
        if rho == 0.0:
            raise ValueError(
                f"{self!r} has no alpha_max: with l1_ratio=0 no finite alpha gives W = 0. "
                "Use l1_ratio > 0 or give an explicit alpha grid."
            )
        return self.dual_norm(G0) / rho

    def directional_derivative(self, W: np.ndarray, D: np.ndarray, alpha: float) -> float:
        """The right derivative of ``t -> Omega(W + t D)`` at ``t = 0``."""
        rho = self.rho
        val = (1.0 - rho) * float(inner(W, D)) if rho < 1 else 0.0
        if rho > 0:
            nw = self._norms(W)
            if self.group:
                on = nw > 0
                val += rho * float(np.sum(np.einsum("ij,ij->i", W[on], D[on]) / nw[on]))
                val += rho * float(self._norms(D[~on]).sum())
            else:
                val += rho * float(np.sum(np.where(W != 0, np.sign(W) * D, np.abs(D))))
        return alpha * val

    def active_gradient(self, W: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(D, mask)``: the gradient of Omega at W where it is smooth (``mask``: nonzero
        entries, or every entry of a nonzero row for groups), 0 elsewhere."""
        rho = self.rho
        D = alpha * (1.0 - rho) * W
        if self.group:
            nw = self._norms(W)
            active = nw > 0
            D[active] += alpha * rho * W[active] / nw[active, None]
            mask = np.repeat(active[:, None], W.shape[1], axis=1)
        else:
            mask = W != 0
            D += alpha * rho * np.sign(W)
        return D, mask

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per group: distance from ``G`` (minus the gradient) to the subdifferential at W."""
        rho = self.rho
        V = G - alpha * (1.0 - rho) * W
        l1 = alpha * rho
        if self.group:
            nw = self._norms(W)
            active = nw > 0
            out = np.maximum(self._norms(V) - l1, 0.0)
            if active.any():
                D = V[active] - l1 * W[active] / nw[active, None]
                out[active] = np.sqrt(np.einsum("ij,ij->i", D, D))
            return out
        return np.where(W != 0, np.abs(V - l1 * np.sign(W)), np.maximum(np.abs(V) - l1, 0.0))


class L1(_ElasticType):
    r"""Lasso penalty: every task selects its own features.

    .. math::

        \Omega(W) = \alpha \sum_{j,t} |W_{jt}|

    Entrywise sparsity, separable over tasks: the fit is T independent lasso problems that
    share only ``alpha``, so this is the sparse *independent* baseline to compare a
    multi-task penalty with. Pick it when the tasks are believed to use different features.
    With one task it is scikit-learn's ``Lasso(alpha=alpha)``. Solved by block coordinate
    descent, certified by a duality gap, with ``alpha_max = max_jt |G0_jt|``.

    See Also
    --------
    regmtl.L21 : The same features for every task.
    regmtl.ElasticNet : Lasso with a ridge part.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L1, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0  # task t uses feature t only
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=L1(), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0], [1], [2]]
    """

    name = "l1"
    _param_names = ()

    def __init__(self):
        self.l1_ratio = 1.0


class L2(_ElasticType):
    r"""Ridge penalty: independent ridge regressions, one per task.

    .. math::

        \Omega(W) = \frac{\alpha}{2} \|W\|_F^2

    Shrinks every coefficient and shares nothing between tasks (T independent fits with one
    ``alpha``): the dense *independent* baseline. With one task it is scikit-learn's
    ``Ridge(alpha=n * alpha)`` (the data term is averaged over the n samples), and with the
    logistic loss ``LogisticRegression(C=1 / (n * alpha))``. No finite ``alpha`` makes W
    zero, so regularization paths use a grid around the data's scale
    (:func:`regmtl.selection.alpha_scale`).

    See Also
    --------
    regmtl.MeanRegularized : Ridge towards the mean task instead of towards 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from regmtl import L2, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 8)), rng.standard_normal(60)
    >>> model = MultiTaskRegressor(penalty=L2(), alpha=0.1, tol=1e-10).fit(X, y)
    >>> ridge = Ridge(alpha=60 * 0.1).fit(X, y)
    >>> bool(np.allclose(model.coef_, ridge.coef_, atol=1e-6))
    True
    """

    name = "l2"
    _param_names = ()

    def __init__(self):
        self.l1_ratio = 0.0


class ElasticNet(_ElasticType):
    r"""Elastic net: entrywise sparsity with a ridge part, every task on its own.

    .. math::

        \Omega(W) = \alpha \Big(\rho \sum_{j,t} |W_{jt}|
        + \frac{1 - \rho}{2} \|W\|_F^2\Big), \qquad \rho = \texttt{l1\_ratio}.

    Separable over tasks like :class:`~regmtl.L1`; the ridge part keeps groups of correlated
    features together instead of picking one of them. With one task it is scikit-learn's
    ``ElasticNet(alpha=alpha, l1_ratio=rho)``. ``alpha_max = max_jt |G0_jt| / rho``.

    Parameters
    ----------
    l1_ratio : float in [0, 1], default=0.5
        Weight ``rho`` of the L1 part: 1 is :class:`~regmtl.L1`, 0 is :class:`~regmtl.L2`.

    See Also
    --------
    regmtl.L21 : The multi-task version (rows of W selected jointly).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import ElasticNet, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=ElasticNet(l1_ratio=0.9), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0], [1], [2]]
    """

    name = "elasticnet"

    def __init__(self, l1_ratio: float = 0.5):
        self.l1_ratio = l1_ratio


class L21(_ElasticType):
    r"""L2,1 (group lasso over features): joint feature selection across tasks.

    .. math::

        \Omega(W) = \alpha \Big(\rho \sum_j \|W_j\|_2 + \frac{1 - \rho}{2} \|W\|_F^2\Big),
        \qquad \rho = \texttt{l1\_ratio}.

    ``W_j`` is feature j across all tasks, so a feature is kept or dropped for every task at
    once while its weights may differ from task to task. Pick it when the tasks are believed
    to depend on a common small set of features (the default penalty of the estimators). With
    ``l1_ratio=1`` (the default) and a shared design this is scikit-learn's
    ``MultiTaskLasso``; with ``l1_ratio < 1`` its ``MultiTaskElasticNet``, coefficient for
    coefficient. Solved by block coordinate descent, certified by a duality gap,
    ``alpha_max = max_j ||G0_j||_2 / rho``.

    Parameters
    ----------
    l1_ratio : float in [0, 1], default=1.0
        Weight ``rho`` of the group part; below 1 a ridge part is added.

    See Also
    --------
    regmtl.L1 : Features selected task by task.
    regmtl.Dirty : Shared features plus task-specific exceptions.

    References
    ----------
    Obozinski, Taskar & Jordan (2010), "Joint covariate selection and joint subspace selection
    for multiple classification problems", Statistics and Computing 20(2).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L21, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=L21(), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0, 1, 2], [0, 1, 2], [0, 1, 2]]
    """

    name = "l21"
    group = True

    def __init__(self, l1_ratio: float = 1.0):
        self.l1_ratio = l1_ratio
