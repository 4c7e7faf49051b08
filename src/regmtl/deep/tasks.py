r"""Task specifications: what each task predicts, its loss with missing labels, its metrics.

A :class:`TaskSpec` names a task and its kind:

==============  ===========================  =========================  =====================
kind            target (float array)         net output (per sample)    default loss
==============  ===========================  =========================  =====================
``regression``  value(s), shape (n,) or      ``n_outputs`` values       ``"mse"``: ½(y - f)²
                (n, n_outputs)
``binary``      0 / 1                        one logit                  ``"bce"``: log(1+e^{-s f}),
                                                                        s = 2y - 1
``multiclass``  class index 0..K-1           K logits                   ``"ce"``: cross entropy
``count``       count >= 0 (integers not     one log mean f = log μ     ``"poisson"``:
                required)                                               e^f - y f + y log y - y
==============  ===========================  =========================  =====================

Regression tasks may also take the Huber loss with a threshold, ``loss=("huber", delta)``, or
the pinball loss of a quantile level, ``loss=("quantile", tau)`` (:data:`LOSSES` lists the
names; :func:`loss_function` gives the function of a loss).

NaN in a target marks a missing label: that sample contributes nothing to the task's loss and
metrics. A task's loss on a batch is the mean over its observed entries,

.. math:: L_t = \frac{1}{|O_t|} \sum_{i \in O_t} \ell_t(y_{ti}, f_t(x_i)),

and 0 (still attached to the graph, with zero gradient) when the batch observes none.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from ._torch import torch

__all__ = ["TaskSpec", "Metric", "KINDS", "LOSSES", "METRICS", "LOG_MEAN_MAX", "as_task_specs",
           "check_loss_parameter", "loss_function", "mean_poisson_deviance", "pinball"]

KINDS: tuple[str, ...] = ("regression", "binary", "multiclass", "count")

#: The largest log mean a count task's exp is taken at: its loss continues linearly beyond
#: (convex, with the slope e^50 of the edge), its prediction is e^50 ≈ 5.2e21 beyond. So no
#: loss, gradient or mean overflows float32 for outputs up to ±700 (or beyond).
LOG_MEAN_MAX = 50.0

F = torch.nn.functional


def _mse(f, y):
    return 0.5 * (f - y) ** 2


def _mae(f, y):
    return (f - y).abs()


def _huber(f, y):
    return F.huber_loss(f, y, reduction="none", delta=1.0)


def _huber_delta(delta: float, f, y):
    r"""Huber: :math:`\tfrac12 r^2` for :math:`|r| \le \delta`, :math:`\delta |r| -
    \tfrac12 \delta^2` beyond (r = y - f)."""
    return F.huber_loss(f, y, reduction="none", delta=delta)


def _pinball(tau: float, f, y):
    r"""Pinball: :math:`\tau r^+ + (1 - \tau) r^-` with r = y - f."""
    r = y - f
    return torch.maximum(tau * r, (tau - 1.0) * r)


def _poisson(f, y):
    r"""Poisson on the log mean f: :math:`e^f - y f + y \log y - y` (half the unit deviance;
    e^f continued linearly beyond :data:`LOG_MEAN_MAX`)."""
    if f.dtype in (torch.float16, torch.bfloat16):
        f, y = f.float(), y.float()
    fc = f.clamp(max=LOG_MEAN_MAX)
    mean = torch.exp(fc) * (1.0 + (f - fc))  # e^f, then its tangent beyond the edge
    return mean - y * f + (torch.special.xlogy(y, y) - y)


def _bce(f, y):
    return F.binary_cross_entropy_with_logits(f, y, reduction="none")


def _ce(f, y):
    return F.cross_entropy(f, y.long(), reduction="none")


#: Per-element losses by name: ``loss(output, target) -> tensor`` of the target's shape.
#: ``"quantile"`` alone is the median (tau = 0.5); ``"huber"`` alone has delta = 1.
LOSSES: dict[str, Callable] = {"mse": _mse, "mae": _mae, "huber": _huber, "bce": _bce,
                               "ce": _ce, "quantile": functools.partial(_pinball, 0.5),
                               "poisson": _poisson}
_LOSS_KINDS = {"mse": "regression", "mae": "regression", "huber": "regression",
               "bce": "binary", "ce": "multiclass", "quantile": "regression",
               "poisson": "count"}
_DEFAULT_LOSS = {"regression": "mse", "binary": "bce", "multiclass": "ce", "count": "poisson"}
#: the losses that take a parameter, ``(name, value)``: its name and its check
_LOSS_PARAMETERS = {"huber": "delta", "quantile": "tau"}


def check_loss_parameter(name: str, value: Any, where: str) -> float:
    """The parameter of loss ``name`` (``"huber"``: delta finite and > 0; ``"quantile"``: tau
    in (0, 1)) as a float; a ValueError naming it and ``where`` otherwise."""
    what = _LOSS_PARAMETERS[name]
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if what == "delta" and not (math.isfinite(v) and v > 0):
        raise ValueError(f"{where}: the Huber loss's delta must be a finite number > 0, got "
                         f"{value!r}.")
    if what == "tau" and not 0.0 < v < 1.0:
        raise ValueError(f"{where}: the quantile loss's level tau must be in (0, 1) (0.9 for "
                         f"the 90th percentile), got {value!r}.")
    return v


def loss_function(loss: str | tuple | Callable) -> Callable:
    """The per-element function ``fn(output, target)`` of a loss: a name of :data:`LOSSES`, a
    pair ``("huber", delta)`` or ``("quantile", tau)``, or a callable (returned as is)."""
    if isinstance(loss, str):
        return LOSSES[loss]
    if isinstance(loss, tuple):
        fn = _huber_delta if loss[0] == "huber" else _pinball
        return functools.partial(fn, loss[1])
    return loss


def mean_poisson_deviance(y: np.ndarray, mean: np.ndarray) -> float:
    r"""The mean Poisson deviance :math:`\frac2n \sum_i y_i \log(y_i / \mu_i) - y_i +
    \mu_i` (a mean of 0, beyond float64, read as the smallest positive float)."""
    mu = np.maximum(np.asarray(mean, dtype=np.float64), np.finfo(np.float64).tiny)
    y = np.asarray(y, dtype=np.float64)
    from scipy.special import xlogy

    return float(2.0 * np.mean(xlogy(y, y) - xlogy(y, mu) - y + mu))


def pinball(tau: float, y: np.ndarray, pred: np.ndarray) -> float:
    r"""The mean pinball loss at level :math:`\tau`: :math:`\frac1n \sum_i \tau r_i^+ +
    (1 - \tau) r_i^-`, r = y - pred."""
    r = np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64)
    return float(np.mean(np.maximum(tau * r, (tau - 1.0) * r)))


@dataclass(frozen=True)
class Metric:
    """A named score ``fn(y_true, y_pred) -> float`` on a task's observed samples.

    The trainer logs it on validation data as ``val/TASK/NAME`` (and early stopping can
    monitor it). ``y_true`` holds the observed labels (class indices as integers for
    classification); ``y_pred`` is the task's prediction
    (:meth:`~regmtl.deep.TaskSpec.transform`): values for regression, P(y = 1) for binary,
    class probabilities (n, K) for multiclass.

    Parameters
    ----------
    name : str
        The metric's name in the history.
    fn : callable
        ``fn(y_true, y_pred) -> float``.
    higher_is_better : bool
        Its direction (early stopping maximizes it when True).

    See Also
    --------
    regmtl.deep.TaskSpec : Takes metrics (``metrics=``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.metrics import median_absolute_error
    >>> from regmtl.deep import Metric, TaskSpec
    >>> medae = Metric("medae", median_absolute_error, higher_is_better=False)
    >>> spec = TaskSpec("price", metrics=("r2", medae))
    >>> spec.metrics
    ('r2', 'medae')
    >>> spec.scores(np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.5, 2.0, 0.0, 3.0]))["medae"]
    0.5
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool


