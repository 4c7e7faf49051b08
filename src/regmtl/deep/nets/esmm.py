r"""ESMM: the entire space multi-task model for click -> conversion chains (Ma et al., SIGIR 2018).

A conversion (purchase) is observed only after a click, so a conversion-rate (CVR) model fitted
on the clicked impressions learns :math:`P(\text{buy} \mid \text{click}, x)` from a sample that
is not the space it is used on (every impression: sample selection bias) and that is small
(data sparsity). ESMM never fits the CVR on clicks. With a click tower of logit :math:`a(x)`
and a conversion tower of logit :math:`b(x)` over a shared input (in the paper, the shared
embedding of the ids; here an optional MLP bottom too),

.. math::

    \underbrace{P(\text{click} \wedge \text{buy} \mid x)}_{\text{pCTCVR}}
    = \underbrace{\sigma(a)}_{\text{pCTR}} \cdot \underbrace{\sigma(b)}_{\text{pCVR}},

and the two losses are taken on *all* impressions: the log-loss of pCTR against the click
label and that of pCTCVR against click AND purchase (0 on every impression not clicked). pCVR
is fitted only through the product, over the whole exposure space.

The CTCVR output of :class:`ESMM` is the exact logit of pCTCVR (:func:`ctcvr_logit`), computed
in log space, so a ``"binary"`` :class:`~regmtl.deep.TaskSpec` with its default ``"bce"`` loss
is the CTCVR log-loss, stable for any logits; predictions, metrics and the
:class:`~regmtl.deep.Trainer` need nothing new.

References
----------
Ma, Zhao, Huang, Wang, Hu, Zhu & Gai (2018). Entire space multi-task model: an effective
approach for estimating post-click conversion rate. SIGIR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..._options import check_option
from .._torch import torch
from ..tasks import TaskSpec, as_task_specs
from .base import MultiTaskNet, first_linear, mlp, out_width

nn = torch.nn
F = torch.nn.functional

__all__ = ["ESMM", "ctcvr_logit", "esmm_targets"]


def ctcvr_logit(ctr_logit: torch.Tensor, cvr_logit: torch.Tensor) -> torch.Tensor:
    r"""The logit of :math:`p = \sigma(a)\,\sigma(b)`, computed in log space.

    With :math:`\log p = \log\sigma(a) + \log\sigma(b)` and, from
    :math:`1 - \sigma(a)\sigma(b) = \sigma(-a) + \sigma(a)\,\sigma(-b)`,

    .. math::

        \log(1 - p) = \operatorname{logaddexp}\bigl(\log\sigma(-a),\;
            \log\sigma(a) + \log\sigma(-b)\bigr),
        \qquad z = \log p - \log(1 - p).

    So :math:`\sigma(z) = p` and the logistic loss of :math:`z`,
    :math:`-y \log p - (1 - y)\log(1 - p)`, is the log-loss of the product, finite for any
    finite logits: no product of probabilities is formed, and unlike
    :math:`\log(1 - p) = \operatorname{log1mexp}(\log p)` nothing fails when :math:`\log p`
    rounds to 0 (both logits large). Half-precision inputs are computed in float32.

    Parameters
    ----------
    ctr_logit : Tensor
        :math:`a`, the click logit.
    cvr_logit : Tensor
        :math:`b`, the conversion logit (broadcast with ``ctr_logit``).

    Returns
    -------
    Tensor
        :math:`z`, of the broadcast shape, in float32 or wider.

    See Also
    --------
    regmtl.deep.ESMM : The net whose CTCVR output this is.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.esmm import ctcvr_logit
    >>> a = torch.tensor([0.0, 2.0, 80.0, -80.0], dtype=torch.float64)
    >>> b = torch.tensor([0.0, -1.0, 80.0, 80.0], dtype=torch.float64)
    >>> z = ctcvr_logit(a, b)
    >>> torch.allclose(torch.sigmoid(z), torch.sigmoid(a) * torch.sigmoid(b))
    True
    >>> round(float(z[0]), 6)  # p = 1/4: logit log(1/3)
    -1.098612
    >>> y = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    >>> bool(torch.isfinite(torch.nn.functional.binary_cross_entropy_with_logits(z, y)))
    True
    """
    dtype = torch.promote_types(torch.promote_types(ctr_logit.dtype, cvr_logit.dtype),
                                torch.float32)
    a, b = ctr_logit.to(dtype), cvr_logit.to(dtype)
    log_ctr, log_not_ctr = F.logsigmoid(a), F.logsigmoid(-a)
    log_cvr, log_not_cvr = F.logsigmoid(b), F.logsigmoid(-b)
    log_p = log_ctr + log_cvr
    log_not_p = torch.logaddexp(log_not_ctr, log_ctr + log_not_cvr)
    return log_p - log_not_p


def _binary_specs(tasks: Any) -> list[TaskSpec]:
    if isinstance(tasks, (str, TaskSpec, dict)):
        raise ValueError("tasks: ESMM needs a pair (CTR task, CTCVR task) of names or binary "
                         f"TaskSpecs, got {tasks!r}.")
    tasks = [TaskSpec(t, kind="binary") if isinstance(t, str) else t for t in tasks]
    specs = as_task_specs(tasks)
    if len(specs) != 2:
        raise ValueError(f"tasks: ESMM has exactly two tasks (CTR, CTCVR), got {len(specs)}.")
    for s in specs:
        if s.kind != "binary":
            raise ValueError(f"tasks: ESMM's tasks are binary (their outputs are logits), "
                             f"task {s.name!r} is {s.kind}.")
    # both are defined on every impression: a missing label is refused, never skipped
    return [dataclasses.replace(s, missing_labels="refuse") for s in specs]


class ESMM(MultiTaskNet):
    r"""Entire space multi-task model (Ma et al., SIGIR 2018): pCTCVR = pCTR x pCVR.

    A bottom :math:`g` (an MLP of widths ``hidden``; ``hidden=()`` is the paper's model, whose
    towers share only the input's embedding) feeds two towers, each an MLP of widths
    ``tower_hidden`` ending in one logit: the click tower
    :math:`a = h_{\mathrm{ctr}}(g(x))` and the conversion tower
    :math:`b = h_{\mathrm{cvr}}(g(x))`. The net's two tasks, both binary and both defined on
    every impression, are

    .. math::

        \text{CTR: } \; \sigma(a) = P(\text{click} \mid x), \qquad
        \text{CTCVR: } \; \sigma(a)\,\sigma(b) = P(\text{click} \wedge \text{buy} \mid x),

    and :math:`\sigma(b) = P(\text{buy} \mid \text{click}, x)` (pCVR) is trained only through
    the product, on all impressions (an impression not clicked is a CTCVR negative, so it
    reaches the conversion tower too). With the :class:`~regmtl.deep.Trainer`'s equal weights
    and ``normalize_losses=False`` the objective is the paper's (by default each term is
    divided by the entropy of its base rate)

    .. math::

        L = \sum_i \ell\bigl(c_i, \sigma(a_i)\bigr)
            + \sum_i \ell\bigl(c_i\, v_i, \sigma(a_i)\,\sigma(b_i)\bigr),

    :math:`c_i` the click, :math:`v_i` the conversion, :math:`\ell` the log-loss. The CTCVR
    output is the logit :math:`z` of the product (:func:`~regmtl.deep.esmm.ctcvr_logit`,
    computed in log space), so the default ``"bce"`` loss of a binary
    :class:`~regmtl.deep.TaskSpec` is exactly the CTCVR log-loss, and ``predict`` /
    validation metrics give pCTR and pCTCVR. pCVR comes from :meth:`predict_cvr` (arrays) or
    :meth:`probabilities` (tensors). :func:`~regmtl.deep.esmm_targets` builds the two labels
    from a click and a purchase column.

    Both tasks are defined on every impression, so their specs refuse missing labels
    (``missing_labels="refuse"``): a CTCVR column with NaN on the impressions not clicked (the
    raw purchase column) would train CTCVR on the clicked rows alone, the sample-selection
    bias ESMM exists to remove. Build the labels with :func:`~regmtl.deep.esmm_targets`.

    Parameter groups: every task's output depends on the bottom and on the click tower, so
    both are the shared parameters; the conversion tower is the CTCVR task's own, and the CTR
    task has none of its own. Input layers: the bottom's first linear layer (each tower's when
    ``hidden`` is empty).

    Parameters
    ----------
    n_features : int
        Width of the input.
    tasks : pair of str or binary TaskSpec, default=("ctr", "ctcvr")
        The CTR task, then the CTCVR task (names become binary tasks).
    hidden : sequence of int, default=(64,)
        Widths of the shared bottom; empty: the towers read ``x``.
    tower_hidden : sequence of int, default=(32,)
        Hidden widths of each tower before its output logit.
    activation : str, default="relu"
        Nonlinearity of the bottom and towers (see :func:`~regmtl.deep.mlp`).
    dropout : float, default=0.0
        Dropout after every hidden layer of the bottom and towers.
    batch_norm : bool, default=False
        Batch normalization after every linear hidden layer of the bottom and towers.

    Attributes
    ----------
    bottom : torch.nn.Sequential
        The shared bottom.
    ctr_tower, cvr_tower : torch.nn.Sequential
        The click and conversion towers (one logit each).
    ctr_task, ctcvr_task : str
        The names of the two tasks.

    Raises
    ------
    ValueError
        If there are not exactly two tasks or one is not binary.

    See Also
    --------
    regmtl.deep.esmm_targets : The CTR and CTCVR labels from a click -> purchase log.
    regmtl.deep.HardSharing : The same layers, trained on the clicked rows for the CVR.

    Notes
    -----
    **Differences from the paper.** The paper's towers share only the embedding of the
    sparse input (``hidden=()`` here, with an ``encoder=`` for ids); the MLP bottom of the
    default ``hidden=(64,)`` is an extension, as in torch-rechub's ESMM. The paper sums the
    two log-losses; the :class:`~regmtl.deep.Trainer` by default divides each by the entropy
    of its base rate (``normalize_losses=False`` gives the paper's objective exactly). The
    CTCVR logit is computed in log space, not as the product of two sigmoids, so the loss
    stays finite where the paper's product underflows.

    References
    ----------
    Ma, Zhao, Huang, Wang, Hu, Zhu & Gai (2018). Entire space multi-task model: an effective
    approach for estimating post-click conversion rate. SIGIR.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from regmtl.deep import ESMM, Trainer, esmm_targets, set_seed
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 5))
    >>> click = (rng.random(200) < 0.4).astype(float)
    >>> purchase = np.where(click == 1, (X[:, 0] > 0).astype(float), np.nan)  # after a click
    >>> targets = esmm_targets(click, purchase)
    >>> sorted(targets), float(np.nansum(targets["ctcvr"])) == float(np.nansum(purchase))
    (['ctcvr', 'ctr'], True)
    >>> set_seed(0)
    >>> net = ESMM(5, hidden=(16,), tower_hidden=(8,))
    >>> trainer = Trainer(net, max_epochs=2, batch_size=50).fit((X, targets))
    >>> {k: v.shape for k, v in trainer.predict(X[:3]).items()}
    {'ctr': (3,), 'ctcvr': (3,)}
    >>> net.predict_cvr(X[:3]).shape  # P(purchase | click, x) on any impression
    (3,)
    >>> p = net.probabilities(torch.zeros(2, 5))
    >>> torch.equal(p["ctcvr"], p["ctr"] * p["cvr"])
    True
    """

    def __init__(self, n_features: int | None = None, tasks: Any = ("ctr", "ctcvr"),
                 hidden: Sequence[int] = (64,), *, tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 encoder: nn.Module | None = None):
        super().__init__(n_features, _binary_specs(tasks), encoder)
        if self.in_width is None:
            raise ValueError("ESMM needs n_features (the width of x) or an encoder.")
        self.ctr_task, self.ctcvr_task = self.task_names
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.bottom = mlp(self.in_width, hidden, **kw)
        width = out_width(hidden, self.in_width)
        self.ctr_tower = self._head(width, self.tasks[0], tower_hidden, **kw)
        self.cvr_tower = self._head(width, self.tasks[1], tower_hidden, **kw)
        self._config = {"hidden": list(hidden), "tower_hidden": list(tower_hidden),
                        "activation": activation, "dropout": dropout, "batch_norm": batch_norm}

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The click and conversion logits :math:`a` and :math:`b` on a batch.

        Parameters
        ----------
        x : Tensor of shape (B, n_features)
            The batch.

        Returns
        -------
        tuple of Tensor
            ``(a, b)``, each of shape (B, 1).
        """
        h = self.bottom(self._encode(x))
        return self.ctr_tower(h), self.cvr_tower(h)

    def forward(self, x: Any, tasks: Iterable[str] | None = None,
                rows: torch.Tensor | None = None) -> Any:
        r"""The outputs of the tasks on a batch: the CTR logit and the CTCVR logit.

        Parameters
        ----------
        x : Tensor of shape (B, n_features)
            The batch.
        tasks : iterable of str, optional
            The tasks to compute (default: both); the CTR task alone skips the conversion
            tower.

        Returns
        -------
        dict of str to Tensor
            Each task's logit, of shape (B, 1): :math:`a` for CTR, the logit of
            :math:`\sigma(a)\sigma(b)` for CTCVR.
        """
        selected = self._selected(tasks)
        h = self.bottom(self._encode(x))
        a = self.ctr_tower(h)
        out = {self.ctr_task: a}
        if self.ctcvr_task in selected:
            out[self.ctcvr_task] = ctcvr_logit(a, self.cvr_tower(h))
        if rows is not None:  # each row's own task
            if self.ctcvr_task not in out:
                out[self.ctcvr_task] = ctcvr_logit(a, self.cvr_tower(h))
            return self._rows_of(out, rows)
        return {t: out[t] for t in selected}

    def probabilities(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r"""pCTR, pCVR and pCTCVR on a batch (in the net's current mode, with gradients).

        Parameters
        ----------
        x : Tensor of shape (B, n_features)
            The batch.

        Returns
        -------
        dict of str to Tensor
            ``"ctr"``: :math:`\sigma(a)`, ``"cvr"``: :math:`\sigma(b)`, ``"ctcvr"``: their
            product, each of shape (B,) (keys name the quantities, whatever the task names).
        """
        a, b = self.logits(x)
        ctr, cvr = torch.sigmoid(a[:, 0]), torch.sigmoid(b[:, 0])
        return {"ctr": ctr, "cvr": cvr, "ctcvr": ctr * cvr}

    @torch.no_grad()
    def predict_cvr(self, X: Any, batch_size: int = 4096) -> np.ndarray:
        r"""pCVR, :math:`P(\text{buy} \mid \text{click}, x)`, on every row of ``X``.

        The net is run in evaluation mode (then put back in its mode) on the device of its
        parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or what the encoder reads
            The inputs (impressions, clicked or not): a float array, or the images, ids or
            dict of named inputs the net's encoder takes.
        batch_size : int, default=4096
            Rows per forward pass (an int >= 1).

        Returns
        -------
        ndarray of shape (n_samples,)
            The conversion probabilities (float32).

        Raises
        ------
        ValueError
            If ``batch_size`` is not an int >= 1.
        """
        from ..inputs import as_inputs, chunks, to_device

        batch_size = check_option("batch_size", batch_size, "int", low=1)
        x = as_inputs(X)
        param = next(self.parameters())
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                parts = []
                for xb in chunks(x, batch_size):
                    xb = to_device(xb, param.device)
                    if self.encoder is None:  # a plain float batch: the weights' dtype
                        xb = xb.to(param.dtype) if torch.is_tensor(xb) else xb
                    parts.append(torch.sigmoid(self.logits(xb)[1][:, 0]))
        finally:
            self.train(was)
        return torch.cat(parts).float().cpu().numpy()

    def check_targets(self, targets: Any) -> None:
        r"""Refuse labels that ESMM's model cannot produce: CTCVR = 1 where CTR = 0.

        Under :math:`P(\text{click} \wedge \text{buy}) = \sigma(a)\,\sigma(b)` a conversion
        implies a click, so a row with CTCVR label 1 and CTR label 0 has probability 0 at
        any parameters; trained on, it pulls the click tower up and the conversion tower
        towards 1 on impressions nobody clicked. Such a log is broken (a purchase recorded
        without its click, or the CTCVR column holding the raw purchase): it is refused
        rather than trained on. Rows where either label is missing (NaN) are not compared.
        The :class:`~regmtl.deep.Trainer` calls it on the targets of every data set it is
        given (training, validation, :meth:`~regmtl.deep.Trainer.evaluate`) and on every
        batch of a loader as it passes, naming the batch
        (``regmtl.deep.data.CheckedLoader``).

        Parameters
        ----------
        targets : mapping of str to array-like or Tensor
            The labels by task name (as given to :class:`~regmtl.deep.Trainer` or
            :class:`~regmtl.deep.MultiTaskDataset`); tasks other than the net's two and a
            missing task are ignored.

        Raises
        ------
        ValueError
            Naming the first offending rows and their count, and the fix: build the labels
            with :func:`~regmtl.deep.esmm_targets`.

        Examples
        --------
        >>> import numpy as np
        >>> from regmtl.deep import ESMM
        >>> net = ESMM(3, hidden=(4,), tower_hidden=())
        >>> net.check_targets({"ctr": [1.0, 0.0], "ctcvr": [1.0, 0.0]})  # consistent
        >>> try:
        ...     net.check_targets({"ctr": [1.0, 0.0], "ctcvr": [0.0, 1.0]})
        ... except ValueError as exc:
        ...     print(str(exc).split("; ")[1])
        1 row(s) have it: [1]. Build the labels with esmm_targets(click, purchase), or fix the log.
        """
        if not hasattr(targets, "get"):
            return
        ctr, ctcvr = targets.get(self.ctr_task), targets.get(self.ctcvr_task)
        if ctr is None or ctcvr is None:
            return
        c, v = (np.asarray(y.detach().cpu().numpy() if torch.is_tensor(y) else y,
                           dtype=np.float64).reshape(-1) for y in (ctr, ctcvr))
        if c.shape != v.shape:
            return  # the data layer names the mismatch
        bad = np.flatnonzero((c == 0) & (v == 1))
        if len(bad):
            raise ValueError(
                f"targets: ESMM's {self.ctcvr_task!r} label is a click AND a purchase, so it "
                f"cannot be 1 where {self.ctr_task!r} is 0; {len(bad)} row(s) have it: "
                f"{bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}. Build the labels with "
                "esmm_targets(click, purchase), or fix the log.")

    def input_layers(self) -> list[nn.Linear]:
        first = first_linear(self.bottom)
        if first is not None:
            return [first]
        return [first_linear(self.ctr_tower), first_linear(self.cvr_tower)]

    def _shared_modules(self) -> list[nn.Module]:
        return [self.bottom, self.ctr_tower]

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.cvr_tower] if task == self.ctcvr_task else []


