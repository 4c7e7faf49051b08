"""The penalty interface.

A penalty holds only its *shape* (ratios, a graph, a cluster count); the overall strength
``alpha >= 0`` is passed to every method. The coefficients ``W`` are p x T (column t = task t, row
j = feature j across tasks). A penalty may optimize over a *lifted* variable ``V`` of which W is a
linear image (the dirty models' ``W = P + Q`` keep ``V = (P, Q)``); plain penalties have
``V = W``. Parameters are stored as given (scikit-learn's ``clone`` requires it) and validated
by :meth:`Penalty.check` when a problem's shape is known.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .dof import DegreesOfFreedom

__all__ = ["Penalty", "SharedPart", "REGISTRY", "check_ratio", "check_positive",
           "check_bool", "BlockStep", "BLOCK_KINDS",
           "ENTRYWISE", "ROWS", "DIRTY_ROWS", "POSITIVE_ENTRYWISE", "POSITIVE_ROWS",
           "MCP_ENTRYWISE", "MCP_ROWS", "SCAD_ENTRYWISE", "SCAD_ROWS", "CAPPED_ENTRYWISE",
           "CAPPED_ROWS", "CAPPED_L1_ROWS", "NONCONVEX_KINDS", "NONCONVEX_REFUSAL", "widened",
           "r_factor", "stacked_singular_values", "norm_scaling"]

# --------------------------------------------------------------------- the block step
# The kinds of block (one row W_j of W) step that block coordinate descent takes, defined once.
# A kind is an int (the numba kernels branch on it). Adding a kind: its constant here, its
# branch in ``regmtl.solvers.parts._kernels.block_update`` (the exact block minimization) and its
# gap-safe rule in ``regmtl.solvers.certificates.screening`` (the same order in both files).

#: ``l1 sum_jt |W_jt| + l2 / 2 ||W||_F^2``: soft-thresholding of each entry.
ENTRYWISE = 0
#: ``l1 sum_j ||W_j||_2 + l2 / 2 ||W||_F^2``: the weighted group prox of the row.
ROWS = 1
#: the dirty model's ``sum_j min_{P_j + Q_j = W_j} l1 ||P_j||_2 + l2 ||Q_j||_1``.
DIRTY_ROWS = 2
#: :data:`ENTRYWISE` with every entry constrained ``>= 0``: ``max(z - thr, 0)`` then the ridge.
POSITIVE_ENTRYWISE = 3
#: :data:`ROWS` with every entry constrained ``>= 0``: the group prox of the row's positive part.
POSITIVE_ROWS = 4
# The nonconvex kinds (:mod:`regmtl.penalties.nonconvex`): ``l1`` is alpha and ``l2`` the
# penalty's shape (MCP's and SCAD's gamma, the cap of capped-L1); the block step is the exact
# minimizer of the block's model plus the penalty of the entries (``*_ENTRYWISE``) or of the row
# norm (``*_ROWS``). They have no gap-safe rule: there is no duality gap to screen with.
#: MCP of each entry, ``alpha |x| - x^2 / (2 gamma)`` up to ``gamma alpha``, then constant.
MCP_ENTRYWISE = 5
#: MCP of each row norm ``||W_j||_2``.
MCP_ROWS = 6
#: SCAD (Fan & Li 2001) of each entry.
SCAD_ENTRYWISE = 7
#: SCAD of each row norm.
SCAD_ROWS = 8
#: capped-L1 of each entry, ``alpha min(|x|, cap)``.
CAPPED_ENTRYWISE = 9
#: capped-L2,1: ``alpha min(||W_j||_2, cap)`` of each row.
CAPPED_ROWS = 10
#: capped-L1,L1 (MALSAR's ``Least_msmtfl_capL1``): ``alpha min(||W_j||_1, cap)`` of each row.
CAPPED_L1_ROWS = 11
#: The kinds of the nonconvex penalties (certified by a KKT residual, never screened).
NONCONVEX_KINDS = (MCP_ENTRYWISE, MCP_ROWS, SCAD_ENTRYWISE, SCAD_ROWS, CAPPED_ENTRYWISE,
                   CAPPED_ROWS, CAPPED_L1_ROWS)
#: Each kind's name, for messages.
BLOCK_KINDS = {ENTRYWISE: "entrywise", ROWS: "rows", DIRTY_ROWS: "dirty rows",
               POSITIVE_ENTRYWISE: "positive entrywise", POSITIVE_ROWS: "positive rows",
               MCP_ENTRYWISE: "MCP entrywise", MCP_ROWS: "MCP rows",
               SCAD_ENTRYWISE: "SCAD entrywise", SCAD_ROWS: "SCAD rows",
               CAPPED_ENTRYWISE: "capped-L1 entrywise", CAPPED_ROWS: "capped-L2,1 rows",
               CAPPED_L1_ROWS: "capped-L1,L1 rows"}


#: Why a nonconvex penalty of entries or rows is not fitted on task blocks: the stationary
#: point a fit reaches depends on its iterations, not on the objective alone.
NONCONVEX_REFUSAL = (
    "a nonconvex penalty has many stationary points, and which one a fit reaches depends on "
    "the path of its iterations: the model is the one reached by exact coordinate steps over "
    "working sets chosen across every task, a path that steps on task blocks do not follow, "
    "so they could stop at another stationary point than the in-memory model")


class BlockStep(NamedTuple):
    """What block coordinate descent needs of a row-separable penalty at a strength: the
    weight ``l1`` of its norm part, ``l2`` (a ridge, or for ``DIRTY_ROWS`` the entrywise
    weight) and the ``kind`` of block step (:data:`ENTRYWISE`, :data:`ROWS`,
    :data:`DIRTY_ROWS`, and the sign-constrained :data:`POSITIVE_ENTRYWISE`,
    :data:`POSITIVE_ROWS`; for the kinds of :data:`NONCONVEX_KINDS`, ``l1`` is alpha and
    ``l2`` the penalty's shape: gamma, or the cap)."""

    l1: float
    l2: float
    kind: int


class SharedPart(NamedTuple):
    r"""One part of the quadratic a new task inherits in :func:`regmtl.transfer`, read from a
    fitted variable (the penalty's variational form at the optimum, see :mod:`regmtl.transfer`).

    ``kind`` says what ``value`` is and which weights the part gives:

    - ``"support"``: the row magnitudes ``d`` (p,); the features with ``d_j > 0``, each with
      weight ``weight * (rho / d_j + 1 - rho)``;
    - ``"subspace"``: a p x T matrix; its left singular vectors of nonzero singular values
      ``sigma_k``, weights ``weight / sigma_k``;
    - ``"mean"``: the prior mean (p,); every feature with weight ``weight``;
    - ``"cluster"``: the nearest cluster's mean (``value`` unused); weight ``weight``.

    ``info``: a second name under which a support's features are reported (``"support"``
    always holds the union of them)."""

    kind: str
    value: Any
    weight: float = 1.0
    rho: float = 1.0
    info: str | None = None


#: name -> class of every registered penalty: each class of a module of
#: :mod:`regmtl.penalties` that sets ``name`` (and not ``registered = False``) is entered when
#: it is defined
REGISTRY: dict[str, type[Penalty]] = {}


def widened(A: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """A variable on the rows ``rows`` (bool, p) only, (..., n_rows, T), with zero rows
    elsewhere: (..., p, T)."""
    if A is None:
        return None
    A = np.asarray(A)
    out = np.zeros(A.shape[:-2] + (rows.size, A.shape[-1]))
    out[..., rows, :] = A
    return out


class Penalty:
    r"""Base class of the penalties :math:`\Omega(W)` of the multi-task objective.

    The estimators minimize

    .. math::

        \sum_t \frac{\omega_t}{n_t} \sum_i \ell(y_{ti}, x_{ti}^\top w_t + b_t)
        + \Omega(W),

    where :math:`W \in \R^{p \times T}` holds task t's weights in column :math:`w_t` and row
    :math:`W_j` is feature j across tasks. A penalty object holds only the *shape* of
    :math:`\Omega` (ratios, a graph, a number of clusters); the overall strength
    ``alpha >= 0`` is the estimator's and is passed to every method. Parameters are stored as
    given, so that scikit-learn can ``clone`` an estimator holding a penalty and grid-search
    its parameters, and are validated by :meth:`check` once the problem's shape is known.

    A subclass defines :meth:`value` and :meth:`prox` and sets ``has_dual = False``; any such
    penalty is solved by proximal gradient (FISTA) and certified by the KKT residual. Optional
    methods make it faster or better certified: :meth:`bcd_params` (row-separable penalties:
    block coordinate descent), :meth:`dual_scaling` and :meth:`conjugate` with
    ``has_dual = True`` (a duality gap), :meth:`alpha_max` (the start of regularization paths), and
    :meth:`lift` / :meth:`compose` / :meth:`spread` for penalties over a lifted variable
    ``V`` of which W is a linear image (the dirty models' ``W = P + Q`` keep
    ``V = (P, Q)``; for the others ``V = W``).

    Attributes
    ----------
    name : str
        The name accepted by ``penalty=`` (``"l21"``, ``"trace"``, ...).
    has_dual : bool
        Whether the conjugate is tractable, so that fits certify with a duality gap
        (``dual_gap_``) rather than the KKT residual (``kkt_residual_``).
    structure_attrs : tuple of str
        Names of the fitted attributes :meth:`structure` sets on an estimator.

    See Also
    --------
    regmtl.L21 : Joint feature selection, the default penalty.
    regmtl.penalties.make_penalty : A penalty from its name.

    Examples
    --------
    A penalty needs only its value and its proximal operator; here
    :math:`\Omega(W) = \frac{\alpha}{2} \|W\|_F^2` written from scratch:

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, Penalty
    >>> class Ridge(Penalty):
    ...     name = "my_ridge"
    ...     has_dual = False  # certify with the KKT residual
    ...     def value(self, V, alpha):
    ...         return 0.5 * alpha * float(np.sum(V**2))
    ...     def prox(self, V, step, alpha):
    ...         return V / (1.0 + step * alpha)
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
    >>> model = MultiTaskRegressor(penalty=Ridge(), alpha=0.1).fit(X, Y)
    >>> model.coef_.shape, hasattr(model, "kkt_residual_")
    ((3, 5), True)
    """

    name: str = ""
    #: the conjugate is tractable, so fits certify with a duality gap
    has_dual: bool = True
    #: its prox and certificate work on W in task blocks (on Dask workers), sharing summaries
    distributable: bool = True
    #: why a penalty that is not ``distributable`` is not (the error on Dask input says it)
    blocks_refusal: str = "its prox needs the whole W in one place"
    #: the penalty is not convex: fits reach a stationary point, certified by the KKT
    #: residual of the Clarke subdifferential (no duality gap, no gap-safe screening)
    nonconvex: bool = False
    #: solved by majorize-minimize: ``stage(W, n_features)`` is the convex penalty majorizing
    #: it at W (its convex relaxation at None), each stage solved and certified as a convex fit
    majorized: bool = False
    _param_names: tuple[str, ...] = ()
    #: names of the fitted attributes :meth:`structure` sets
    structure_attrs: tuple[str, ...] = ()
    #: whether a class of ``regmtl.penalties`` with a ``name`` enters ``REGISTRY`` (the
    #: names of ``penalty=`` and the CLI, the ``regmtl`` namespace); False for a penalty that
    #: serves inside another one
    registered: bool = True
    #: whether ``make_penalty(name)`` builds it with its default parameters (False for a
    #: penalty that needs data of its own: a graph, the sizes of feature blocks)
    by_name: bool = True
    #: what a new task borrows in ``regmtl.transfer`` with ``strategy="auto"``:
    #: ``"support"``, ``"subspace"``, ``"mean"`` or ``"cluster"``; None (the safe default):
    #: the tasks share nothing, so there is no ``"auto"`` strategy
    transfer_strategy: str | None = None
    #: whether ``alpha ||W||_*`` of W itself: its optimum spans the gradient's top left singular
    #: vectors, so a problem restricted to a subspace of W's columns solves it
    #: (``solvers/methods/low_rank_subspace.py``)
    spans_subspace: bool = False
    #: whether ``alpha (||Q||_* + g ||P||_1)`` over ``V = (P, Q)``, ``g = sparse_weight``
    #: (sparse plus low rank): solved over a subspace of Q's columns beside a working set
    #: of P's features, under ``on_working_set(n)`` (``solvers/methods/low_rank_subspace.py``)
    spans_subspace_and_entries: bool = False
    #: whether its variable is parts that sum to W (``W = P + Q``, ``compose(spread(G)) =
    #: k G``): each task's quadratic of the sum is solved exactly by ADMM over the parts
    #: (``solvers/parts/parts_admm.py``)
    sums_parts: bool = False
    #: whether ``alpha / 2 tr(W K W^T)`` with ``K = (1 + r) I - 11^T / T`` (every task pulled
    #: to the mean task): the squared loss on wide tasks reduces to a system in the mean task
    #: (``solvers/parts/row_space_cg.py``)
    pulls_to_mean: bool = False
    #: whether the model's alpha carries to the new task's prior; False where the quadratic at
    #: the optimum is not the new task's (tasks ordered in time, nonconvex penalties, a
    #: quadratic weighed by alpha): then it is chosen by cross-validation
    transfer_alpha: bool = True
    #: its role among ``regmtl.compare``'s models: ``"multi-task"``, ``"independent"``
    #: (every task learned alone), or None (compare fits it only as one of its baselines)
    compare_role: str | None = "multi-task"
    #: its label in compare's tables; empty: from ``name`` (``comparison_label``)
    compare_label: str = ""
    #: whether the penalty is a sum of one term per task, so that one alpha per task is
    #: meaningful (``alpha`` of shape (T,), ``regmtl.task_alpha``)
    separates_over_tasks: bool = False
    #: its form for a piecewise-linear loss: a linear program (``"entrywise"``: ``alpha sum
    #: |W_jt|``, ``W >= 0`` where positive; ``"row_max"``: ``alpha sum_j max_t |W_jt|``), a
    #: cone program (``"row_norm"``: L2,1 and its ridge; ``"task_mean"``: the mean's pull)
    linear_program: str | None = None
    cone_program: str | None = None
    splits_prox: bool = False  #: the prox splits over tasks: prox_summary, prox_given
    #: how the coefficients of a fit under it get intervals (``regmtl.inference``):
    #: ``"debiased"`` where the debiased lasso applies (the plain lasso and L2,1); None: no
    #: valid interval at alpha > 0 (``coef_table`` refuses by name with the alternatives)
    intervals: str | None = None
    factor_entry: str = "Omega(D W), D = diag(d)"  #: how a penalty factor d_j enters

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Enter a class of the ``penalties`` package that sets a ``name`` into
        :data:`REGISTRY`."""
        super().__init_subclass__(**kwargs)
        if (cls.__dict__.get("name") and cls.registered
                and cls.__module__.startswith(__name__.rpartition(".")[0] + ".")):
            known = REGISTRY.setdefault(cls.name, cls)
            if known is not cls:
                raise ValueError(f"penalty name {cls.name!r} of {cls.__name__} is already "
                                 f"taken by {known.__name__}.")

    # ------------------------------------------------------------------ declarations
    def comparison_label(self) -> str:
        """Its label in :func:`regmtl.compare`'s tables.

        Returns
        -------
        str
            ``compare_label``, else ``"MTL <name>"`` (``"<name> (independent)"`` for the
            role ``"independent"``), underscores read as spaces.
        """
        if self.compare_label:
            return self.compare_label
        words = self.name.replace("_", " ")
        return f"{words} (independent)" if self.compare_role == "independent" else f"MTL {words}"

    def feature_blocks(self) -> tuple[int, ...] | None:
        """The sizes of the feature blocks (sources) a task may lack as a whole.

        Returns
        -------
        tuple of int or None
            The validated block sizes, in column order, for a penalty that accepts missing
            feature blocks (NaN blocks in the data, filled with zeros and their coefficients
            held at 0); None (the default): missing values are refused.
        """
        return None

    def on_classes(self, layout: Any) -> Penalty:
        """The penalty that acts on the classes' layout of the multinomial loss (one column of
        W per class of each task, ``regmtl.classes.ClassLayout``), where the coefficients of a
        feature across a task's classes form one group.

        Parameters
        ----------
        layout : ClassLayout
            Each task's columns (``first``, ``sizes``) and each column's class (``label``).

        Returns
        -------
        Penalty
            The penalty itself (this default: right for a penalty that already treats a
            task's columns jointly, L2, L2,1, the trace norm); an entrywise penalty returns
            its group form over each task's classes, a penalty that couples tasks its form
            over the columns of one class.

        Raises
        ------
        ValueError
            Naming a penalty that has no meaning on the classes' layout.
        """
        return self

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """What a new task borrows from a fit under the penalty's own ``transfer_strategy``.

        Parameters
        ----------
        V : ndarray
            The penalty's variable at the fit (W, or the lifted variable).

        Returns
        -------
        list of SharedPart
            By default: the row norms ``||W_j||_2`` (``"support"``), W itself
            (``"subspace"``), the mean task (``"mean"``), weight 4 (``"cluster"``); empty
            when the strategy is None.
        """
        W = self.compose(V)
        if self.transfer_strategy == "support":
            return [SharedPart("support", np.linalg.norm(W, axis=1))]
        if self.transfer_strategy == "subspace":
            return [SharedPart("subspace", W)]
        if self.transfer_strategy == "mean":
            return [SharedPart("mean", W.mean(axis=1))]
        if self.transfer_strategy == "cluster":
            return [SharedPart("cluster", None, 4.0)]
        return []

    # ------------------------------------------------------------------ objective pieces
    def value(self, V: np.ndarray, alpha: float) -> float:
        r"""The penalty's value :math:`\Omega` at a variable.

        Parameters
        ----------
        V : ndarray of shape (p, T), or the penalty's lifted shape
            The coefficients W (p x T), or the lifted variable of which W is the image
            (shape (2, p, T) for ``Dirty`` and ``SparseLowRank``).
        alpha : float
            Overall strength, >= 0.

        Returns
        -------
        float
            The value, ``alpha`` included.
        """
        raise NotImplementedError

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """Proximal operator: ``argmin_U ||U - V||^2 / (2 step) + Omega(U)``.

        Parameters
        ----------
        V : ndarray
            The point, in the penalty's variable (W, or the lifted variable).
        step : float
            Step size, > 0.
        alpha : float
            Overall strength, >= 0.

        Returns
        -------
        ndarray
            The minimizer U, of the shape of ``V``.
        """
        raise NotImplementedError

    def prox_into(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """:meth:`prox` written over ``V`` (float64, the variable's shape) and returned, for a
        solver with no room or time for a second copy (out of core; a Dask worker's iterates):
        in place where the prox is by entries, rows or the mean task; else written back."""
        V[...] = self.prox(V, step, alpha)
        return V

    def prox_summary(self, V: np.ndarray) -> np.ndarray | None:
        """What the prox reads of some tasks' columns, adding up over groups of columns (L2,1's
        row norms, the mean task, W's p x p Gram; None: separable over tasks)."""
        raise NotImplementedError(f"{type(self).__name__}'s prox does not split over tasks.")

    def prox_given(self, V: np.ndarray, summary: Any, step: float, alpha: float) -> np.ndarray:
        """:meth:`prox` on some tasks' columns, given the groups' summed :meth:`prox_summary`;
        written over V where it can (as :meth:`prox_into`)."""
        raise NotImplementedError(f"{type(self).__name__}'s prox does not split over tasks.")

    def bcd_params(self, alpha: float) -> BlockStep | None:
        """The block step of a row-separable penalty, for block coordinate descent.

        Parameters
        ----------
        alpha : float
            Overall strength, >= 0.

        Returns
        -------
        BlockStep or None
            ``(l1, l2, kind)``: the penalty is ``l1 * sum_g ||W_g|| + l2 / 2 ||W||_F^2`` over
            entries (``kind=ENTRYWISE``) or rows (``ROWS``), or the dirty model's
            ``sum_j min_{P_j + Q_j = W_j} l1 ||P_j|| + l2 ||Q_j||_1`` (``DIRTY_ROWS``), or
            the first two with ``W >= 0`` (``POSITIVE_ENTRYWISE``, ``POSITIVE_ROWS``), or a
            nonconvex penalty of the entries or row norms (``NONCONVEX_KINDS``); None
            when the penalty is none of these (then block coordinate descent does not apply).
        """
        return None

    def ridge_strength(self, alpha: float) -> float | None:
        """``l2`` when the penalty at ``alpha`` is the pure ridge ``l2 / 2 ||W||_F^2`` (then
        a quadratic loss plus the penalty is minimized exactly, task by task), else None (a
        sign constraint included)."""
        step = self.bcd_params(alpha)
        if step is None or step.l1 != 0.0 or step.kind not in (ENTRYWISE, ROWS):
            return None
        return float(step.l2)

    def ridge_part(self, alpha: float) -> float | None:
        r"""The weight ``l2`` of the penalty's ridge at ``alpha``, for
        ``factor_convention="glmnet"`` (which weighs it by :math:`d_j`, not :math:`d_j^2`):
        ``l2`` where the penalty is :math:`N(W) + \frac{l_2}{2} \|W\|_F^2`, N a sum of norms
        (a sign constraint allowed) of groups each in one row of W, so that a ridge weight
        per feature stays exact (the prox N's, then a shrink :math:`1 / (1 + s\, l_2 r_j)`
        per row; the conjugate :math:`\sum_g (\|G_g\| - a)_+^2 / (2 l_2 r_g)`); 0.0 without
        a squared term (a norm: both conventions are one fit); None where the squared term
        is no such ridge (the mean's or a graph's pull, the clustered penalties), where the
        convention is refused."""
        return 0.0 if self.homogeneity == 1.0 else None

    # ------------------------------------------------------------------ lifted variables
    def lift(self, W: np.ndarray) -> np.ndarray:
        """A variable V with ``compose(V) == W`` (p x T; W itself unless the penalty lifts
        it): the starting point of a warm start."""
        return W

    def compose(self, V: np.ndarray) -> np.ndarray:
        """The coefficients W (p x T) of the penalty's variable V: V itself unless the
        penalty lifts W (``P + Q`` for the dirty models)."""
        return V

    def spread(self, G: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`compose`: a gradient in W (p x T) as a gradient in the variable
        V, of the variable's shape."""
        return G

    def lazy_value(self, V: Any, alpha: float) -> Any:
        """:meth:`value`, left a lazy scalar where V is held in blocks elsewhere and the
        penalty can (for the caller to bring home with its other sums in one round trip,
        ``numbers``); :meth:`value` otherwise."""
        return self.value(V, alpha)

    # ------------------------------------------------------------------ certificates
    def lazy_dual_scaling(self, G: Any, alpha: float) -> Any:
        """:meth:`dual_scaling`, left lazy where G is held in blocks elsewhere and the
        penalty can (as :meth:`lazy_value`); :meth:`dual_scaling` otherwise."""
        return self.dual_scaling(G, alpha)

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float | np.ndarray:
        """Factor that brings a dual point into the domain of the conjugate.

        Parameters
        ----------
        G : ndarray of shape (p, T)
            ``X^T (c theta)`` of a dual point ``theta``.
        alpha : float
            Overall strength, > 0.

        Returns
        -------
        float or ndarray of shape (T,)
            The largest ``s`` in (0, 1] such that ``s * G`` lies in the domain of
            :meth:`conjugate` (1 when the conjugate is finite everywhere); one per task
            (scaling column t of G) for penalties separable over tasks.
        """
        raise NotImplementedError

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """The Fenchel conjugate ``Omega*(G)`` for G in its domain.

        Parameters
        ----------
        G : ndarray of shape (p, T)
            A point of the domain (after :meth:`dual_scaling`).
        alpha : float
            Overall strength, > 0.

        Returns
        -------
        float
            ``sup_W <G, W> - Omega(W)``; 0 for a norm on its dual ball.
        """
        raise NotImplementedError

    def scaled_conjugate(self, G: np.ndarray, s: float | np.ndarray, alpha: float) -> float:
        """:meth:`conjugate` at the scaled dual point ``s * G`` (``s`` from
        :meth:`dual_scaling`, per column where it is one per task); a norm's is 0 there, with
        no ``s * G`` formed."""
        return self.conjugate(s * G, alpha)

    def gap_summary(self, V: np.ndarray, G: np.ndarray) -> tuple | None:
        """What the duality gap reads of some tasks' columns of the variable V and of ``G``
        (minus the gradient in W), for a fit whose iterates are held in groups of tasks (Dask
        workers): O(p) or O(p^2) numbers per group, combined over all the groups by
        :meth:`gap_given`, so that a certificate never brings the p x T columns home. None
        where the penalty declares none: the certificate then reads the columns themselves
        (a penalty separable over tasks needs none: each group forms its own terms)."""
        return None

    def gap_given(self, summaries: list, alpha: float) -> tuple[float, float, float]:
        """``(Omega(V), s, Omega*(s G))`` from every group's :meth:`gap_summary` (in the
        tasks' order), ``s`` the scaling of :meth:`dual_scaling` (one number)."""
        raise NotImplementedError(f"{type(self).__name__} declares no gap summary.")

    def alpha_max(self, G0: np.ndarray) -> float:
        """Smallest alpha for which W = 0 is optimal.

        Parameters
        ----------
        G0 : ndarray of shape (p, T)
            Minus the gradient of the data term at W = 0 (intercepts fitted):
            ``G0 = X^T (c theta0)``.

        Returns
        -------
        float
            The dual norm of ``G0`` (divided by the weight of the sparsity part).

        Raises
        ------
        ValueError
            When no finite alpha gives W = 0 exactly (smooth penalties, ``l1_ratio=0``).
        """
        raise ValueError(f"{self!r} has no alpha_max: no finite alpha gives W = 0 exactly.")

    #: ``d`` where the penalty is homogeneous in W, ``Omega(k W) = k^d Omega(W)`` (1 a norm,
    #: 2 a quadratic); None where it is not (or not declared)
    homogeneity: float | None = None

    def rescaled(self, alpha: float, f: float, k: float = 1.0) -> tuple[Penalty, float] | None:
        """The penalty ``P'`` and strength ``alpha'`` with ``P'(k W, alpha') = f P(W, alpha)``
        for every W: the same problem when the loss is multiplied by ``f`` and the
        coefficients by ``k`` (how the solve fits data far from 1 in magnitude), or None where
        the penalty's family has none. By default ``(self, f alpha)`` for ``k = 1`` (the value
        is alpha times a function of W) and ``(self, f alpha / k^d)`` for a penalty
        :attr:`homogeneity` ``d``."""
        if k == 1.0:
            return self, f * alpha
        d = self.homogeneity
        return None if d is None else (self, f * alpha / k ** d)

    # ------------------------------------------------------------------ problem shape
    def check(self, n_features: int, n_tasks: int) -> Penalty:
        """Validate the parameters against a problem's shape.

        Parameters
        ----------
        n_features : int
            Number of features p.
        n_tasks : int
            Number of tasks T.

        Returns
        -------
        Penalty
            The penalty itself.

        Raises
        ------
        ValueError
            Naming the parameter that is out of range or does not fit the shape.
        """
        return self

    def structure(self, V: np.ndarray, alpha: float) -> dict[str, Any]:
        """Fitted attributes that expose the learned structure.

        Parameters
        ----------
        V : ndarray
            The penalty's variable at the solution.
        alpha : float
            Overall strength.

        Returns
        -------
        dict
            Attribute name -> value, set on the fitted estimator (names in
            ``structure_attrs``, e.g. ``rank_`` for ``Trace``); empty for most penalties.
        """
        return {}

    def structure_on(self, V: np.ndarray, alpha: float, rows: np.ndarray) -> dict[str, Any]:
        """:meth:`structure` of the variable whose rows ``rows`` (bool, p) are those of V and
        whose other rows are zero (a solve restricted to its live features, see
        ``regmtl.solvers.solve.solve_live``): here that variable formed, then read; penalties
        whose attributes are V's own rows write them in place."""
        return self.structure(widened(V, rows), alpha)

    @classmethod
    def saved_structure(cls, n_tasks: int, n_features: int) -> dict[str, tuple]:
        """The rule of each fitted attribute :meth:`structure` sets, as a saved file must hold it.

        :func:`regmtl.load` refuses a model file whose attribute breaks its rule. A rule is
        ``("int", low, high)`` (``None``: unbounded), ``("float",)``, ``("bool",)`` or
        ``("str", choices)`` for a JSON value, or ``("array", kinds, shape)`` for an array whose
        dtype kind is in ``kinds`` (``"f"`` floats, ``"iu"`` integers) and whose shape holds,
        per axis, a length or a ``range`` of lengths.

        Parameters
        ----------
        n_tasks, n_features : int
            T and p of the saved model.

        Returns
        -------
        dict
            Attribute name -> rule, for ``structure_attrs`` and older files' names (or empty).
        """
        return {}

    def variable(self, structure: dict[str, Any]) -> np.ndarray | None:
        """The variable V recorded in an estimator's fitted attributes (for warm starts).

        Parameters
        ----------
        structure : dict
            Fitted attributes, as :meth:`structure` returns them.

        Returns
        -------
        ndarray or None
            The lifted variable, or None when the coefficients are all there is.
        """
        return None

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict:
        """The shape parameters (so scikit-learn can clone a penalty and grid-search them).

        Parameters
        ----------
        deep : bool, default=True
            Ignored (a penalty holds no estimators); kept for scikit-learn.

        Returns
        -------
        dict
            Parameter name -> value, as given to the constructor.
        """
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params) -> Penalty:
        """Set shape parameters.

        Parameters
        ----------
        **params
            Parameter name -> new value (validated at the next fit).

        Returns
        -------
        Penalty
            The penalty itself.

        Raises
        ------
        ValueError
            For a name that is not a parameter of this penalty.
        """
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}.")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(getattr(self, k))}" for k in self._param_names)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        a, b = self.get_params(), other.get_params()
        return all(_same(a[k], b[k]) for k in a)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    # ------------------------------------------------------------------ model selection
    def degrees_of_freedom(self, W: np.ndarray, alpha: float,
                           structure: dict[str, Any] | None = None,
                           tol: float = 1e-4) -> DegreesOfFreedom | None:
        """The degrees of freedom of a fit at W, as the penalty declares them.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients at the solution.
        alpha : float
            The fitted strength.
        structure : dict, optional
            The penalty's fitted structure (:meth:`structure`), where the declaration reads it.
        tol : float, default=1e-4
            The fit's tolerance (a relative duality gap): coefficients below
            ``regmtl.penalties.dof.support_threshold`` count as zero.

        Returns
        -------
        DegreesOfFreedom or None
            A count and the pieces of a smoother (``regmtl.penalties.dof``), or None (this
            default): no estimate, so AIC and BIC refuse the penalty.
        """
        return None


class NormPenalty(Penalty):
    r"""A penalty ``alpha N(V)`` with N a norm: its conjugate is the indicator of the dual ball
    ``{G: N*(G) <= alpha}``, so the certificate needs only the dual norm.

    A subclass gives :meth:`dual_norm`; then ``dual_scaling(G) = min(1, alpha / N*(G))``,
    ``conjugate = 0`` on the ball and ``alpha_max(G0) = N*(G0)``.
    """

    homogeneity = 1.0  # (a norm)

    def dual_norm(self, G: np.ndarray) -> float:
        """The dual norm ``N*(G)`` of the penalty at ``alpha = 1``.

        Parameters
        ----------
        G : ndarray of shape (p, T)
            A gradient.

        Returns
        -------
        float
            ``sup {<G, W>: N(W) <= 1}``.
        """
        raise NotImplementedError

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float:
        return norm_scaling(self.dual_norm(G), alpha)

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        return 0.0

    def scaled_conjugate(self, G: np.ndarray, s: float | np.ndarray, alpha: float) -> float:
        if type(self).conjugate is not NormPenalty.conjugate:  # (a conjugate of its own)
            return super().scaled_conjugate(G, s, alpha)
        return 0.0  # (s G lies in the dual ball: not formed)

    def alpha_max(self, G0: np.ndarray) -> float:
        return float(self.dual_norm(G0))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return bool(a == b)


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<array {v.shape}>"
    return repr(v)


def check_ratio(value: Any, name: str) -> float:
    """A number in [0, 1], or a ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Real) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (NumPy's included), or a ``ValueError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def check_positive(value: Any, name: str, *, strict: bool = True) -> float:
    """A finite number > 0 (>= 0 with ``strict=False``), or a ``ValueError`` naming ``name``."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and np.isfinite(value))
    ok = ok and (value > 0 if strict else value >= 0)
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}.")
    return float(value)


def entry_scale(x: np.ndarray, eps: float) -> np.ndarray:
    """``sqrt(x^2 + eps)`` entrywise: the smoothed ``|x|`` of a reweighting."""
    return np.sqrt(x * x + eps)


def spectral_scale(X: np.ndarray, eps: float) -> np.ndarray:
    """``(X X' + eps I)^{1/2}`` (p x p): the smoothed ``(X X')^{1/2}`` of the trace norm's
    variational form ``||X||_* = min_D (tr(X' D^{-1} X) + tr D) / 2``."""
    lam, Q = np.linalg.eigh(X @ X.T)
    return (Q * np.sqrt(np.maximum(lam, 0.0) + eps)) @ Q.T


def is_blocked(V: Any) -> bool:
    """Whether V is an array held in blocks elsewhere (a Dask array: its operations are lazy
    and its summaries must be brought home explicitly), not a NumPy array."""
    return hasattr(V, "__dask_graph__")


def inner(a: Any, b: Any) -> Any:
    """``<a, b>`` (the sum of the entrywise products): ``np.vdot`` on NumPy arrays; on arrays
    held in blocks, the blocks' partial sums (a lazy scalar), since ``vdot`` would flatten them,
    gathering every block in one place."""
    if is_blocked(a) or is_blocked(b):
        return (a * b).sum()
    return np.vdot(a, b)


def as_float(V: Any) -> Any:
    """V as a float64 NumPy array; an array held in blocks elsewhere stays where it is."""
    return V if is_blocked(V) else np.asarray(V, dtype=np.float64)


def r_factor(A: np.ndarray) -> np.ndarray:
    """``R`` of ``A' = Q R`` (at most p x p, for A p x T): ``A A' = R' R``, so the R factors of
    groups of A's columns, stacked and factored again, give A's singular values to rounding
    (unlike the Gram's eigenvalues, whose small ones lose half their digits)."""
    return np.linalg.qr(np.asarray(A, dtype=np.float64).T, mode="r")


def stacked_singular_values(factors: list) -> np.ndarray:
    """The singular values of a matrix from the :func:`r_factor` of its groups of columns."""
    R = np.vstack(factors)
    if R.shape[0] > R.shape[1]:
        R = np.linalg.qr(R, mode="r")
    return np.linalg.svd(R, compute_uv=False) if R.size else np.zeros(0)


def norm_scaling(m: float, alpha: float) -> float:
    """:meth:`NormPenalty.dual_scaling` from the dual norm ``m``: ``min(1, alpha / m)``."""
    return 1.0 if m <= alpha else alpha / m


def small_gram(X: Any) -> np.ndarray:
    """``X X'`` (p x p, for X p x T) as a NumPy array: on an array held in blocks, the sum of
    the blocks' Grams, the only part of X that travels."""
    return np.asarray(X @ X.T, dtype=np.float64)


def svt(X: np.ndarray, thr: float) -> np.ndarray:
    """Singular-value soft-thresholding, ``U max(S - thr, 0) V'``.

    On a matrix much longer than wide (p x T with T >= 3 p, or the transpose) through the
    eigendecomposition of the small side's Gram, ``X X' = U S^2 U'``: then
    ``U diag(max(s - thr, 0) / s) U' X``, a fraction of the cost of an SVD. The small
    singular values it resolves to about ``sqrt(eps) s_max`` only, below the thresholds the
    solvers use."""
    p, T = X.shape
    if min(p, T) == 0:
        return X.copy()
    if is_blocked(X):  # by the p x p Gram, whatever the shape: W's blocks stay in place
        return svt_given_gram(X, small_gram(X), thr)
    if max(p, T) < 3 * min(p, T):
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        return (U * np.maximum(s - thr, 0.0)) @ Vt
    wide = T >= p
    lam, U = np.linalg.eigh(X @ X.T if wide else X.T @ X)
    s = np.sqrt(np.maximum(lam, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(s > thr, 1.0 - thr / s, 0.0)
    return (U * f) @ (U.T @ X) if wide else (X @ U) * f @ U.T


def svt_given_gram(X: Any, S: np.ndarray, thr: float) -> Any:
    """:func:`svt` of X (p x T) from its p x p Gram ``S = X X'`` (summed over the groups of
    columns that hold X apart): ``U diag(max(s - thr, 0) / s) U' X``, ``S = U diag(s^2) U'``."""
    lam, U = np.linalg.eigh(S)
    s = np.sqrt(np.maximum(lam, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(s > thr, 1.0 - thr / s, 0.0)
    return ((U * f) @ U.T) @ X