def _auc(y, p):
    return skm.roc_auc_score(y, p) if len(np.unique(y)) == 2 else math.nan


def _log_loss_binary(y, p):
    return skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])


def _log_loss_multi(y, P):
    return skm.log_loss(y, P, labels=np.arange(P.shape[1]))


def _accuracy_binary(y, p):
    return skm.accuracy_score(y, p > 0.5)


def _accuracy_multi(y, P):
    return skm.accuracy_score(y, P.argmax(1))


#: Built-in metrics by kind; ``TaskSpec(metrics=...)`` picks among them by name.
METRICS: dict[str, dict[str, Metric]] = {
    "regression": {
        "mse": Metric("mse", skm.mean_squared_error, False),
        "rmse": Metric("rmse", skm.root_mean_squared_error, False),
        "mae": Metric("mae", skm.mean_absolute_error, False),
        "r2": Metric("r2", skm.r2_score, True),
    },
    "binary": {
        "auc": Metric("auc", _auc, True),
        "accuracy": Metric("accuracy", _accuracy_binary, True),
        "log_loss": Metric("log_loss", _log_loss_binary, False),
    },
    "multiclass": {
        "accuracy": Metric("accuracy", _accuracy_multi, True),
        "log_loss": Metric("log_loss", _log_loss_multi, False),
    },
    "count": {  # on the predicted means
        "poisson_deviance": Metric("poisson_deviance", mean_poisson_deviance, False),
        "mae": Metric("mae", skm.mean_absolute_error, False),
        "mse": Metric("mse", skm.mean_squared_error, False),
    },
}
_DEFAULT_METRICS = {"regression": ("mse", "r2"), "binary": ("auc", "accuracy", "log_loss"),
                    "multiclass": ("accuracy", "log_loss"), "count": ("poisson_deviance", "mae")}