def _labels(y: Any, what: str) -> np.ndarray:
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric 0/1 labels: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one label per impression), got shape "
                         f"{arr.shape}.")
    return arr


def esmm_targets(click: Any, purchase: Any, *, ctr_task: str = "ctr",
                 ctcvr_task: str = "ctcvr") -> dict[str, np.ndarray]:
    r"""The CTR and CTCVR labels of :class:`~regmtl.deep.ESMM` from a click -> purchase log.

    Every impression gets both labels: the click :math:`c_i` and
    :math:`c_i \wedge v_i`, the purchase :math:`v_i` counting as 0 where there was no click
    (where it is usually missing, NaN).

    Parameters
    ----------
    click : array-like of shape (n,)
        0/1 on every impression (no NaN).
    purchase : array-like of shape (n,)
        0/1 where clicked; NaN or 0 where not clicked.
    ctr_task, ctcvr_task : str, default="ctr", "ctcvr"
        The keys of the two labels (the names of the net's tasks).

    Returns
    -------
    dict of str to ndarray
        ``{ctr_task: click, ctcvr_task: click * purchase}``, float64 of shape (n,), no NaN.

    Raises
    ------
    ValueError
        If there is no impression, the shapes differ, a click is not 0 or 1 (NaN included), a
        purchase is not 0, 1 or NaN, a clicked impression has no purchase label, or an
        impression not clicked has a purchase (the chain click -> purchase is broken: fix the
        log).

    See Also
    --------
    regmtl.deep.ESMM : The net trained on them.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import esmm_targets
    >>> click = np.array([1.0, 1.0, 0.0, 0.0])
    >>> purchase = np.array([1.0, 0.0, np.nan, 0.0])
    >>> esmm_targets(click, purchase)
    {'ctr': array([1., 1., 0., 0.]), 'ctcvr': array([1., 0., 0., 0.])}

    From :func:`regmtl.datasets.make_recommender_tasks`:

    >>> from regmtl.datasets import make_recommender_tasks
    >>> data = make_recommender_tasks(500, 20, 10, 4, random_state=0)
    >>> targets = esmm_targets(data.Y[:, 0], data.Y[:, 1])
    >>> bool(np.isnan(targets["ctcvr"]).any())
    False
    """
    c = _labels(click, "click")
    v = _labels(purchase, "purchase")
    if c.shape != v.shape:
        raise ValueError(f"click and purchase have {c.shape[0]} and {v.shape[0]} rows; give "
                         "one of each per impression.")
    if c.shape[0] == 0:
        raise ValueError("click and purchase hold no impression (0 rows); give one click and "
                         "one purchase label per impression.")
    bad = ~np.isin(c, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"click must be 0 or 1 on every impression; row {i} has {c[i]!r} "
                         f"({int(bad.sum())} such rows). Drop impressions without a click "
                         "label.")
    bad = ~(np.isin(v, (0.0, 1.0)) | np.isnan(v))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"purchase must be 0, 1 or NaN; row {i} has {v[i]!r} "
                         f"({int(bad.sum())} such rows).")
    bad = (c == 1) & np.isnan(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {i} is clicked but its purchase is missing ({int(bad.sum())} "
                         "such rows): the CTCVR label is unknown there; fill or drop them.")
    bad = (c == 0) & (v == 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {i} has a purchase without a click ({int(bad.sum())} such "
                         "rows): ESMM's chain is click -> purchase; fix the log.")
    if ctr_task == ctcvr_task:
        raise ValueError(f"ctr_task and ctcvr_task must differ, both are {ctr_task!r}.")
    return {ctr_task: c.copy(), ctcvr_task: c * np.where(c == 1, v, 0.0)}
