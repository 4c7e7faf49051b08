r"""ESMM as a scikit-learn estimator: impressions in, pCTR, pCVR and pCTCVR out.

:class:`DeepESMMClassifier` fits an :class:`~regmtl.deep.ESMM` net (Ma et al., SIGIR 2018) on
the click -> purchase log of every impression, with the input handling, training, early
stopping and saving of the other wrappers (``regmtl.deep.estimators``). Its target is the
pair (click :math:`c_i`, purchase :math:`v_i`) per impression; the net's two tasks are the
click and the click-and-purchase :math:`c_i v_i`, both on every impression (the entire
space), and

.. math::

    \text{pCTCVR}(x) = \text{pCTR}(x)\,\text{pCVR}(x)
    = \sigma(a(x))\,\sigma(b(x)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils.metadata_routing import UNUSED

from .._options import check_option
from ..taskdata import TaskData
from ._torch import torch
from .estimators import DeepEstimatorBase, layer_widths
from .inputs import chunks, to_device
from .nets import MultiTaskNet
from .nets.esmm import ESMM
from .saving import saved_as_folder
from .tasks import TaskSpec
from .validation import check_finite_predictions
from .wrapper_docs import (
    FITTED_ATTRIBUTES,
    LAYER_PARAMETERS,
    MODAL_PARAMETERS,
    TRAINER_ATTRIBUTE,
    TRAINING_PARAMETERS,
)

__all__ = ["DeepESMMClassifier", "ESMM_OUTPUTS", "click_purchase"]

#: The columns of :meth:`DeepESMMClassifier.predict_proba`, in order.
ESMM_OUTPUTS = ("ctr", "cvr", "ctcvr")
_NAMES = ("click", "purchase")
_ONE_DESIGN = ("X: DeepESMMClassifier takes one design (an array or DataFrame of the "
               "impressions, one row per (click, purchase) pair of y), not one per task.")


def _listed(rows: np.ndarray) -> str:
    return f"{rows[:10].tolist()}{' ...' if len(rows) > 10 else ''}"


def click_purchase(y: Any) -> tuple[np.ndarray, list]:
    r"""The click and entire-space purchase columns of an ESMM target, checked.

    Parameters
    ----------
    y : array-like of shape (n, 2) or DataFrame
        Per impression, the click (0/1) then the purchase (0/1; NaN or 0 where not clicked).
        A DataFrame with columns ``"click"`` and ``"purchase"`` is read by those names (other
        columns refused), else its two columns in order.

    Returns
    -------
    Y : ndarray of shape (n, 2)
        float64 click :math:`c_i` and purchase :math:`c_i v_i` (0 where not clicked).
    names : list
        The two columns' names (``["click", "purchase"]`` for an array).

    Raises
    ------
    ValueError
        Naming ``y`` and the offending rows: not two columns, labels other than 0/1, a
        clicked impression without its purchase label, or a purchase without a click.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep.esmm_estimator import click_purchase
    >>> Y, names = click_purchase([[1, 1], [1, 0], [0, np.nan], [0, 0]])
    >>> Y[:, 1].tolist(), names
    ([1.0, 0.0, 0.0, 0.0], ['click', 'purchase'])
    """
    names: list = list(_NAMES)
    if isinstance(y, pd.DataFrame):
        if set(_NAMES) <= set(y.columns):
            y = y[list(_NAMES)]
        names = list(y.columns)
        y = y.to_numpy()
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y: ESMM's target is a click and a purchase label (0/1) per "
                         f"impression; it cannot be read as numbers ({exc}).") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"y has shape {arr.shape}; DeepESMMClassifier takes an (n, 2) array of (click, "
            "purchase) per impression, or a DataFrame with the columns 'click' and "
            "'purchase' (purchase NaN or 0 where not clicked).")
    click, buy = arr[:, 0], arr[:, 1]
    for what, col, ok in (("click", click, np.isin(click, (0.0, 1.0))),
                          ("purchase", buy, np.isin(buy, (0.0, 1.0)) | np.isnan(buy))):
        bad = np.flatnonzero(~ok)
        if len(bad):
            raise ValueError(f"y: the {what} column must hold 0 or 1"
                             f"{'' if what == 'click' else ' (NaN where not clicked)'}; "
                             f"{len(bad)} row(s) do not, e.g. rows {_listed(bad)} hold "
                             f"{col[bad[:3]].tolist()}.")
    bad = np.flatnonzero((click == 1) & np.isnan(buy))
    if len(bad):
        raise ValueError(f"y: {len(bad)} clicked row(s) have no purchase label (NaN): rows "
                         f"{_listed(bad)}. A clicked impression's purchase is 0 or 1; fill "
                         "or drop those rows.")
    bad = np.flatnonzero((click == 0) & (buy == 1))
    if len(bad):
        raise ValueError(f"y: {len(bad)} row(s) have a purchase without a click: rows "
                         f"{_listed(bad)}. ESMM's chain is click -> purchase, so a purchase "
                         "is observed only after a click; fix the log (or set the click of "
                         "those rows).")
    return np.column_stack([click, np.where(click == 1, buy, 0.0)]), names


_INTRO = r"""ESMM (entire-space multi-task model) as a scikit-learn estimator.

    Fits an :class:`~regmtl.deep.ESMM` net on a click -> purchase log: a click tower
    :math:`a(x)` and a conversion tower :math:`b(x)` on a shared bottom,
    :math:`\text{pCTR} = \sigma(a)`, :math:`\text{pCVR} = \sigma(b)` (the purchase
    probability once clicked) and :math:`\text{pCTCVR} = \text{pCTR}\cdot\text{pCVR}`. Both
    losses, the log-loss of pCTR against the click and that of pCTCVR against click AND
    purchase, are taken on every impression (Ma et al., SIGIR 2018), so pCVR is never fitted
    on the clicked rows alone. ``y`` is the pair (click, purchase) per impression: an (n, 2)
    array, or a DataFrame with the columns ``"click"`` and ``"purchase"`` (else its two
    columns in that order); the purchase is observed only where clicked (NaN or 0
    elsewhere), and a purchase without a click is refused naming the rows. ``X`` is one
    design (an array, or a DataFrame with categorical columns, embedded as in
    :class:`~regmtl.deep.DeepMultiTaskClassifier`); columns are standardized, training runs
    a :class:`~regmtl.deep.Trainer` (each task's log-loss divided by the entropy of its base
    rate, the trainer's default) on one process.
"""

_OWN_PARAMETERS = """\
hidden : sequence of int, default=(64,)
    Widths of the shared bottom; ``()``: the towers read the input (the paper's model).
tower_hidden : sequence of int, default=(32,)
    Hidden widths of each tower before its logit.
""" + LAYER_PARAMETERS

_REST = """See Also
--------
regmtl.deep.ESMM : The net.
regmtl.deep.esmm_targets : The net's labels, for the :class:`~regmtl.deep.Trainer`.

Notes
-----
``predict_proba`` returns the three probabilities as columns (``ESMM_OUTPUTS``), not the
classes of one target; ``predict`` the (n, 2) labels (click, purchase) at probability 0.5;
``score`` the mean of the AUC of pCTR against the click and of pCTCVR against click AND
purchase, the two AUCs the paper reports (:meth:`auc_scores` gives both). The net's tasks are
named ``"t0"`` (CTR) and ``"t1"`` (CTCVR). For ``cross_val_score`` or a grid search give the
purchase as 0 where not clicked (``np.nan_to_num(y)``): scikit-learn's splitters refuse NaN
in a classifier's ``y``. scikit-learn's estimator checks that fit a 1-D ``y`` do not apply
(the target is the pair); ``get_params``, ``set_params`` and ``clone`` work as for every
estimator.

References
----------
Ma, Zhao, Huang, Wang, Hu, Zhu & Gai (2018). Entire space multi-task model: an effective
approach for estimating post-click conversion rate. SIGIR.

Examples
--------
>>> import numpy as np
>>> from regmtl.datasets import make_recommender_tasks
>>> from regmtl.deep import DeepESMMClassifier
>>> d = make_recommender_tasks(2000, 40, 30, 4, random_state=0)
>>> y = d.Y[:, :2]  # click, purchase (NaN where not clicked)
>>> m = DeepESMMClassifier(hidden=(16,), tower_hidden=(8,), lr=3e-3, max_epochs=5)
>>> m = m.fit(d.X, y)
>>> proba = m.predict_proba(d.X[:3])  # columns pCTR, pCVR, pCTCVR
>>> proba.shape, bool(np.allclose(proba[:, 2], proba[:, 0] * proba[:, 1]))
((3, 3), True)
>>> sorted(m.auc_scores(d.X, y)), 0.5 < m.score(d.X, y) <= 1
(['ctcvr', 'ctr'], True)
"""


@saved_as_folder
class DeepESMMClassifier(ClassifierMixin, DeepEstimatorBase):
    __doc__ = (_INTRO.strip("\n") + "\n\n" + "\n".join(
        "    " + line if line else "" for line in (
            "Parameters\n----------\n" + _OWN_PARAMETERS + TRAINING_PARAMETERS
            + MODAL_PARAMETERS.rstrip()
            + "\n\nAttributes\n----------\n" + FITTED_ATTRIBUTES + TRAINER_ATTRIBUTE
            + "\n" + _REST).splitlines()) + "\n    ")

    _kind = "classification"
    _saved: tuple[str, ...] = ()
    _net_name = ESMM.__name__  # the net a saved folder must hold, whatever the parameters

    _parameter_constraints: dict = {
        **{k: v for k, v in DeepEstimatorBase._parameter_constraints.items()
           if k not in ("architecture", "head_hidden", "n_experts")},
        "tower_hidden": ["array-like"],
    }
    # one design, no ``task`` (the base wrappers' long form): nothing to route
    __metadata_request__fit = {"task": UNUSED}
    __metadata_request__score = {"task": UNUSED}
    __metadata_request__predict = {"task": UNUSED}

    def __init__(self, *, hidden: Any = (64,), tower_hidden: Any = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 penalty: str | None = None, alpha: float = 0.0, weighting: Any = "equal",
                 optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 256,
                 max_epochs: int = 200, early_stopping: bool = True,
                 validation_fraction: float = 0.1, patience: int = 10, random_state: Any = 0,
                 device: str = "auto", verbose: int = 0,
                 categorical_features: Any = "from_dtype", on_divergence: str = "raise",
                 input_kind: str = "auto", trunk: Any = None, tokenizer: Any = None,
                 warm_start: bool = False, fusion: str = "concat",
                 modality_dropout: float = 0.0):
        self.hidden = hidden
        self.tower_hidden = tower_hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.penalty = penalty
        self.alpha = alpha
        self.weighting = weighting
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.categorical_features = categorical_features
        self.on_divergence = on_divergence
        self.input_kind = input_kind
        self.trunk = trunk
        self.tokenizer = tokenizer
        self.warm_start = warm_start
        self.fusion = fusion
        self.modality_dropout = modality_dropout

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> DeepESMMClassifier:
        """Train on the impressions ``X`` and their (click, purchase) labels ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), or Modalities
            The impressions (clicked or not); a :class:`~regmtl.deep.Modalities` of one row
            per impression (an image, a title and a table, some missing) is read by one
            encoder per modality.
        y : array-like of shape (n_samples, 2) or DataFrame
            Click, then purchase (0/1; NaN or 0 where not clicked); a DataFrame is read by
            its columns ``"click"`` and ``"purchase"``, else its two columns in order.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            If ``y`` is not two 0/1 columns, a clicked row lacks its purchase, a row has a
            purchase without a click (the message names the rows), or ``X`` is not one
            design of as many rows.
        """
        return super().fit(X, y)

    def _data(self, X, y, task, *, fitting: bool) -> TaskData:
        if isinstance(X, dict) or (isinstance(X, (list, tuple)) and len(X) and all(
                isinstance(x, pd.DataFrame) or np.ndim(x) == 2 for x in X)):
            raise ValueError(_ONE_DESIGN)
        if y is not None:
            Y, names = click_purchase(y)
            y = pd.DataFrame(Y, columns=names) if fitting else Y
        data = super()._data(X, y, None, fitting=fitting)
        if data.form != "shared" or data.n_tasks != 2:
            raise ValueError(_ONE_DESIGN)
        return data

    def _check_widths(self) -> None:
        for name in ("hidden", "tower_hidden"):
            for k, w in enumerate(getattr(self, name)):
                check_option(f"{name}[{k}]", w, "int", low=1,
                             fix=f"{name} lists the widths of the hidden layers, e.g. (64, 32).")

    def _encode(self, data: TaskData) -> np.ndarray:
        return np.asarray(data.raw_y, dtype=np.float64)

    def _specs(self, scales: dict | None = None) -> list[TaskSpec]:
        return [TaskSpec("t0", kind="binary"), TaskSpec("t1", kind="binary")]

    def _net(self, n_features: int | None, specs: list[TaskSpec]) -> MultiTaskNet:
        encoder = self._encoder()
        return ESMM(None if encoder is not None else n_features, specs,
                    hidden=layer_widths(self.hidden), tower_hidden=layer_widths(self.tower_hidden),
                    activation=self.activation, dropout=self.dropout,
                    batch_norm=self.batch_norm, encoder=encoder)

    def _head_kinds(self, attrs: dict) -> list[tuple[str, int]]:
        return [("binary", 1), ("binary", 1)]

    # ------------------------------------------------------------------ predictions
    def _logits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The click and conversion logits :math:`a, b` of every row (float64)."""
        x = self.net_inputs(X)
        net = self.net_
        device = next(net.parameters()).device
        net.eval()
        with torch.no_grad():
            parts = [net.logits(to_device(xb, device)) for xb in chunks(x, 8192)]
        out = []
        for k, name in enumerate(("t0", "t1")):
            v = torch.cat([p[k] for p in parts])
            if not bool(torch.isfinite(v).all()):
                check_finite_predictions(name, v, net)
            out.append(v[:, 0].double().cpu().numpy())
        return out[0], out[1]

    def predict_proba(self, X: Any) -> np.ndarray:
        r"""pCTR, pCVR and pCTCVR of every impression.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The impressions, in the form of the fit.

        Returns
        -------
        ndarray of shape (n_samples, 3)
            Columns ``ESMM_OUTPUTS``: :math:`P(\text{click} \mid x)`,
            :math:`P(\text{purchase} \mid \text{click}, x)` and their product
            :math:`P(\text{click} \wedge \text{purchase} \mid x)`, in float64.
        """
        a, b = self._logits(X)
        ctr, cvr = 1.0 / (1.0 + np.exp(-a)), 1.0 / (1.0 + np.exp(-b))
        return np.column_stack([ctr, cvr, ctr * cvr])

    def predict(self, X: Any) -> np.ndarray:
        """The predicted (click, purchase) labels: pCTR > 0.5 and pCTCVR > 0.5.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The impressions.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            0/1 (int64): the click, and the purchase in the entire space (a purchase implies
            a click, so a row predicted to buy is predicted to click).
        """
        p = self.predict_proba(X)
        return np.column_stack([p[:, 0] > 0.5, p[:, 2] > 0.5]).astype(np.int64)

    def auc_scores(self, X: Any, y: Any) -> dict[str, float]:
        """The AUC of pCTR against the click and of pCTCVR against click AND purchase.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The impressions.
        y : array-like of shape (n_samples, 2) or DataFrame
            Their (click, purchase), as in :meth:`fit`.

        Returns
        -------
        dict
            ``{"ctr": AUC, "ctcvr": AUC}``.

        Raises
        ------
        ValueError
            If ``y`` is refused as in :meth:`fit`, its rows differ from ``X``'s, or a column
            holds one class only (no AUC).
        """
        Y, _ = click_purchase(y)
        p = self.predict_proba(X)
        if len(Y) != len(p):
            raise ValueError(f"y has {len(Y)} rows but X has {len(p)}; give one (click, "
                             "purchase) pair per impression.")
        out = {}
        for name, col, prob in (("ctr", Y[:, 0], p[:, 0]), ("ctcvr", Y[:, 1], p[:, 2])):
            if len(np.unique(col)) < 2:
                what = "click" if name == "ctr" else "click-and-purchase"
                raise ValueError(f"y: every {what} label is {col[0]:g}, so the {name} AUC is "
                                 "undefined; score on rows with both outcomes.")
            out[name] = float(roc_auc_score(col, prob))
        return out

    def score(self, X: Any, y: Any) -> float:
        """The mean of the CTR and CTCVR AUCs (:meth:`auc_scores`), the paper's two metrics.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The impressions.
        y : array-like of shape (n_samples, 2) or DataFrame
            Their (click, purchase), as in :meth:`fit`.

        Returns
        -------
        float
            ``(AUC_ctr + AUC_ctcvr) / 2``, in [0, 1].
        """
        return float(np.mean(list(self.auc_scores(X, y).values())))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False  # always the (click, purchase) pair
        tags.classifier_tags.multi_class = False
        return tags