@dataclass(frozen=True)
class TaskSpec:
    r"""One task of a multi-task model: its kind, loss, metrics and weight.

    A task's loss on a batch is the mean of the per-element loss :math:`\ell_t` over the
    observed entries :math:`O_t` of its target (NaN marks a missing label),

    .. math:: L_t = \frac{1}{|O_t|} \sum_{i \in O_t} \ell_t(y_{ti}, f_t(x_i)),

    and 0 (with zero gradient) when the batch observes none. The default losses are
    :math:`\tfrac12 (y - f)^2` (regression), the logistic loss on one logit (binary), the
    cross entropy on K logits (multiclass) and the Poisson loss on the log mean (count).

    **Count tasks** (``kind="count"``: clicks, purchases, visits; labels >= 0, not
    necessarily integers) have one output, the log of the mean :math:`f = \log \mu`, and the
    loss ``"poisson"``

    .. math:: \ell(y, f) = e^f - y f + y \log y - y \quad (0 \log 0 = 0),

    half the Poisson unit deviance: 0 at :math:`\mu = y`, never negative. It is
    ``torch.nn.functional.poisson_nll_loss(f, y, log_input=True, full=False)`` plus
    :math:`y \log y - y`, and the negative log-likelihood :math:`-\log p(y \mid \mu)` minus
    :math:`\log y! - y \log y + y`: constants in f, so the same gradients. Above
    ``regmtl.deep.tasks.LOG_MEAN_MAX`` (50) :math:`e^f` continues linearly (convex, the
    slope :math:`e^{50}`), so the loss and its gradient stay finite in float32 for any
    output, ±700 included; the prediction (:meth:`transform`) is the mean :math:`e^f`, taken
    at 50 above it. Count targets are never standardized.

    **Robust and quantile regression.** ``loss=("huber", delta)`` is
    :math:`\tfrac12 r^2` for :math:`|r| \le \delta` and :math:`\delta |r| - \tfrac12 \delta^2`
    beyond (r = y - f); ``loss=("quantile", tau)`` is the pinball loss
    :math:`\tau r^+ + (1 - \tau) r^-`, whose minimizer is the tau-quantile of y given x.
    ``"huber"`` alone has delta = 1, ``"quantile"`` alone tau = 0.5 (the median). Both act on
    what the loss sees: the :class:`~regmtl.deep.Trainer` standardizes regression targets, so
    delta is in standard deviations of the task's training labels there (the scikit-learn
    wrappers take delta in the target's units and divide it by that deviation); the pinball
    loss scales with the units, so tau's quantile is the same in either.

    Parameters
    ----------
    name : str
        The key of the task's target and prediction.
    kind : {"regression", "binary", "multiclass", "count"}, default="regression"
        What the task predicts: values, a 0/1 label, a class index 0..K-1, or a count (its
        mean).
    n_outputs : int, optional
        Outputs of the task's head: 1 for binary and count; the number of classes (>= 2,
        required) for multiclass; the target's width for regression (default 1).
    loss : str, tuple or callable, optional
        Per-element loss ``loss(output, target)``: ``"mse"``, ``"mae"``, ``"huber"``,
        ``("huber", delta)`` (delta > 0), ``"quantile"``, ``("quantile", tau)`` (tau in
        (0, 1)) for regression; ``"bce"`` (binary); ``"ce"`` (multiclass); ``"poisson"``
        (count). Default ``"mse"`` / ``"bce"`` / ``"ce"`` / ``"poisson"`` by kind. A callable
        gets the observed rows only (missing targets replaced by 0) and returns one value per
        element.
    metrics : sequence of str or Metric, optional
        Scores logged on validation data; default ``("mse", "r2")`` for regression
        (``("pinball", "mae")`` with a quantile loss; ``"pinball"`` is the mean pinball loss
        at its tau), ``("auc", "accuracy", "log_loss")`` for binary, ``("accuracy",
        "log_loss")`` for multiclass, ``("poisson_deviance", "mae")`` for count (the mean
        Poisson deviance and the mean absolute error of the predicted means; ``"mse"`` too).
    weight : float, default=1.0
        The task's weight :math:`b_t` under equal weighting (the starting weight of adaptive
        methods), finite and >= 0.
    missing_labels : {"allow", "refuse"}, default="allow"
        Whether the task may have missing labels (NaN). ``"refuse"`` is for a task whose
        meaning needs a label on every row: training on the labelled rows alone would bias it
        towards them (sample selection), as ESMM's CTR and CTCVR tasks, defined on every
        impression. Its NaN labels are refused when the data are read (and in a batch).

    Attributes
    ----------
    n_outputs : int
        Outputs of the head (resolved).
    loss : str, tuple or callable
        The loss (resolved; a parameter as ``(name, float)``).
    metrics : tuple of str
        The names of the metrics.

    Raises
    ------
    ValueError
        If the name is empty, the kind, loss or a metric is unknown or does not fit the kind,
        ``n_outputs`` is missing or wrong, ``weight`` is negative, or a loss's parameter is
        out of range (delta <= 0, tau outside (0, 1)).

    See Also
    --------
    regmtl.deep.HardSharing : A net over tasks.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec
    >>> spec = TaskSpec("clicked", kind="binary")
    >>> spec.n_outputs, spec.loss, spec.metrics
    (1, 'bce', ('auc', 'accuracy', 'log_loss'))
    >>> logits = torch.tensor([[0.0], [2.0], [-1.0]])
    >>> y = torch.tensor([1.0, float("nan"), 0.0])  # the second label is missing
    >>> round(float(spec.task_loss(logits, y)), 4)  # (log 2 + log(1 + e^-1)) / 2
    0.5032
    >>> TaskSpec("digit", kind="multiclass", n_outputs=3).loss
    'ce'
    >>> visits = TaskSpec("visits", kind="count")
    >>> visits.loss, visits.metrics
    ('poisson', ('poisson_deviance', 'mae'))
    >>> log_mean = torch.tensor([[0.0], [700.0]])  # no overflow, even at 700
    >>> visits.transform(log_mean)  # the mean count, e^f (taken at f = 50 above it)
    tensor([1.0000e+00, 5.1847e+21])
    >>> TaskSpec("demand", loss=("quantile", 0.9)).metrics
    ('pinball', 'mae')
    """

    name: str
    kind: str = "regression"
    n_outputs: int | None = None
    loss: str | Callable | None = None
    metrics: Sequence[str | Metric] | None = None
    weight: float = 1.0
    missing_labels: str = "allow"
    _metrics: tuple[Metric, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"TaskSpec.name must be a non-empty string, got {self.name!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"TaskSpec {self.name!r}: kind must be one of {KINDS}, "
                             f"got {self.kind!r}.")
        n = self.n_outputs
        if n is not None and (not isinstance(n, (int, np.integer))
                              or isinstance(n, (bool, np.bool_))):
            hint = " (a float is not truncated)" if isinstance(n, (float, np.floating)) else ""
            raise ValueError(f"TaskSpec {self.name!r}: n_outputs must be an int, got {n!r}"
                             f"{hint}; pass the number of outputs (classes for multiclass) "
                             "as an int, e.g. n_outputs=3.")
        if self.kind == "multiclass":
            if n is None or int(n) < 2:
                raise ValueError(f"TaskSpec {self.name!r}: a multiclass task needs n_outputs = "
                                 f"its number of classes (>= 2), got {n!r}.")
        elif self.kind in ("binary", "count"):
            if n not in (None, 1):
                what = "logit" if self.kind == "binary" else "log mean"
                raise ValueError(f"TaskSpec {self.name!r}: a {self.kind} task has one output "
                                 f"(its {what}), got n_outputs={n!r}.")
            n = 1
        else:
            n = 1 if n is None else n
            if int(n) < 1:
                raise ValueError(f"TaskSpec {self.name!r}: n_outputs must be >= 1, got {n!r}.")
        object.__setattr__(self, "n_outputs", int(n))
        loss = _DEFAULT_LOSS[self.kind] if self.loss is None else self.loss
        if isinstance(loss, (tuple, list)):
            if (len(loss) != 2 or not isinstance(loss[0], str)
                    or loss[0] not in _LOSS_PARAMETERS):
                raise ValueError(f"TaskSpec {self.name!r}: a loss with a parameter is "
                                 "('huber', delta) or ('quantile', tau), got "
                                 f"{tuple(loss)!r:.80}.")
            loss = (loss[0], check_loss_parameter(loss[0], loss[1], f"TaskSpec {self.name!r}"))
        if isinstance(loss, (str, tuple)):
            name = loss if isinstance(loss, str) else loss[0]
            if name not in LOSSES:
                raise ValueError(f"TaskSpec {self.name!r}: unknown loss {loss!r}; use one of "
                                 f"{sorted(LOSSES)} or a callable.")
            if _LOSS_KINDS[name] != self.kind:
                raise ValueError(f"TaskSpec {self.name!r}: loss {name!r} is for "
                                 f"{_LOSS_KINDS[name]} tasks, not {self.kind}.")
        elif not callable(loss):
            raise ValueError(f"TaskSpec {self.name!r}: loss must be a name or a callable.")
        object.__setattr__(self, "loss", loss)
        if isinstance(self.weight, (np.integer, np.floating)):
            object.__setattr__(self, "weight", float(self.weight))
        if not (isinstance(self.weight, (int, float)) and not isinstance(self.weight, bool)
                and math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"TaskSpec {self.name!r}: weight must be a finite number >= 0, "
                             f"got {self.weight!r}.")
        if self.missing_labels not in ("allow", "refuse"):
            raise ValueError(f"TaskSpec {self.name!r}: missing_labels must be 'allow' or "
                             f"'refuse', got {self.missing_labels!r}.")
        tau = self.quantile
        default = ("pinball", "mae") if tau is not None else _DEFAULT_METRICS[self.kind]
        names = default if self.metrics is None else self.metrics
        if isinstance(names, (str, Metric)):
            names = (names,)
        known = self._known_metrics()
        resolved = []
        for m in names:
            if isinstance(m, Metric):
                resolved.append(m)
            elif m in known:
                resolved.append(known[m])
            else:
                hint = (" ('pinball' needs a quantile loss)" if m == "pinball"
                        and self.kind == "regression" else "")
                raise ValueError(f"TaskSpec {self.name!r}: unknown metric {m!r} for a "
                                 f"{self.kind} task{hint}; use one of {sorted(known)} or a "
                                 "Metric.")
        object.__setattr__(self, "metrics", tuple(m.name for m in resolved))
        object.__setattr__(self, "_metrics", tuple(resolved))

    @property
    def quantile(self) -> float | None:
        """The level tau of a quantile loss (0.5 for ``"quantile"``), else None."""
        if self.loss == "quantile":
            return 0.5
        if isinstance(self.loss, tuple) and self.loss[0] == "quantile":
            return self.loss[1]
        return None

    def _known_metrics(self) -> dict[str, Metric]:
        """The built-in metrics of the task: those of its kind, and ``"pinball"`` at its
        level for a quantile loss (one Metric per spec, made once)."""
        known = METRICS[self.kind]
        tau = self.quantile
        if tau is None:
            return known
        bound = self.__dict__.get("_pinball_metric")
        if bound is None:
            bound = Metric("pinball", functools.partial(pinball, tau), False)
            object.__setattr__(self, "_pinball_metric", bound)
        return {**known, "pinball": bound}

    # ------------------------------------------------------------------ targets
    @property
    def target_width(self) -> int:
        """Columns of the target: ``n_outputs`` for regression, else 1."""
        return self.n_outputs if self.kind == "regression" else 1

    def check_target(self, y: Any, what: str = "targets") -> np.ndarray:
        """The target as a float array, checked against the task's kind.

        Parameters
        ----------
        y : array-like of shape (n,) or (n, n_outputs)
            The target; NaN is a missing label.
        what : str, default="targets"
            How error messages name the target.

        Returns
        -------
        ndarray of shape (n,) or (n, n_outputs)
            The target as float64.

        Raises
        ------
        ValueError
            On infinities, labels other than 0/1 (binary) or outside 0..K-1 (multiclass), or
            a width other than ``n_outputs``, or negative counts.
        """
        arr = np.asarray(y, dtype=np.float64)
        k = self.target_width
        if arr.ndim == 2 and arr.shape[1] == 1 and k == 1:
            arr = arr[:, 0]
        if (k == 1 and arr.ndim != 1) or (k > 1 and (arr.ndim != 2 or arr.shape[1] != k)):
            want = "(n,)" if k == 1 else f"(n, {k})"
            raise ValueError(f"{what}[{self.name!r}] has shape {arr.shape}; task {self.name!r} "
                             f"({self.kind}, n_outputs={self.n_outputs}) needs {want}.")
        if np.isinf(arr).any():
            raise ValueError(f"{what}[{self.name!r}] contains infinity; use NaN for a missing "
                             "label or drop the row.")
        missing = np.isnan(arr)
        if self.missing_labels == "refuse" and missing.any():
            raise ValueError(self._refusal(int(missing.any(axis=-1).sum() if arr.ndim > 1
                                               else missing.sum()), len(arr), what))
        obs = arr[~missing]
        if self.kind == "binary" and not np.isin(obs, (0.0, 1.0)).all():
            bad = np.unique(obs[~np.isin(obs, (0.0, 1.0))])[:5]
            raise ValueError(f"{what}[{self.name!r}]: binary labels must be 0 or 1 (NaN = "
                             f"missing), found {bad.tolist()}.")
        if self.kind == "count" and (obs < 0).any():
            bad = np.unique(obs[obs < 0])[:5]
            raise ValueError(f"{what}[{self.name!r}]: task {self.name!r} is a count task, "
                             f"whose labels must be >= 0 (NaN = missing), found {bad.tolist()}.")
        if self.kind == "multiclass":
            ok = (obs == np.round(obs)) & (obs >= 0) & (obs < self.n_outputs)
            if not ok.all():
                bad = np.unique(obs[~ok])[:5]
                raise ValueError(f"{what}[{self.name!r}]: class labels must be integers in "
                                 f"0..{self.n_outputs - 1} (n_outputs={self.n_outputs}), found "
                                 f"{bad.tolist()}.")
        return arr

    def _refusal(self, n_missing: int, n: int, what: str) -> str:
        return (f"{what}[{self.name!r}]: {n_missing} of {n} labels are missing (NaN), but task "
                f"{self.name!r} needs a label on every row (missing_labels='refuse'): trained "
                "on the labelled rows alone it would be biased towards them (sample "
                "selection). Give every row its label; for ESMM build the CTR and CTCVR "
                "labels with esmm_targets(click, purchase), which counts a purchase as 0 "
                "where there was no click.")

    # ------------------------------------------------------------------ loss
    def observed(self, target: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the observed (non-NaN) entries of a target batch.

        Parameters
        ----------
        target : Tensor
            A batch of the target.

        Returns
        -------
        Tensor of bool
            Of the shape of ``target``.
        """
        return ~torch.isnan(target)

    def output_view(self, output: torch.Tensor) -> torch.Tensor:
        """The head's output shaped as the loss needs it.

        Parameters
        ----------
        output : Tensor of shape (B, n_outputs)
            The head's output.

        Returns
        -------
        Tensor
            Of shape (B,) for one output, else (B, n_outputs).
        """
        return output[:, 0] if self.n_outputs == 1 else output

    def task_loss(self, output: torch.Tensor, target: torch.Tensor, *,
                  complete: bool = False) -> torch.Tensor:
        """Mean loss over the observed entries of ``target`` (0 with a zero gradient if none).

        Parameters
        ----------
        output : Tensor of shape (B, n_outputs)
            The head's output (values or logits).
        target : Tensor of shape (B,) or (B, n_outputs)
            The target batch, NaN where missing.
        complete : bool, default=False
            The caller knows that no label of ``target`` is missing (the trainer checks a
            data set once): the same loss, without the masks.

        Returns
        -------
        Tensor
            The scalar loss :math:`L_t`, attached to the graph of ``output``.
        """
        per, count = self.row_losses(output, target, complete=complete and target.numel() > 0)
        total = per.new_tensor(float(count * len(per))) if isinstance(count, int) else count.sum()
        return per.sum() / total.clamp(min=1).to(per.dtype)

    def row_losses(self, output: torch.Tensor, target: torch.Tensor, *,
                   complete: bool = False) -> tuple[torch.Tensor, torch.Tensor | int]:
        """Each row's summed loss over its observed entries, and their count.

        The per-row form of :meth:`task_loss`: summing both over a task's rows and dividing
        gives its mean loss (the trainer does it for all tasks at once by segment sums).

        Parameters
        ----------
        output : Tensor of shape (B, >= n_outputs)
            The rows' head outputs (the first ``n_outputs`` columns are read).
        target : Tensor of shape (B,) or (B, >= target_width)
            The rows' targets, NaN where missing.
        complete : bool, default=False
            The caller knows that no label of ``target`` is missing (the trainer checks a
            data set once): the same losses, without the masks.

        Returns
        -------
        tuple
            ``(loss, count)``: the losses (B,) and the counts (B,) int64; with ``complete``,
            the count is the int every row has, ``target_width``.
        """
        if complete:
            return self.complete_row_loss()(output, target), self.target_width
        f = self.output_view(output if output.shape[1] == self.n_outputs
                             else output[:, :self.n_outputs])
        if target.ndim == 2:
            target = target[:, :self.target_width]
            if self.target_width == 1:
                target = target[:, 0]
        fn = loss_function(self.loss)
        mask = self.observed(target)
        if self.missing_labels == "refuse" and not bool(mask.all()):  # a batch not checked
            raise ValueError(self._refusal(int((~mask).sum()), int(mask.numel()), "batch"))
        y = torch.where(mask, target, torch.zeros_like(target))
        per = fn(f, y) if self.kind == "multiclass" else fn(f, y.to(f.dtype))
        if callable(self.loss):
            check_loss_values(self.name, self.loss, per, y.shape)
        per = torch.where(mask, per, torch.zeros_like(per))
        if per.ndim == 2:
            return per.sum(1), mask.sum(1)
        return per, mask.to(torch.int64)

    def complete_row_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The loss of :meth:`row_losses` with ``complete=True`` as one function, its choices
        (output columns, target shape, loss) made once: what the trainer runs on every batch
        of a data set without missing labels.

        Returns
        -------
        callable
            ``loss(output, target) -> Tensor (B,)``: ``output`` (B, >= n_outputs), ``target``
            (B,) or (B, >= target_width) without NaN.
        """
        fn = loss_function(self.loss)
        return functools.partial(_complete_row_loss, fn, self.n_outputs, self.target_width,
                                 self.kind == "multiclass",
                                 checked=self.name if callable(self.loss) else None)

    # ------------------------------------------------------------------ predictions
    def transform(self, output: torch.Tensor) -> torch.Tensor:
        """The prediction from the head's output.

        Parameters
        ----------
        output : Tensor of shape (B, n_outputs)
            The head's output.

        Returns
        -------
        Tensor
            Values (regression), P(y = 1) of shape (B,) (binary), class probabilities of
            shape (B, K) (multiclass), or the mean count :math:`e^f` (count; the log mean
            taken at ``LOG_MEAN_MAX`` above it, so no overflow).
        """
        f = self.output_view(output)
        if self.kind == "binary":
            return torch.sigmoid(f)
        if self.kind == "count":
            return torch.exp(f.clamp(max=LOG_MEAN_MAX))
        if self.kind == "multiclass":
            return torch.softmax(f, dim=-1)
        return f

    def scores(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        """Every metric on the observed samples.

        Parameters
        ----------
        y_true : ndarray of shape (n,) or (n, n_outputs)
            The target, NaN where missing (multi-output regression: rows with every output
            observed count).
        y_pred : ndarray
            The predictions (:meth:`transform`), one row per sample.

        Returns
        -------
        dict of str to float
            Each metric's value (NaN when no sample is observed, or a prediction of an
            observed sample is not finite).
        """
        y_true = np.asarray(y_true, dtype=np.float64)
        mask = ~np.isnan(y_true)
        if mask.ndim == 2:  # multi-output regression: rows with every output observed
            mask = mask.all(axis=1)
        if not mask.any():
            return {m.name: math.nan for m in self._metrics}
        yt, yp = y_true[mask], np.asarray(y_pred)[mask]
        if not np.isfinite(yp).all():  # a diverged net: no score (the trainer says why)
            return {m.name: math.nan for m in self._metrics}
        if self.kind in ("binary", "multiclass"):
            yt = yt.astype(np.int64)
        return {m.name: float(m.fn(yt, yp)) for m in self._metrics}

    def higher_is_better(self, metric: str) -> bool:
        """Whether the task's metric ``metric`` is better when higher.

        Parameters
        ----------
        metric : str
            The name of one of the task's metrics.

        Returns
        -------
        bool
            The metric's direction.

        Raises
        ------
        ValueError
            If the task has no such metric.
        """
        for m in self._metrics:
            if m.name == metric:
                return m.higher_is_better
        raise ValueError(f"Task {self.name!r} has no metric {metric!r}; it has {self.metrics}.")

    # ------------------------------------------------------------------ persistence
    def to_config(self) -> dict:
        """A JSON-able description of the spec, read back by :meth:`from_config`.

        Returns
        -------
        dict
            The constructor arguments.

        Raises
        ------
        ValueError
            With a callable loss or custom metrics (they cannot be saved in JSON).
        """
        if not isinstance(self.loss, (str, tuple)):
            raise ValueError(f"TaskSpec {self.name!r}: a callable loss cannot be saved in a "
                             "JSON config; save the state_dict and rebuild the spec in code.")
        known = self._known_metrics()
        custom = [m for m in self._metrics if known.get(m.name) is not m]
        if custom:
            raise ValueError(f"TaskSpec {self.name!r}: custom metrics cannot be saved in a "
                             "JSON config.")
        loss = list(self.loss) if isinstance(self.loss, tuple) else self.loss
        out = {"name": self.name, "kind": self.kind, "n_outputs": self.n_outputs,
               "loss": loss, "metrics": list(self.metrics), "weight": self.weight}
        if self.missing_labels != "allow":  # files of specs that allow them stay as they were
            out["missing_labels"] = self.missing_labels
        return out

    @classmethod
    def from_config(cls, config: dict) -> TaskSpec:
        """The spec described by ``config`` (from :meth:`to_config`).

        Parameters
        ----------
        config : dict
            The constructor arguments.

        Returns
        -------
        TaskSpec
            The spec.
        """
        return cls(**config)


def as_task_specs(tasks: Any) -> list[TaskSpec]:
    """A list of TaskSpec from specs, names (regression tasks) or a dict name -> kind/spec."""
    if tasks is None:
        raise ValueError("tasks: give the tasks, as TaskSpec objects, names (regression "
                         "tasks) or a dict name -> kind.")
    if isinstance(tasks, (TaskSpec, str)):
        tasks = [tasks]
    if isinstance(tasks, dict):
        tasks = [v if isinstance(v, TaskSpec) else TaskSpec(k, **v) if isinstance(v, dict)
                 else TaskSpec(k, kind=v) for k, v in tasks.items()]
    specs = [t if isinstance(t, TaskSpec) else TaskSpec(t) for t in tasks]
    if not specs:
        raise ValueError("tasks: give at least one TaskSpec.")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"tasks: task names must be unique, {dup} repeat.")
    return specs


def check_loss_values(task: str, loss: Callable, per: Any, target_shape: tuple) -> None:
    """Refuse what a loss callable of task ``task`` returned unless it is one value per
    element of the target, a tensor of ``target_shape`` (its documented contract): a reduced
    loss (one number) or a wider one would otherwise fail later in torch's own words, or be
    broadcast silently."""
    shape = tuple(per.shape) if isinstance(per, torch.Tensor) else None
    if shape == tuple(target_shape):
        return
    got = f"a tensor of shape {shape}" if shape is not None else f"a {type(per).__name__}"
    name = getattr(loss, "__name__", type(loss).__name__)
    want = tuple(target_shape)
    raise ValueError(
        f"TaskSpec {task!r}: its loss {name} returned {got} for a target batch of shape "
        f"{want}; a loss callable returns one value per element, a tensor of the target's "
        f"shape {want} (the per-row losses, not their mean: the trainer averages them over "
        "the observed labels), e.g. lambda f, y: (f - y) ** 2.")


def _complete_row_loss(fn: Callable, k: int, width: int, multiclass: bool,
                       output: torch.Tensor, target: torch.Tensor, *,
                       checked: str | None = None) -> torch.Tensor:
    """:meth:`TaskSpec.complete_row_loss` with its choices bound (a module function, so a
    trainer holding it pickles); ``checked``: the task's name where the loss is a callable
    whose values are checked (:func:`check_loss_values`), else None."""
    f = output[:, 0] if k == 1 else (output if output.shape[1] == k else output[:, :k])
    if target.ndim == 2:
        target = target[:, 0] if width == 1 else target[:, :width]
    per = fn(f, target) if multiclass else fn(f, target.to(f.dtype))
    if checked is not None:
        check_loss_values(checked, fn, per, target.shape)
    return per.sum(1) if per.ndim == 2 else per
