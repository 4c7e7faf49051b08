r"""The datafit interface and its registry.

A datafit evaluates, on flat per-observation arrays (targets ``y``, scores ``f``, row weights
``c``; see :class:`~regmtl.TaskData`)::

    F(f) = sum_r c_r * l(y_r, f_r)

and the pieces a certified solver needs: the dual variable ``theta = -l'(f)`` and the
Fenchel-dual term ``-sum_r c_r l*(-theta_r)`` (so that for any feasible ``theta`` the dual value is
``dual_value(theta) - Omega*(X^T (c theta))``). Each class of a module of this package that sets
a ``name`` registers itself in :data:`REGISTRY` (the estimators' ``loss=`` names).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["Datafit", "LossOutside", "REGISTRY", "default_loss", "loss_parameter", "one_loss"]


#: name -> class of every registered datafit (the estimators' ``loss=``): each class of a module
#: of :mod:`regmtl.datafits` that sets ``name`` is entered when it is defined
REGISTRY: dict[str, type[Datafit]] = {}


class LossOutside:
    """What the floors above the solvers read of a loss: the link a served graph computes,
    the single-task scikit-learn estimator of the baselines, and the model the support
    matrix draws targets from. :class:`Datafit` holds it; a loss declares its own."""

    #: its inverse link, the prediction from the scores, as a served graph computes it:
    #: ``"identity"``, ``"exp"`` (the log-link losses), ``"binary"`` (the logistic
    #: function of the score, two labels) or ``"multinomial"`` (the softmax of a task's
    #: class scores); None where it has no exported form (``regmtl.serving`` refuses it)
    link: str | None = None
    #: the lowest score the ``exp`` link takes (below it the mean is ``exp`` of it: the
    #: Gamma loss's ``-EXP_MAX``, where its dual reads ``e^{-f}``)
    link_floor: float = -np.inf

    def sample_targets(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Targets drawn from the loss's model around the linear predictors ``f`` (the
        support matrix's problems, ``regmtl.conformance``): each label present, for a loss
        of labels."""
        raise NotImplementedError(
            f"the loss {self!r} declares no model to draw targets from (sample_targets): "
            "the support matrix cannot pose its problems.")

    def single_task_anchor(self) -> tuple[Any, str, str] | None:
        """The single-task scikit-learn estimator of the loss, the baselines' anchor:
        ``(factory(loss, alpha, n_t, tol), its penalty "l2" or "l1", its name)``, its
        ``alpha`` in regmtl's units (the mean loss plus ``alpha/2 ||w||^2`` or
        ``alpha ||w||_1``); None where scikit-learn has none."""
        return None

    def anchor_curvature(self, y: np.ndarray) -> float:
        """The loss's curvature at the intercept-only fit of targets ``y``, the scale of a
        single-task ridge grid (1: the identity-link losses)."""
        return 1.0


