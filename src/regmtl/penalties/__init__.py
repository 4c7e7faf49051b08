r"""Penalties: the structure side of the multi-task objective.

=================================  ================================================================
penalty                            Omega(W)
=================================  ================================================================
``L1()``                           alpha sum_jt |W_jt|
``L2()``                           alpha / 2 ||W||_F^2
``ElasticNet(l1_ratio=rho)``       alpha (rho ||W||_1 + (1 - rho) / 2 ||W||_F^2)
``L21(l1_ratio=rho)``              alpha (rho sum_j ||W_j||_2 + (1 - rho) / 2 ||W||_F^2)
``Trace()``                        alpha ||W||_*
``MeanRegularized(ridge=r)``       alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)
``GraphLaplacian(A)``              alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T)
``Clustered(k, eta)``              alpha eta (1 + eta) min_M tr(W (eta I + M)^{-1} W^T)
``SharedStructure(k, eta)``        alpha eta (1 + eta) min_M tr(W^T (eta I + M)^{-1} W)
``Dirty(own_weight=g)``            W = P + Q: alpha (sum_j ||P_j||_2 + g ||Q||_1)
``SparseLowRank(sparse_weight)``   W = P + Q: alpha (||Q||_* + g ||P||_1)
``RobustLowRank(outlier_weight)``  W = P + Q: alpha (||P||_* + g sum_t ||Q_:t||_2)
``RobustFeatures(outlier_weight)`` W = P + Q: alpha (sum_j ||P_j||_2 + g sum_t ||Q_:t||_2)
``TemporalGroupLasso(s, r)``       alpha (sum_j ||W_j||_2 + s / 2 ||W R||_F^2 + r / 2 ||W||_F^2)
``FusedGroupLasso(f, l)``          alpha (sum_j ||W_j||_2 + f ||W R||_1 + l ||W||_1)
``MultiSource(blocks)``            alpha sum_j ||(W_jt) over the tasks t observing feature j||_2,
                                   W_jt = 0 where task t lacks feature j's source
``MCP(gamma, group)``              sum_g rho(s_g), rho(s) = alpha s - s^2 / (2 gamma) up to
                                   s = gamma alpha, then gamma alpha^2 / 2 (nonconvex)
``SCAD(gamma, group)``             sum_g rho(s_g), rho(s) = alpha s up to alpha, a quadratic
                                   spline to gamma alpha, then alpha^2 (gamma + 1) / 2
                                   (nonconvex)
``CappedL1(cap, group)``           alpha sum_g min(s_g, cap) (nonconvex)
``NonconvexFusedGroupLasso(f)``    alpha (sum_j sqrt(||W_j||_1) + f ||W R||_1) (nonconvex;
                                   majorize-minimize stages); ``fused_in_root=True``:
                                   alpha sum_j sqrt(||W_j||_1 + f ||W_j R||_1)
=================================  ================================================================

The estimator's ``alpha`` is the overall strength; a penalty object holds only its shape.
``W_j`` is row j of W (feature j across tasks), ``w_t`` column t (task t), ``w_bar`` the mean
task, ``L = diag(A 1) - A`` the graph Laplacian and ``R`` (T x (T - 1)) the differences
of consecutive tasks, ``(W R)_{:t} = w_t - w_{t+1}`` (tasks ordered in time, as ``tasks_``).
Strings name the defaults (``PENALTY_NAMES``); ``GraphLaplacian`` needs its graph, so only
the object, and ``MultiSource`` its blocks. ``L1``, ``ElasticNet`` and ``L21`` take
``positive=True``: the same penalty plus the constraint ``W >= 0``. The nonconvex penalties
act on the magnitudes ``s_g``: every ``|W_jt|`` (``group=False``), or every row norm
``||W_j||_2`` (``group=True``); their fits reach stationary points, certified by a KKT
residual.

Modules: ``base`` (the interface and the registry), ``separable`` (block coordinate descent),
``spectral``, ``coupling``, ``composite``, ``temporal`` (proximal gradient, or conjugate
gradients for the squared loss with ``mean`` and ``graph``), ``nonconvex`` (block coordinate
descent to a stationary point), and one module per further penalty. The package imports every
module it holds, and each penalty class with a ``name`` registers itself (``REGISTRY``): the
names of ``penalty=``, the CLI and the ``regmtl`` namespace are read from it, so a new penalty
is its module alone (the table above lists those of the first modules; each class documents
its own). ``dof`` holds the form of what a penalty declares of its degrees of freedom (for
AIC/BIC).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Penalty

#: the modules of the first penalties, imported first so that the names keep the order in
#: which messages list them; every other module follows, by name
_FIRST = ("separable", "spectral", "coupling", "composite", "temporal", "nonconvex",
          "nonconvex_fused")
for _name in (*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__)
                               if m.name not in _FIRST)):
    importlib.import_module(f"{__name__}.{_name}")

from .coupling import chain_graph, knn_graph  # noqa: E402

#: every registered penalty class, by class name (each one is an attribute of this package)
PENALTY_CLASSES: dict[str, type[Penalty]] = {cls.__name__: cls for cls in REGISTRY.values()}
globals().update(PENALTY_CLASSES)

__all__ = ["Penalty", *PENALTY_CLASSES, "chain_graph", "knn_graph", "make_penalty",
           "PENALTY_NAMES", "PENALTY_CLASSES", "STRUCTURE_ATTRS"]

#: names accepted by ``penalty=``: every registered penalty built by its name (not those that
#: need data of their own, as GraphLaplacian its graph)
PENALTY_NAMES: dict[str, type[Penalty]] = {
    name: cls for name, cls in REGISTRY.items() if cls.by_name}

#: every fitted-structure attribute a penalty may set on an estimator
STRUCTURE_ATTRS = tuple(sorted({a for cls in REGISTRY.values() for a in cls.structure_attrs}))


def make_penalty(penalty: str | Penalty) -> Penalty:
    """A penalty object from a name or an instance.

    Parameters
    ----------
    penalty : str or Penalty
        A name of ``PENALTY_NAMES`` (``"l1"``, ``"l2"``, ``"elasticnet"``, ``"l21"``,
        ``"trace"``, ``"mean"``, ``"dirty"``, ... every registered penalty that needs no data
        of its own), for that penalty with its default parameters, or a penalty object,
        returned as it is.

    Returns
    -------
    Penalty
        The penalty.

    Raises
    ------
    ValueError
        For an unknown name (``"graph"`` included: :class:`~regmtl.GraphLaplacian` needs
        its adjacency matrix, so pass the object).

    Examples
    --------
    >>> from regmtl import L21
    >>> from regmtl.penalties import make_penalty
    >>> make_penalty("elasticnet")
    ElasticNet(l1_ratio=0.5)
    >>> make_penalty(L21(l1_ratio=0.9))
    L21(l1_ratio=0.9)
    """
    if isinstance(penalty, Penalty):
        return penalty
    if isinstance(penalty, str) and penalty in PENALTY_NAMES:
        return PENALTY_NAMES[penalty]()
    hint = " GraphLaplacian needs its graph: pass regmtl.GraphLaplacian(A)." if penalty in (
        "graph", "laplacian") else ""
    raise ValueError(
        f"penalty={penalty!r} is not known; use one of {sorted(PENALTY_NAMES)} or a "
        f"regmtl penalty object such as regmtl.L21(l1_ratio=0.9).{hint}"
    )