class Datafit(LossOutside):
    r"""Base class of the data-fit terms (the loss side of the objective).

    A datafit evaluates the weighted loss of per-observation scores,

    .. math::

        F(f) = \sum_r c_r\, \ell(y_r, f_r),

    on the flat arrays of a :class:`~regmtl.TaskData`: targets ``y``, scores
    ``f_r = x_r . w_t + b_t`` and row weights ``c`` (which hold the per-task means
    ``omega_t / n_t`` of the objective). It also gives what a certified solver needs: the dual
    variable ``theta = -l'(f)`` and the Fenchel-dual term ``-sum_r c_r l*(-theta_r)``. A loss
    is its own module of ``regmtl.datafits``; what the solvers and the floors above read of
    it are the declarations below (design.rst, section 4).

    Attributes
    ----------
    name : str
        The estimators' ``loss=`` name (``"squared"``, ``"logistic"``, ``"poisson"``, ...).
    code : int or None
        The compiled intercept kernel it has (0 squared, 1 logistic); None: the intercepts
        are minimized by a vectorized safeguarded Newton on :meth:`theta` and
        :meth:`hessian`.
    quadratic : bool
        Whether the loss is the squared one (the solvers that minimize quadratics exactly).
    smooth : bool
        Whether ``l`` is differentiable with a :meth:`hessian` (proximal Newton, FISTA);
        a loss that is not declares :meth:`smoothed` instead.
    curvature : float
        Upper bound on ``l''`` (1 squared, 1/4 logistic; inf where there is none, as for
        the log-link losses: :meth:`curvature_at` then bounds it at given scores).
    dual_strong_concavity : float
        Lower bound on ``(l*)''``: the strong concavity of the dual in the c-weighted norm,
        used by the gap-safe screening rules (0: none, no screening).

    See Also
    --------
    regmtl.Quadratic : The squared loss of :class:`~regmtl.MultiTaskRegressor`.
    regmtl.Logistic : The logistic loss of :class:`~regmtl.MultiTaskClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Quadratic
    >>> from regmtl.datafits import Datafit
    >>> loss = Quadratic()
    >>> isinstance(loss, Datafit), loss.name, loss.curvature
    (True, 'squared', 1.0)
    >>> y, f, c = np.array([1.0, 2.0, 3.0]), np.ones(3), np.full(3, 1 / 3)
    >>> round(loss.value(y, f, c), 4)  # (0 + 1 + 4) / 2 / 3
    0.8333
    """

    code: int | None = None
    curvature: float = np.inf
    dual_strong_concavity: float = 0.0
    quadratic: bool = False
    smooth: bool = True
    #: whether the conjugate is linear on a box of dual values (the pinball loss): solved
    #: exactly by primal-dual iterations
    box_dual: bool = False
    #: whether :meth:`dual_prox` has a closed form (squared, Huber, pinball): a loss list of
    #: such losses with a pinball task is solved by primal-dual iterations too
    has_dual_prox: bool = False
    #: whether the loss is piecewise linear and convex, ``max`` of two lines of the residual
    #: ``r = y - f`` with slopes in its dual box (the pinball loss): with a penalty that is a
    #: linear program too, the whole problem is one, solved exactly by a simplex method
    piecewise_linear: bool = False
    #: The loss is quadratic piece by piece (Huber): its Newton model with the Hessian (0 on
    #: the linear pieces, floored) undershoots along outliers, so the line search of a full
    #: step that descends goes on doubling while the objective still falls.
    piecewise_quadratic: bool = False
    #: whether the loss couples several scores of a row (multinomial): it fits its own
    #: intercepts (``fit_intercepts(y, c, S, b, max_newton, rtol)``)
    coupled: bool = False
    #: whether its likelihood profiles out a scale per task (the Gaussian variance, the Gamma
    #: shape): AIC/BIC then refuse tasks of one row
    profiles_scale: bool = False
    name: str = ""
    #: the kind of task it fits: ``"regression"`` (numeric targets) or ``"binary"`` (two
    #: labels per task, encoded -1/+1 before the fit)
    kind: str = "regression"
    #: whether it is the loss of its kind by default (the regressor's or the classifier's,
    #: the baselines', the CV searches'): one per kind
    default_for_kind: bool = False
    #: the command line's option for each constructor parameter, ``flag -> (parameter,
    #: metavar, help)``: ``regmtl fit`` and ``regmtl compare`` add every registered loss's
    #: (``--huber-delta``, ``--quantile``)
    cli_parameters: dict[str, tuple[str, str, str]] = {}
    #: ``k`` where targets times ``s`` make the loss ``s^k`` times itself (up to a constant)
    #: at scores that keep W: ``l(s y, s f) = s^k l(y, f)`` under the identity link, once the
    #: loss's parameters are in the new units (:meth:`rescaled`; 2 the squared and Huber
    #: losses, 1 the pinball loss), or ``l(s y, f + log s)`` under the log link
    #: (:attr:`log_link`; 1 Poisson). The solve then fits data far from 1 in magnitude
    #: (1e-150) as the same problem scaled by a power of two (W the same, alpha times
    #: ``s^k``). 0 where the targets are labels (the loss the same; only X is brought to
    #: 1), None where the loss declares no such form (the problem is solved as given).
    scale_degree: int | None = None
    #: whether the scores are ``log`` of the mean (so targets times ``s`` move the intercepts
    #: by ``log s``, the design unscaled)
    log_link: bool = False
    #: whether a parameter is read from the data when the loss is bound to it (:meth:`bind`:
    #: ``Huber()``'s delta; a loss list, where one of its losses does)
    reads_data: bool = False

    def rescaled(self, s: float) -> Datafit:
        """The loss on targets and scores multiplied by ``s`` (its parameters in the targets'
        units multiplied by ``s``; itself where it has none), for :attr:`scale_degree`."""
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Enter a class of the ``datafits`` package that sets a ``name`` into
        :data:`REGISTRY`."""
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name") and cls.__module__.startswith(
                __name__.rpartition(".")[0] + "."):
            known = REGISTRY.setdefault(cls.name, cls)
            if known is not cls:
                raise ValueError(f"loss name {cls.name!r} of {cls.__name__} is already "
                                 f"taken by {known.__name__}.")

    def neg2_log_likelihood(self, data: Any, f: np.ndarray, s: np.ndarray) -> float:
        """``-2 log L`` of a fit, for AIC and BIC.

        Parameters
        ----------
        data : TaskData
            The problem (its targets ``y`` and ``task_sums``).
        f : ndarray of shape (n_obs,)
            Scores of the fit.
        s : ndarray of shape (n_obs,)
            Each row's weight in the likelihood (its sample weight; 0 where not observed).

        Returns
        -------
        float
            Minus twice the maximized log-likelihood.

        Raises
        ------
        ValueError
            For a loss that is not a log-likelihood (the default): no AIC or BIC.
        """
        raise ValueError(f"the loss {self.name!r} is not a log-likelihood, so it has no AIC "
                         "or BIC; choose alpha by cross-validation.")

    def lazy_value(self, y: Any, f: Any, c: Any) -> Any:
        """:meth:`value`, left a lazy scalar where the rows are held in blocks elsewhere and
        the loss can (for the caller to bring home with its other sums in one round trip,
        ``data.numbers``); :meth:`value` otherwise."""
        return self.value(y, f, c)

    def lazy_dual_value(self, y: Any, theta: Any, c: Any) -> Any:
        """:meth:`dual_value`, left lazy as :meth:`lazy_value`."""
        return self.dual_value(y, theta, c)

    def value(self, y: np.ndarray, f: np.ndarray, c: np.ndarray) -> float:
        """The weighted loss ``sum_r c_r l(y_r, f_r)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets (-1/+1 for the logistic loss).
        f : ndarray of shape (n_obs,)
            Scores.
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        float
            The data term.
        """
        raise NotImplementedError

    def deviance(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Per row, the unit deviance ``2 (l(y, f) - inf_g l(y, g))``: the squared error, the
        Poisson and Gamma deviances, twice the logistic, Huber and pinball losses (what
        cross-validation scores and ``score``'s deviance explained average).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            The deviances, >= 0.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no deviance.")

    def theta(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Negative derivative of the loss in the score: ``-l'(y, f)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            ``theta``: the residual ``y - f`` (squared), ``y sigmoid(-y f)`` (logistic).
        """
        raise NotImplementedError

    def kink_costs(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Per row, a bound on how much the loss can change, at any score, when the row's
        target moves onto its score ``f`` (where it sits on a kink of the loss, whose
        subdifferential is an interval there): ``inf`` where the loss has no kink (a smooth
        loss); the pinball loss's ``max(tau, 1 - tau) |y - f|``. A nonsmooth loss's KKT
        residual lets the dual point of the cheapest rows range over their intervals
        (``regmtl.solvers.certificates.kinks``).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
        """
        return np.full(np.shape(f), np.inf)

    def value_theta(self, y: np.ndarray, f: np.ndarray,
                    c: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`value` and :meth:`theta` at the same scores (a loss may share their work:
        the log-link losses' exponential, the multinomial's softmax).

        Parameters
        ----------
        y, f, c : ndarray of shape (n_obs,)
            Targets, scores and row weights.

        Returns
        -------
        (float, ndarray of shape (n_obs,))
            The data term and ``theta``.
        """
        return self.value(y, f, c), self.theta(y, f)

    def shift_terms(self, y: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        r"""Where a task's best shift ``d`` of its scores has a closed form
        ``d = log sum_r c_r e^{A_r} - log sum_r c_r e^{B_r}`` (the log-link losses: Poisson
        ``A = log y, B = f``; Gamma ``A = log y - f, B = 0``), the terms ``(A, B)``; None (the
        default) where it has none and the intercepts are found by Newton's method.

        Parameters
        ----------
        y, S : ndarray of shape (n_obs,)
            Targets and the current scores.

        Returns
        -------
        (A, B) or None
        """
        return None

    def dual_value(self, y: np.ndarray, theta: np.ndarray, c: np.ndarray) -> float:
        """The Fenchel-dual term ``-sum_r c_r l*(-theta_r)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        theta : ndarray of shape (n_obs,)
            A dual point in the domain of the conjugate (see
            :meth:`~regmtl.datafits.Datafit.feasible`).
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        float
            The data part of the dual objective.
        """
        raise NotImplementedError

    def feasible(self, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Project ``theta`` onto the domain of the conjugate.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        theta : ndarray of shape (n_obs,)
            A dual point.

        Returns
        -------
        ndarray of shape (n_obs,)
            The projection (``theta`` itself for the squared loss; ``y theta`` clipped to
            [0, 1] for the logistic loss).
        """
        return theta

    def dual_prox(self, y: np.ndarray, v: np.ndarray, step: float) -> np.ndarray:
        """The dual step of primal-dual iterations: the maximizer over ``theta`` of
        ``-l*(-theta) - theta y - (theta - v)^2 / (2 step)`` per row, for ``v = theta_old +
        step (y - f)`` (the projection onto the dual box for the pinball loss, ``v / (1 +
        step)`` for the squared loss); only where :attr:`has_dual_prox`.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        v : ndarray of shape (n_obs,)
            The dual point moved along the residual.
        step : float
            The dual step, > 0.

        Returns
        -------
        ndarray of shape (n_obs,)
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form dual step.")

    def dual_squares(self, y: np.ndarray, theta: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Per row, the quadratic part of the dual term of a loss with a closed-form dual step
        (:attr:`has_dual_prox`: squared, Huber, pinball), whose conjugate is at most quadratic
        on its box: ``dual_value(y, s theta, c) = s sum_r c_r theta_r y_r - s^2 / 2 sum_r
        dual_squares_r`` for every scaling ``s`` in [0, 1], with ``dual_squares_r = kappa c_r
        theta_r^2`` (``kappa`` = ``dual_strong_concavity``: 1 squared and Huber, 0
        pinball). A dual summed over blocks is then two numbers per task, whatever ``s``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        theta : ndarray of shape (n_obs,)
            A dual point in the box.
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        ndarray of shape (n_obs,)
        """
        if not self.has_dual_prox:
            raise NotImplementedError(
                f"{type(self).__name__}'s dual term is not quadratic in its dual point.")
        return self.dual_strong_concavity * c * theta * theta

    def hessian(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Per row, the second derivative ``l''(f_r)`` of the loss in the score (the weights of
        the data term's Hessian, before the row weights).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            ``l''(f_r)`` (1 for the squared loss, ``p (1 - p)`` for the logistic loss).

        Raises
        ------
        ValueError
            For a loss that declares no curvature (the default): no degrees of freedom, so no
            AIC or BIC.
        """
        raise ValueError(f"the loss {self.name or type(self).__name__!r} declares no "
                         "curvature (hessian), so its fits have no degrees of freedom for AIC "
                         "or BIC; choose alpha by cross-validation.")

    def curvature_at(self, y: np.ndarray, f: np.ndarray) -> float:
        """A bound on ``l''`` near the scores ``f`` (the start of a step-size search): the
        global ``curvature`` where there is one.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        float
            The largest ``l''(f_r)``, or the global bound.
        """
        if np.isfinite(self.curvature):
            return float(self.curvature)
        h = self.hessian(y, f)  # (a NumPy array, or a Dask one on task blocks held elsewhere)
        return max(float(h.max()), 0.0) if np.size(h) else 1.0

    def newton_weights(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Per row, the curvature of the quadratic model of a proximal Newton step (IRLS
        weights before the row weights): :meth:`hessian` unless the loss says otherwise.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            The weights, >= 0.
        """
        return self.hessian(y, f)

    def floor(self, y: np.ndarray, c: np.ndarray) -> float:
        """``sum_r c_r inf_f l(y_r, f)``: the data term of a model that fits every row
        (0 for the squared and logistic losses). The certificates are relative to the
        objective at W = 0 above this floor.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        float
            The floor.
        """
        return 0.0

    def check_targets(self, y: np.ndarray, what: str = "y") -> None:
        """Refuse targets outside the loss's domain (with a message naming the loss).

        Parameters
        ----------
        y : ndarray
            The observed targets (NaN already removed).
        what : str, default="y"
            How the message names them.

        Raises
        ------
        ValueError
            If a target lies outside the domain (negative counts for ``"poisson"``, ...).
        """

    def with_offset(self, y: np.ndarray, c: np.ndarray,
                    offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets and row weights of an equal problem without offset: the data term
        ``sum_r c_r l(y_r, f_r + o_r)`` equals ``sum_r c'_r l(y'_r, f_r)`` up to a constant.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        c : ndarray of shape (n_obs,)
            Row weights.
        offset : ndarray of shape (n_obs,)
            The offset ``o_r`` of each row's linear predictor (a log exposure for the
            log-link losses).

        Returns
        -------
        (y', c') : tuple of ndarray
            The equal problem's targets and weights.

        Raises
        ------
        ValueError
            For a loss that takes no offset.
        """
        raise ValueError(f"the {self.name or type(self).__name__} loss takes no offset; "
                         "the losses that do: "
                         f"{sorted(n for n, k in REGISTRY.items() if k.takes_offset())}.")

    def offset_constant(self, y: np.ndarray, c: np.ndarray, offset: np.ndarray) -> float:
        """The constant between the two data terms of :meth:`with_offset`:
        ``sum_r c_r l(y_r, f_r + o_r) - sum_r c'_r l(y'_r, f_r)`` (0 where the offset is
        subtracted from the targets; ``-sum c y o`` Poisson, ``sum c o`` Gamma), with the
        targets and weights as given to :meth:`with_offset`."""
        return 0.0

    @classmethod
    def takes_offset(cls) -> bool:
        """Whether the loss takes an ``offset`` (it overrides :meth:`with_offset`)."""
        return cls.with_offset is not Datafit.with_offset

    def mean(self, f: np.ndarray) -> np.ndarray:
        """The prediction of the linear predictor ``f`` in the target's units (the inverse
        link): ``f`` itself, ``exp(f)`` for the log-link losses.

        Parameters
        ----------
        f : ndarray
            Scores.

        Returns
        -------
        ndarray
            Predictions.
        """
        return f

    def bind(self, data: Any) -> Datafit:
        """This loss on the rows of ``data``: itself (a loss per task, ``Mixed``, and the
        multinomial loss find their rows there).

        Parameters
        ----------
        data : TaskData
            The problem.

        Returns
        -------
        Datafit
            The loss to evaluate on ``data``'s flat arrays.
        """
        return self

    def smoothed(self, delta: float) -> Datafit:
        """A smooth loss within ``O(delta)`` of this one whose dual points are feasible for
        it (the stages of a nonsmooth loss's fit); a smooth loss is its own.

        Parameters
        ----------
        delta : float
            The smoothing width, > 0.

        Returns
        -------
        Datafit
            The smoothed loss.
        """
        if self.smooth:
            return self
        raise NotImplementedError(f"{type(self).__name__} is not smooth and has no smoothed "
                                  "form.")

    def state(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """The coordinate-descent state of scores ``f``: the residual ``y - f`` (squared
        loss) or the scores themselves (logistic loss).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            A new array holding the state.
        """
        if hasattr(f, "__dask_graph__"):  # held in blocks elsewhere: operations make copies
            return f
        return np.array(f, dtype=np.float64)

    def scores(self, y: np.ndarray, S: np.ndarray) -> np.ndarray:
        """The scores of a coordinate-descent state (the inverse of :meth:`state`).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        S : ndarray of shape (n_obs,)
            State.

        Returns
        -------
        ndarray of shape (n_obs,)
            Scores ``f``.
        """
        return S

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        """The same loss with the same parameters (its class and ``repr``): a saved and
        loaded model's ``loss_`` equals the fitted one."""
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


def default_loss(kind: str) -> str:
    """The name of the default loss of a task kind (``default_for_kind``).

    Parameters
    ----------
    kind : {"regression", "binary"}
        The kind of the tasks.

    Returns
    -------
    str
        The loss's name (``"squared"``, ``"logistic"``).
    """
    for name, cls in REGISTRY.items():
        if cls.kind == kind and cls.default_for_kind:
            return name
    raise ValueError(f"no default loss for tasks of kind {kind!r}.")


def one_loss(loss: Any) -> Datafit:
    """One loss from a registered name (with its default parameters) or a :class:`Datafit`.

    Parameters
    ----------
    loss : str or Datafit
        The loss.

    Returns
    -------
    Datafit
        The loss object.

    Raises
    ------
    ValueError
        For an unknown name or another object.
    """
    if isinstance(loss, Datafit):
        return loss
    if isinstance(loss, str) and loss.lower() in REGISTRY:
        return REGISTRY[loss.lower()]()
    raise ValueError(f"loss={loss!r} is not one of {sorted(REGISTRY)} (or a loss object, or a "
                     "list with one loss per task).")


def loss_parameter(value: Any, call: str, name: str, low: float, high: float | None,
                   hint: str) -> float:
    """A loss's number parameter checked: a real number (not a bool, a string or None),
    finite, with ``low < value`` (and ``value < high`` when given); else a ``ValueError``
    that names the call (``call``, e.g. ``"Huber(delta=None)"``), the parameter and what it
    must be (``hint``: its units or its meaning)."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and bool(np.isfinite(value)) and value > low and (high is None or value < high))
    if not ok:
        bound = f"> {low:g}" if high is None else f"strictly between {low:g} and {high:g}"
        raise ValueError(f"{call}: {name} must be a finite number {bound} ({hint}); "
                         f"got {value!r}.")
    return float(value)
