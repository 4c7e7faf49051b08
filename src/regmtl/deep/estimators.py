r"""scikit-learn estimators over the deep multi-task nets.

They take the three input forms of the linear estimators (lists per task, long form with
``task``, shared X with an (n, T) Y; a 1-D y is one task). Rows of all tasks are stacked into
one design and each row's target is observed for its own task only (missing for the others),
so the tasks train jointly through the shared layers; a shared design keeps one row per sample
with NaN for missing labels. The trainer standardizes regression targets per task and scales
every task's loss by its constant predictor's (``regmtl.deep.scaling``); the net predicts in
the target's units. :class:`DeepMultiTaskModel` mixes regression and classification tasks.

**Inputs.** Each numeric column is standardized in float64 with the training rows' mean and
deviation (``x_mean_``, ``x_scale_``) before the float32 cast, so columns far from zero (prices,
timestamps) or of any scale reach the first layer at unit scale. A DataFrame's categorical or
string columns (pandas ``category``, ``object``, ``string``), and those named in
``categorical_features`` (integer ids), are embedded (:class:`~regmtl.deep.FeatureColumns`;
vocabularies in ``categories_``, learned over every task's rows; an unseen value reads the
out-of-vocabulary row; ``regmtl.deep.frames``). Images (rank >= 3), SciPy sparse bags of
words, token ids (``input_kind="tokens"``) and raw texts (the built-in tokenizer) go to a
trunk instead, in every task form (``regmtl.deep.wrapper_inputs``). A
:class:`~regmtl.deep.Modalities` (several named inputs of each row, some missing) goes with a
``task`` array or a 2-D y: one default encoder per modality, fused by a
:class:`~regmtl.deep.FusedTrunk` (``fusion``, ``modality_dropout``;
``regmtl.deep.modal_inputs``).

**Many tasks.** With several tasks and one design per task (lists, dicts, long form), each row
runs through its own task's head only (the per-row layout of :class:`~regmtl.deep.Trainer`),
so an epoch costs the same for 10 tasks or 1,000.

**Defaults.** Adam at ``lr=1e-3`` on batches of 256, heads started from one shared draw
(:meth:`~regmtl.deep.heads.TaskHeads.start_shared`). Measured on the shipped School data
(139 tasks, the 10 fixed splits, seed ``s`` on split ``s``): explained variance 0.360 to 0.398,
median 0.375, with no run stalling (``MultiTaskRegressorCV("mean")`` 0.383, one-alpha ridge
0.341). Before, unstandardized percentage columns and ``lr=1e-2`` killed most first-layer units
in the first epoch (28% to 94% dead) and only the task means were learned (0.10).
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, d2_pinball_score, d2_tweedie_score, r2_score
from sklearn.utils import ClassifierTags, check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .._options import check_option
from ..inputs import as_task_data, column_target
from ..serialization import FORMS, array_from_json, array_to_json
from ..taskdata import TaskData, as_labels
from ._torch import torch
from .conversion import (
    SKLEARN_MANY_CLASSES,
    class_codes,
    class_count_message,
    class_index,
    find_stack_level,
    many_classes,
    numeric_text,
    plain_label,
    probabilities,
    segments_in_form,
    take_rows,
)
from .divergence import ON_DIVERGENCE
from .features import Categorical, FeatureColumns, Numeric
from .frames import ColumnCodes, TableInputs
from .fusion import FUSIONS
from .inputs import as_inputs, chunks, to_device
from .modal_inputs import ModalInputs, is_modal
from .modality_use import importance_from_json, importance_to_json
from .nets import ARCHITECTURES, MultiTaskNet
from .penalties import GroupL21, L1Penalty, L2Penalty
from .saving import save_estimator, saved_as_folder, scales_from_attributes
from .step import owns_precision
from .tasks import KINDS, TaskSpec
from .tokenizer import Tokenizer
from .trainer import EarlyStopping, Trainer, set_seed
from .validation import check_finite_predictions
from .weighting import WEIGHTINGS, Weighting
from .wrapper_docs import LOSS_PARAMETER, MODEL_LOSS_PARAMETER, TARGET_ATTRIBUTES, wrapper_doc
from .wrapper_inputs import (
    INPUT_KINDS,
    TRUNK_KINDS,
    TrunkInputs,
    kind_of,
    row_numbers,
    take_inputs,
)
from .wrapper_losses import TaskLoss, target_scale, task_losses

__all__ = ["DeepMultiTaskRegressor", "DeepMultiTaskClassifier", "DeepMultiTaskModel"]

_PENALTIES = {"l1": L1Penalty, "l2": L2Penalty, "l21": GroupL21}


class _DeepMultiTask(TableInputs, TrunkInputs, ModalInputs, BaseEstimator):
    """Input conversion, the net, the trainer, saving."""

    _kind = "regression"
    _saved: tuple[str, ...] = ()  # the fitted attributes of the subclass that ``save`` writes

    _parameter_constraints: dict = {
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "hidden": ["array-like"],
        "head_hidden": ["array-like"],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "activation": [str],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "penalty": [StrOptions(set(_PENALTIES)), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weighting": [StrOptions(set(WEIGHTINGS) - {"fixed"}), Weighting],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "categorical_features": [StrOptions({"from_dtype"}), list, tuple],
        "on_divergence": [StrOptions(set(ON_DIVERGENCE))],
        "input_kind": [StrOptions(set(INPUT_KINDS))],
        "trunk": [dict, None],
        "tokenizer": [dict, None],
        "warm_start": ["boolean"],
        "fusion": [StrOptions(set(FUSIONS))],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
    }

    __metadata_request__fit = {"task": True}
    __metadata_request__score = {"task": True}
    __metadata_request__predict = {"task": True}

    def __init__(self, architecture: str = "hard", *, hidden: Any = (64,),
                 head_hidden: Any = (), n_experts: int = 4, activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False, penalty: str | None = None,
                 alpha: float = 0.0, weighting: Any = "equal", optimizer: str = "adam",
                 lr: float = 1e-3, batch_size: int = 256, max_epochs: int = 200,
                 early_stopping: bool = True, validation_fraction: float = 0.1,
                 patience: int = 10, random_state: Any = 0, device: str = "auto",
                 verbose: int = 0, categorical_features: Any = "from_dtype",
                 on_divergence: str = "raise", input_kind: str = "auto", trunk: Any = None,
                 tokenizer: Any = None,
                 warm_start: bool = False, fusion: str = "concat",
                 modality_dropout: float = 0.0):
        self.architecture = architecture
        self.hidden = hidden
        self.head_hidden = head_hidden
        self.n_experts = n_experts
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

    # ------------------------------------------------------------------ input
    def _check_x(self, X: Any, reset: bool) -> Any:
        return validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=1)

    def _data(self, X, y, task, *, fitting: bool) -> TaskData:
        modal_fit = self._modal_fit(X, fitting)
        if is_modal(X) or (not fitting and modal_fit):
            if not is_modal(X):
                raise ValueError(
                    f"the estimator was fitted on a Modalities {self.modalities_['names']}, "
                    f"but X is a {type(X).__name__}; give X as a regmtl.deep.Modalities of "
                    "the fit's modalities.")
            return self._modal_data(X, y, task, fitting)
        if fitting:
            self._modal_options(False)
            self.__dict__.pop("modalities_", None)
        kind = kind_of(X, self.input_kind)
        fitted = kind if fitting else getattr(self, "input_kind_", "table")
        if kind != fitted:
            raise ValueError(f"X is read as {kind!r} input, but the estimator was fitted on "
                             f"{fitted!r} input; give X in the kind of the fit.")
        if fitting:
            self._warn_unused_options(kind)
        if kind in TRUNK_KINDS:
            return self._trunk_data(X, y, task, kind, fitting)
        if fitting:
            for attr in ("input_kind_", "input_size_", "tokenizer_"):
                self.__dict__.pop(attr, None)
        X = self._frames(X, task, fitting)
        return as_task_data(
            X, y, task, tasks=None if fitting else self.tasks_, check_x=self._check_x,
            numeric_y=self._kind == "regression", require_y=y is not None or fitting,
            reset=fitting, single=False if fitting else self.input_form_ == "single",
        )

    def _categorical(self) -> np.ndarray:
        """Positions of the categorical columns among the features (empty without any)."""
        cats = getattr(self, "categories_", None)
        if not cats:
            return np.zeros(0, dtype=np.int64)
        names = list(self.feature_names_in_)
        return np.array([names.index(c) for c in cats], dtype=np.int64)

    def _design(self, data: TaskData) -> Any:
        """The net's input: numeric columns standardized with the training rows' mean and
        deviation (``x_mean_``, ``x_scale_``; constant columns only centred) in float64 before
        the float32 cast; with categorical columns, a dict of the numeric block
        (``"numeric"``) and each column's int64 codes (``"cat0"``, ``"cat1"``, ...)."""
        row_inputs = getattr(data, "row_inputs", None)
        if row_inputs is not None:
            return take_inputs(row_inputs, row_numbers(data.X))
        X = np.asarray(data.X, dtype=np.float64)
        mean = getattr(self, "x_mean_", None)
        if mean is not None:
            X = (X - mean) / self.x_scale_
        cat = self._categorical()
        if not len(cat):
            return np.ascontiguousarray(X, dtype=np.float32)
        out = {f"cat{k}": np.ascontiguousarray(X[:, j], dtype=np.int64)
               for k, j in enumerate(cat)}
        num = np.setdiff1d(np.arange(X.shape[1]), cat)
        if len(num):
            out["numeric"] = np.ascontiguousarray(X[:, num], dtype=np.float32)
        return out

    def _fit_input_scale(self, data: TaskData) -> None:
        if getattr(data, "row_inputs", None) is not None:  # a trunk reads them as they are
            return
        X = np.asarray(data.X, dtype=np.float64)
        self.x_mean_ = X.mean(axis=0)
        sd = np.sqrt(((X - self.x_mean_) ** 2).mean(axis=0))
        self.x_scale_ = np.where(sd > 1e-12 * np.maximum(np.abs(self.x_mean_), 1.0), sd, 1.0)
        cat = self._categorical()  # codes are not standardized
        self.x_mean_[cat], self.x_scale_[cat] = 0.0, 1.0

    def _targets(self, data: TaskData, y: np.ndarray) -> np.ndarray:
        """(rows, T) targets: each row observed for its own task (or Y with NaN, shared)."""
        T = self.n_tasks_
        if data.shared:
            n = data.X.shape[0]
            Y = np.full((n, T), np.nan)
            cols = y.reshape(n, data.n_tasks, order="F")
            obs = (np.ones_like(cols, dtype=bool) if data.observed is None
                   else data.observed.reshape(n, data.n_tasks, order="F"))
            for k, t in enumerate(data.task_index):
                Y[obs[:, k], t] = cols[obs[:, k], k]
            return Y
        Y = np.full((data.n_obs, T), np.nan)
        Y[np.arange(data.n_obs), data.task_index[data.task_of]] = y
        return Y

    # ------------------------------------------------------------------ fit
    def _encoder(self) -> FeatureColumns | None:
        """The categorical columns' embeddings beside the numeric block (already standardized)."""
        if getattr(self, "modalities_", None) is not None:
            return self._modal_encoder()
        kind = getattr(self, "input_kind_", "table")
        if kind in TRUNK_KINDS:
            return self._trunk_encoder(kind)
        cats = getattr(self, "categories_", None)
        if not cats:
            return None
        n_num = self.n_features_in_ - len(cats)
        cols: list = [Categorical(f"cat{k}", len(v)) for k, v in enumerate(cats.values())]
        if n_num:
            cols.append(Numeric("numeric", width=n_num))
        encoder = FeatureColumns(cols)
        if n_num:
            encoder.set_numeric_stats("numeric", np.zeros(n_num), np.ones(n_num))
        return encoder

    def _net(self, n_features: int | None, specs: list[TaskSpec]) -> MultiTaskNet:
        encoder = self._encoder()
        n_features = None if encoder is not None else n_features
        kw = dict(activation=self.activation, dropout=self.dropout, batch_norm=self.batch_norm,
                  encoder=encoder)
        return ARCHITECTURES[self.architecture].for_estimator(
            n_features, specs, hidden=layer_widths(self.hidden),
            head_hidden=layer_widths(self.head_hidden),
            n_experts=self.n_experts, **kw)

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_precision
    def fit(self, X: Any, y: Any = None, task: Any = None):
        """Train on lists per task, long form with ``task``, or shared X with 2-D y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            One design per task (a list or dict), or one design for all rows.
        y : array-like, or list or dict of them
            The targets of each task's rows (one array per design for a list or dict); 2-D
            (n, T) for a shared design (NaN = missing).
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form), or the name of a column of ``X``.

        Returns
        -------
        self
            The fitted estimator.
        """
        self._check_widths()
        if self.penalty is None and self.alpha > 0:  # a warning: sklearn's checks set alpha
            warnings.warn(f"alpha={self.alpha!r} has no effect: penalty=None trains without a "
                          f"penalty; name one of {sorted(_PENALTIES)}, or leave alpha=0.",
                          UserWarning, stacklevel=find_stack_level())
        # warm_start: the last fit's training state (its input scaling kept with it)
        state = getattr(getattr(self, "trainer_", None), "state_", None) \
            if self.warm_start else None
        kept = {k: self.__dict__[k] for k in ("n_features_in_", "feature_names_in_")
                if k in self.__dict__}
        data = self._data(X, y, task, fitting=True)
        if state is not None and kept.get("n_features_in_") != self.n_features_in_:
            given = self.n_features_in_
            self.__dict__.pop("feature_names_in_", None)
            self.__dict__.update(kept)  # (the fitted net stays usable as it was)
            raise ValueError(
                f"X has {given} features, but {type(self).__name__} was fitted with "
                f"{kept.get('n_features_in_')} features and warm_start=True continues "
                "training that net, whose input layer has that many. Pass X with the same "
                "features, or set warm_start=False to train a new net on these.")
        self.tasks_ = data.tasks
        self.n_tasks_ = data.n_tasks
        self.input_form_ = data.form
        self._losses = self._task_losses(data.n_tasks)
        if state is None:
            for attr in ("x_mean_", "x_scale_"):
                self.__dict__.pop(attr, None)
            self._fit_input_scale(data)
        Xd = self._design(data)
        if data.shared or data.n_tasks == 1:  # a column per task (NaN = missing)
            Y = self._targets(data, self._encode(data))
            rows = None
        else:  # each row labels its own task: only that task's head runs on it
            Y = self._encode(data)
            rows = np.asarray(data.task_index[data.task_of], dtype=np.int64)
        specs = self._specs()
        rs = self.random_state  # an int as it is; None or a RandomState drawn from
        rng = np.random.default_rng(rs if isinstance(rs, (int, np.integer))
                                    else check_random_state(rs).randint(2**31))
        seed = int(rng.integers(2**31))
        val = None
        n = len(Y)
        n_val = int(round(self.validation_fraction * n))
        if self.early_stopping and not 1 <= n_val < n:
            warnings.warn(
                f"early_stopping=True is off for this fit: validation_fraction="
                f"{self.validation_fraction:g} of {n} rows holds {n_val} of them, so there is "
                f"{'no validation row' if n_val < 1 else 'no training row'} left; give a "
                f"fraction that leaves rows on both sides ({0.5 / n:.3g} < "
                f"validation_fraction < {1 - 0.5 / n:.3g}), or pass early_stopping=False.",
                UserWarning, stacklevel=find_stack_level())
        if self.early_stopping and 1 <= n_val < n:
            perm = rng.permutation(n)
            vi, ti = perm[:n_val], perm[n_val:]
            val = self._pack(take_rows(Xd, vi), Y[vi], None if rows is None else rows[vi], specs)
            Xd, Y = take_rows(Xd, ti), Y[ti]
            rows = None if rows is None else rows[ti]
        scales = self._loss_scales(Y, rows)
        if scales:  # a Huber delta in the target's units: divided by the deviation
            specs = self._specs({k: sd for k, (_, sd) in scales.items()})
        set_seed(seed)  # the initial weights
        self.net_ = self._net(self.n_features_in_, specs)
        for k, (mean, sd) in scales.items():  # the maps the deltas were divided by
            self.net_.target_scales[specs[k].name].set(
                torch.tensor([mean], dtype=torch.float64), torch.tensor([sd], dtype=torch.float64))
        starts = self._count_starts(Y, rows, specs)
        for heads in (getattr(self.net_, "heads", None), getattr(self.net_, "towers", None)):
            if heads is not None:
                heads.start_shared()
                for name, log_mean in starts.items():
                    heads.set_output_bias(name, log_mean)
        penalty = None
        if self.penalty is not None and self.alpha > 0:
            penalty = _PENALTIES[self.penalty](self.alpha)
        trainer = Trainer(
            self.net_, weighting=self.weighting, penalty=penalty, optimizer=self.optimizer,
            lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
            early_stopping=EarlyStopping(patience=self.patience) if val is not None else None,
            device=self.device, distributed=False, seed=seed, progress=self.verbose > 0,
            on_divergence=self.on_divergence,
            save_state="memory" if self.warm_start else False,
        )
        trainer.fit(self._pack(Xd, Y, rows, specs), val, resume=state)
        self.history_ = trainer.history
        self.n_iter_ = len(self.history_)
        self.best_epoch_ = trainer.best_epoch_
        self.trainer_ = trainer
        self._fitted()
        self._keep_importance(val)
        return self

    def _task_losses(self, n_tasks: int) -> list[TaskLoss | None]:
        """Each task's loss (None for a classification task)."""
        return [None] * n_tasks

    def _loss_scales(self, Y: np.ndarray, rows: np.ndarray | None
                     ) -> dict[int, tuple[float, float]]:
        """The training labels' mean and deviation of each task whose loss has a parameter in
        the target's units (a Huber delta), by task position."""
        out = {}
        for k, tl in enumerate(self._losses):
            if tl is not None and tl.needs_scale:
                y = Y[:, k] if rows is None else Y[rows == k]
                out[k] = target_scale(y)
        return out

    @staticmethod
    def _count_starts(Y: np.ndarray, rows: np.ndarray | None, specs: list[TaskSpec]
                      ) -> dict[str, float]:
        """The log of each count task's mean training label (tasks with a positive mean): its
        head's output bias at the start, so training starts from the constant mean instead
        of a mean of 1 (measured with the defaults on 2,000 counts of mean about 60: the
        first epoch's normalized loss 1.3 instead of 25.7, the early stop after 47 epochs
        instead of 174, a held-out deviance of 1.05 instead of 1.36; 0.95 for the true
        means)."""
        out = {}
        for k, spec in enumerate(specs):
            if spec.kind == "count":
                y = Y[:, k] if rows is None else Y[rows == k]
                y = y[~np.isnan(y)]
                if len(y) and y.mean() > 0:
                    out[spec.name] = float(np.log(y.mean()))
        return out

    def _natural(self, r: np.ndarray, t: int) -> np.ndarray:
        """The value prediction of task ``t`` from its net outputs ``r`` (rows, 1): the value
        (regression) or the mean count (count tasks: ``exp`` of the log mean, taken at
        ``regmtl.deep.tasks.LOG_MEAN_MAX`` above it)."""
        spec = self.net_.tasks[t]
        if spec.kind == "count":
            return spec.transform(torch.from_numpy(np.ascontiguousarray(r))).numpy()
        return r[:, 0]

    def _value_score(self, t: int, y: np.ndarray, pred: np.ndarray) -> float:
        """The score of a value task: D² of the Poisson deviance (count), D² of the pinball
        loss (quantile), else R²."""
        spec = self.net_.tasks[t]
        y = np.asarray(y, dtype=np.float64)
        if spec.kind == "count":
            return float(d2_tweedie_score(y, np.maximum(pred, np.finfo(np.float64).tiny),
                                          power=1))
        if spec.quantile is not None:
            return float(d2_pinball_score(y, pred, alpha=spec.quantile))
        return float(r2_score(y, pred))

    def _check_counts(self, y: np.ndarray, label: Any) -> None:
        """A count task's labels are >= 0 (NaN = missing)."""
        neg = y[y < 0]
        if len(neg):
            raise ValueError(f"y: task {plain_label(label)!r} is a count task (loss='poisson'), "
                             "whose labels must be >= 0 (NaN = missing); found "
                             f"{np.unique(neg)[:5].tolist()}.")

    def _check_widths(self) -> None:
        """``hidden`` and ``head_hidden``: layer widths, each an int >= 1 (a float such as
        2.5, or a bool, is refused rather than truncated; sklearn's constraints only check
        that they are array-like)."""
        for name in ("hidden", "head_hidden"):
            for k, w in enumerate(self.hidden if name == "hidden" else self.head_hidden):
                check_option(f"{name}[{k}]", w, "int", low=1,
                             fix=f"{name} lists the widths of the hidden layers, e.g. (64, 32).")

    @staticmethod
    def _pack(X: np.ndarray, Y: np.ndarray, rows: np.ndarray | None, specs) -> tuple:
        """``(X, {task: y})`` (a column per task) or ``(X, (task, y))`` (per row)."""
        if rows is None:
            return (X, {s.name: Y[:, j] for j, s in enumerate(specs)})
        return (X, (rows, Y))

    def _fitted(self) -> None:
        """Attributes read from the trained net."""

    def _restored(self, net: MultiTaskNet) -> None:
        """What a loaded estimator derives from its saved attributes and ``net``."""

    @owns_precision(what="prediction")
    def _rows(self, data: TaskData) -> list[np.ndarray]:
        """For each segment of ``data``, its task's net outputs on its rows, (rows, width):
        logits for classification tasks, log means for count tasks, values in the target's
        units for regression."""
        x = as_inputs(self._design(data))
        net = self.net_
        device = next(net.parameters()).device
        net.eval()
        names = [s.name for s in net.tasks]
        if not data.shared and self.n_tasks_ > 1:  # each row through its own head only
            rows = torch.from_numpy(np.asarray(data.task_index[data.task_of], dtype=np.int64))
            widths = [s.n_outputs for s in net.tasks]
            with torch.no_grad():
                out = torch.cat([net(to_device(xb, device), rows=rows[i:i + 8192].to(device))
                                 for i, xb in zip(range(0, len(rows), 8192), chunks(x, 8192),
                                                  strict=True)]).double().cpu().numpy()
            segs = [out[a:b, :widths[t]]
                    for t, a, b in zip(data.task_index, data.indptr[:-1], data.indptr[1:],
                                       strict=True)]
            if np.isfinite(out).all():
                return segs
        else:
            with torch.no_grad():
                outs = [net(to_device(xb, device)) for xb in chunks(x, 8192)]
            per_task = {k: torch.cat([o[k] for o in outs]).double().cpu().numpy()
                        for k in names}
            segs = [per_task[names[t]] for t in data.task_index]
            if all(np.isfinite(v).all() for v in per_task.values()):
                return segs
        for seg, t in zip(segs, data.task_index, strict=True):  # (overflowing outputs)
            check_finite_predictions(names[t], torch.from_numpy(seg), net)
        return segs

    def net_inputs(self, X: Any) -> Any:
        """``X`` (one design of the fit's kind: a table, images, a sparse matrix, token ids or
        texts) as the fitted net reads it.

        The estimator's own preparation: the features checked against the fit, categorical
        columns as codes, numeric columns standardized (``x_mean_``, ``x_scale_``). What
        :func:`regmtl.deep.transfer_head` feeds the frozen net.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows.

        Returns
        -------
        Tensor, SparseRows or dict of Tensor
            A float32 tensor (a table, images), a dict of the numeric block and each
            categorical column's int64 codes, sparse rows (a bag of words), or int64 token
            ids (token ids, texts through ``tokenizer_``).
        """
        return as_inputs(self._design(self._predict_data(X, None)))

    def _predict_data(self, X, task, y=None) -> TaskData:
        check_is_fitted(self)
        return self._data(X, y, task, fitting=False)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = self.input_kind in ("auto", "sparse")  # a bag of words
        return tags

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted estimator to the folder ``path``; :func:`regmtl.load` reads it back.

        The folder is a checkpoint (:func:`~regmtl.deep.save_checkpoint`): ``model.pt``, the
        net's ``state_dict``, and ``config.json``, which also holds the estimator's parameters
        and what it needs to predict as it did (task labels, target scaling, classes, input
        form, feature names, history). Every parameter is saved as its constructor took it
        (dicts keyed by task labels, lists, tuples, arrays, a weighting by name and options,
        a ``RandomState`` by its state: ``regmtl.deep.saving.param_to_json``). No pickle:
        the weights are read back with ``torch.load(weights_only=True)``. ``trainer_`` is not
        saved.

        Parameters
        ----------
        path : str or path-like
            The folder (created if needed; its ``model.pt`` and ``config.json`` are
            overwritten).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        TypeError
            If a parameter cannot be saved without pickle (a weighting of your own class, a
            callable), naming it.

        Examples
        --------
        >>> import numpy as np
        >>> import regmtl
        >>> from regmtl.deep import DeepMultiTaskRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((40, 3))
        >>> m = DeepMultiTaskRegressor(hidden=(8,), max_epochs=5).fit(X, 10 + 3 * X[:, 0])
        >>> m.save("deep_model")
        >>> again = regmtl.load("deep_model")
        >>> bool(np.array_equal(again.predict(X), m.predict(X)))
        True
        """
        save_estimator(self, path)

    def _attributes_to_json(self) -> dict:
        out = {"tasks_": array_to_json(np.asarray(self.tasks_)),
               "n_tasks_": int(self.n_tasks_), "input_form_": str(self.input_form_),
               "n_features_in_": int(self.n_features_in_), "n_iter_": int(self.n_iter_),
               "best_epoch_": int(self.best_epoch_),
               "history_": {str(c): array_to_json(self.history_[c].to_numpy())
                            for c in self.history_.columns}}
        if hasattr(self, "feature_names_in_"):
            out["feature_names_in_"] = array_to_json(self.feature_names_in_)
        if getattr(self, "x_mean_", None) is not None:
            out["x_mean_"] = array_to_json(self.x_mean_)
            out["x_scale_"] = array_to_json(self.x_scale_)
        if getattr(self, "categories_", None):
            out["categories_"] = ColumnCodes(self.categories_).to_json()
        if getattr(self, "input_kind_", "table") in TRUNK_KINDS:
            out["input_kind_"] = self.input_kind_
            out["input_size_"] = [int(v) for v in self.input_size_]
            if self.input_kind_ == "text":
                out["tokenizer_"] = self.tokenizer_.to_json()
        if getattr(self, "modalities_", None) is not None:
            out["modalities_"] = self.modalities_
        if getattr(self, "modality_importance_", None) is not None:
            out["modality_importance_"] = importance_to_json(self.modality_importance_)
        return out

    def _attribute_from_json(self, name: str, value: Any, dims: dict) -> Any:
        """One saved attribute, checked (type, range, shape) against the saved numbers of tasks,
        features and epochs (``dims``)."""
        T, p = dims.get("n_tasks_", 1), dims.get("n_features_in_", 1)
        if name in ("n_tasks_", "n_features_in_", "n_iter_", "best_epoch_"):
            low = 1 if name in ("n_tasks_", "n_features_in_") else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"attribute {name!r} = {value!r:.40} is not an integer >= {low}")
            if name == "best_epoch_" and isinstance(dims.get("n_iter_"), int) \
                    and value > dims["n_iter_"]:
                raise ValueError(f"attribute 'best_epoch_' = {value} is after the last epoch "
                                 f"(n_iter_ = {dims['n_iter_']})")
            return value
        if name == "input_form_":
            if value not in FORMS:
                raise ValueError(f"attribute 'input_form_' = {value!r:.40} is not one of {FORMS}")
            return value
        if name == "categories_":
            return ColumnCodes.from_json(value).categories
        if name == "input_kind_":
            if value not in TRUNK_KINDS:
                raise ValueError(f"attribute 'input_kind_' = {value!r:.40} is not one of "
                                 f"{TRUNK_KINDS}")
            return value
        if name == "input_size_":
            if not isinstance(value, list) or not 1 <= len(value) <= 3 or any(
                    isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < 2**31
                    for v in value):
                raise ValueError("attribute 'input_size_' must list one to three sizes >= 1")
            return value
        if name == "tokenizer_":
            return Tokenizer.from_json(value)
        if name == "modalities_":
            return self.modalities_from_json(value)
        if name == "modality_importance_":
            return importance_from_json(value)
        if name == "history_":
            if not isinstance(value, dict):
                raise ValueError("attribute 'history_' is not a table")
            cols = {c: array_from_json(v, f"history_ column {c!r:.40}") for c, v in value.items()}
            if any(c.shape != (dims.get("n_iter_"),) or c.dtype.kind not in "biuf"
                   for c in cols.values()):
                raise ValueError("attribute 'history_' does not hold one number per epoch")
            return pd.DataFrame(cols)
        shape = {"tasks_": (T,), "feature_names_in_": (p,), "x_mean_": (p,),
                 "x_scale_": (p,)}.get(name, (T,))
        arr = array_from_json(value, f"attribute {name!r}")
        if arr.shape != shape:
            raise ValueError(f"attribute {name!r} has shape {arr.shape}, but n_tasks_ = {T} and "
                             f"n_features_in_ = {p} make it {shape}")
        if name == "feature_names_in_" and not all(isinstance(v, str) for v in arr):
            raise ValueError("attribute 'feature_names_in_' holds names that are not strings")
        if name in ("y_mean_", "y_scale_", "x_mean_", "x_scale_") and (
                arr.dtype.kind != "f" or not np.all(np.isfinite(arr))
                or (name.endswith("scale_") and np.any(arr <= 0))):
            raise ValueError(f"attribute {name!r} must hold finite floats"
                             f"{' > 0' if name.endswith('scale_') else ''}")
        return arr


@saved_as_folder
class DeepMultiTaskRegressor(RegressorMixin, _DeepMultiTask):
    __doc__ = wrapper_doc(
        """A multi-task network for regression, as a scikit-learn estimator.

    It takes the input forms of :class:`~regmtl.MultiTaskRegressor`: lists (or dicts) of
    designs per task, long form with ``task``, or a shared X with an (n, T) Y (NaN = missing);
    a 1-D y is one task. Rows of all tasks are stacked into one design and each row's target
    is observed for its own task only, so the tasks train jointly through the shared layers.
    Each task's target is standardized by the trainer (the net maps its outputs back to the
    target's units); each task has a head with one output and, by default, the squared loss
    (``loss`` gives Huber, quantile or Poisson losses, one for all tasks or one per task).
    Training runs a :class:`~regmtl.deep.Trainer` on one process.
""",
        parameters=LOSS_PARAMETER,
        extra_attributes=TARGET_ATTRIBUTES,
        rest="""See Also
--------
regmtl.deep.DeepMultiTaskClassifier : The same for classification.
regmtl.MultiTaskRegressor : Linear multi-task regression.

Examples
--------
>>> import numpy as np
>>> from regmtl.deep import DeepMultiTaskRegressor
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((60, 5))
>>> Y = np.column_stack([X[:, 0], X[:, 0] + X[:, 1]])  # two tasks on a shared design
>>> m = DeepMultiTaskRegressor(hidden=(16,), max_epochs=20, batch_size=32).fit(X, Y)
>>> m.predict(X).shape, m.n_tasks_, m.input_form_
((60, 2), 2, 'shared')
>>> m.n_iter_ == len(m.history_)
True

Visits per store as counts (the Poisson loss, log link) and the 90th percentile of a demand,
one loss per task; ``predict`` gives the mean count and the quantile:

>>> visits = rng.poisson(np.exp(0.5 + X[:, 0]))
>>> demand = 10 + X[:, 1] + rng.standard_normal(60)
>>> m = DeepMultiTaskRegressor(loss=["poisson", ("quantile", 0.9)], hidden=(16,),
...                            max_epochs=20, batch_size=32)
>>> m = m.fit(X, np.column_stack([visits, demand]))
>>> pred = m.predict(X)
>>> bool((pred[:, 0] > 0).all()), float(m.y_scale_[0])  # counts are not standardized
(True, 1.0)
""")

    _kind = "regression"
    _saved = ("y_mean_", "y_scale_")

    _parameter_constraints: dict = {
        **_DeepMultiTask._parameter_constraints,
        "loss": [str, tuple, list],
    }

    def __init__(self, architecture: str = "hard", *, loss: Any = "squared",
                 hidden: Any = (64,), head_hidden: Any = (), n_experts: int = 4,
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
        super().__init__(
            architecture, hidden=hidden, head_hidden=head_hidden, n_experts=n_experts,
            activation=activation, dropout=dropout, batch_norm=batch_norm, penalty=penalty,
            alpha=alpha, weighting=weighting, optimizer=optimizer, lr=lr,
            batch_size=batch_size, max_epochs=max_epochs, early_stopping=early_stopping,
            validation_fraction=validation_fraction, patience=patience,
            random_state=random_state, device=device, verbose=verbose,
            categorical_features=categorical_features, on_divergence=on_divergence,
            input_kind=input_kind, trunk=trunk, tokenizer=tokenizer, warm_start=warm_start,
            fusion=fusion, modality_dropout=modality_dropout)
        self.loss = loss

    def _task_losses(self, n_tasks: int) -> list[TaskLoss | None]:
        return task_losses(self.loss, n_tasks)

    def _restored(self, net: MultiTaskNet) -> None:
        scales_from_attributes(net, self)

    def _attributes_to_json(self) -> dict:
        return {**super()._attributes_to_json(), "y_mean_": array_to_json(self.y_mean_),
                "y_scale_": array_to_json(self.y_scale_)}

    def _head_kinds(self, attrs: dict) -> list[tuple[str, int]]:
        return [(tl.kind, 1) for tl in task_losses(self.loss, attrs["n_tasks_"])]

    def _encode(self, data: TaskData) -> np.ndarray:
        y = np.asarray(data.y, dtype=np.float64)
        for k, (s, _) in enumerate(data.segments()):
            t = data.task_index[k]
            if self._losses[t].kind == "count":
                self._check_counts(y[s], data.tasks[t])
        return y

    def _fitted(self) -> None:
        maps = self.net_.target_scales
        scales = [maps[s.name] if s.name in maps else None for s in self.net_.tasks]
        self.y_mean_ = np.array([0.0 if s is None else float(s.mean[0]) for s in scales])
        self.y_scale_ = np.array([1.0 if s is None else float(s.scale[0]) for s in scales])

    def _specs(self, scales: dict[int, float] | None = None) -> list[TaskSpec]:
        scales = scales or {}
        return [tl.spec(f"t{k}", scales.get(k, 1.0)) for k, tl in enumerate(self._losses)]

    def _values(self, data: TaskData) -> np.ndarray:
        return np.concatenate([self._natural(r, t)
                               for r, t in zip(self._rows(data), data.task_index, strict=True)])

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predictions in the form of ``X``: list in, list out; a 2-D X alone gives (n, T).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict of ndarray
            The predicted values (the mean count for a Poisson task, the tau-quantile for a
            quantile task): (n,) for one task or the long form, (n, T) for a shared design,
            one array per task for a list or dict.
        """
        data = self._predict_data(X, task)
        return data.to_form(self._values(data))

    def score(self, X: Any, y: Any, task: Any = None) -> float:
        """R^2 of each task, averaged over tasks (observed labels only).

        A Poisson task scores the fraction of Poisson deviance explained (D², as
        scikit-learn's ``PoissonRegressor.score``), a quantile task the fraction of pinball
        loss explained at its tau (``d2_pinball_score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        y : array-like, or list or dict of them
            The true values (NaN = missing in a shared Y).
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        float
            The mean over tasks of the coefficient of determination.
        """
        data = self._predict_data(X, task, y)
        pred = self._values(data)
        return float(np.mean([self._value_score(t, data.y[s], pred[s])
                              for (s, _), t in zip(data.segments(), data.task_index,
                                                   strict=True)]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


@saved_as_folder
class DeepMultiTaskClassifier(ClassifierMixin, _DeepMultiTask):
    __doc__ = wrapper_doc(
        """A multi-task network for classification (binary or multiclass per task).

    The input forms and training are those of
    :class:`~regmtl.deep.DeepMultiTaskRegressor`. Each task has its own classes (any label
    type); two give a logistic head (binary cross entropy), more a softmax head (cross
    entropy).
""",
        attributes="""classes_ : ndarray or list of ndarray
    The labels: one array for a single task, else a list per task.
""",
        rest="""See Also
--------
regmtl.deep.DeepMultiTaskRegressor : The same for regression.
regmtl.MultiTaskClassifier : Linear multi-task classification.

Examples
--------
>>> import numpy as np
>>> from regmtl.deep import DeepMultiTaskClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((60, 4))
>>> y = np.where(X[:, 0] > 0, "yes", "no")
>>> clf = DeepMultiTaskClassifier(hidden=(16,), max_epochs=20, batch_size=32).fit(X, y)
>>> clf.classes_.tolist(), clf.predict_proba(X[:3]).shape
(['no', 'yes'], (3, 2))
>>> bool(clf.score(X, y) > 0.8)
True
""")

    _kind = "classification"
    _saved = ("classes_",)

    def _restored(self, net: MultiTaskNet) -> None:
        self._classes = [self.classes_] if self.input_form_ == "single" else list(self.classes_)

    def _attributes_to_json(self) -> dict:
        classes = [self.classes_] if self.input_form_ == "single" else self.classes_
        saved = [array_to_json(np.asarray(c)) for c in classes]
        return {**super()._attributes_to_json(),
                "classes_": saved[0] if self.input_form_ == "single" else saved}

    def _attribute_from_json(self, name: str, value: Any, dims: dict) -> Any:
        if name != "classes_":
            return super()._attribute_from_json(name, value, dims)
        single = dims["input_form_"] == "single"
        if not single and (not isinstance(value, list) or len(value) != dims["n_tasks_"]):
            raise ValueError(f"attribute 'classes_' must list the classes of each of the "
                             f"{dims['n_tasks_']} tasks")
        out = [array_from_json(v, "attribute 'classes_'") for v in ([value] if single else value)]
        if any(c.ndim != 1 or len(c) < 2 for c in out):
            raise ValueError("attribute 'classes_' must hold at least two classes per task")
        return out[0] if single else out

    def _head_kinds(self, attrs: dict) -> list[tuple[str, int]]:
        classes = [attrs["classes_"]] if attrs["input_form_"] == "single" else attrs["classes_"]
        return [("binary", 1) if len(c) == 2 else ("multiclass", len(c)) for c in classes]

    def _data(self, X, y, task, *, fitting: bool) -> TaskData:
        if fitting:
            y = column_target(X, y, task)
        return super()._data(X, y, task, fitting=fitting)

    def _encode(self, data: TaskData) -> np.ndarray:
        y = np.full(data.n_obs, np.nan)
        classes = []
        for k, s in enumerate(s for s, _ in data.segments()):
            label = plain_label(data.tasks[data.task_index[k]])
            y[s], cls = class_codes(
                data.raw_y[s], label,
                "fit DeepMultiTaskRegressor, or DeepMultiTaskModel(kinds={"
                f"{label!r}: 'regression'}}) beside classification tasks.")
            classes.append(cls)
        self._classes = classes
        self.classes_ = classes[0] if data.form == "single" else classes
        return y

    def _specs(self) -> list[TaskSpec]:
        return [TaskSpec(f"t{k}", kind="binary", metrics=("accuracy",)) if len(c) == 2 else
                TaskSpec(f"t{k}", kind="multiclass", n_outputs=len(c), metrics=("accuracy",))
                for k, c in enumerate(self._classes)]

    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """Class probabilities, (n, K_t) per task, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict of ndarray
            One (n, K) array for one task or the long form (all tasks with K classes), else
            one array per task.

        Raises
        ------
        ValueError
            In long form, when the tasks have different numbers of classes.
        """
        data = self._predict_data(X, task)
        probs = [probabilities(r) for r in self._rows(data)]
        if data.form in ("list", "shared"):
            return probs
        if data.form == "dict":
            return {data.tasks[t]: v for t, v in zip(data.task_index, probs, strict=True)}
        if data.form == "long" and len({p.shape[1] for p in probs}) > 1:
            raise ValueError("predict_proba: tasks have different numbers of classes, so the "
                             "long form cannot hold them in one array; pass one design per "
                             "task (a list or dict).")
        return data.to_form(np.concatenate(probs))

    def predict_log_proba(self, X: Any, task: Any = None) -> Any:
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict of ndarray
            Log-probabilities, in the form of :meth:`predict_proba`.
        """
        proba = self.predict_proba(X, task)
        if isinstance(proba, dict):
            return {k: np.log(v) for k, v in proba.items()}
        if isinstance(proba, list):
            return [np.log(v) for v in proba]
        return np.log(proba)

    def _labels(self, data: TaskData) -> list[np.ndarray]:
        """Predicted labels of each segment, in its task's label type."""
        return [self._classes[t][class_index(r)]
                for r, t in zip(self._rows(data), data.task_index, strict=True)]

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predicted labels, in the form of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict of ndarray
            Each row's label, in its task's label type.
        """
        data = self._predict_data(X, task)
        return segments_in_form(data, self._labels(data))

    def score(self, X: Any, y: Any, task: Any = None) -> float:
        """Accuracy of each task, averaged over tasks (observed labels only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        y : array-like, or list or dict of them
            The true labels.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        float
            The mean over tasks of the accuracy.
        """
        data = self._predict_data(X, task, y)
        labels = self._labels(data)
        starts = data.indptr[:-1]
        return float(np.mean([
            accuracy_score(as_labels(data.raw_y[s]), as_labels(pred[s - a]))
            for (s, _), pred, a in zip(data.segments(), labels, starts, strict=True)]))


@saved_as_folder
class DeepMultiTaskModel(_DeepMultiTask):
    __doc__ = wrapper_doc(
        r"""A multi-task network whose tasks are of mixed kinds: regression, binary, multiclass.

    The input forms, nets and training are those of
    :class:`~regmtl.deep.DeepMultiTaskRegressor`. Each task is a regression (one output,
    squared loss on its standardized target, or the loss ``loss`` gives it), a count (one
    output, the log mean; Poisson loss; predicted as the mean count) or a classification (its
    own classes of any label type; two give a logistic head, more a softmax head). The trainer
    scales every task's loss by its constant predictor's (``regmtl.deep.scaling``), so a
    rating in its units, a click and a rare purchase train side by side without one
    dominating.
""",
        parameters=r"""kinds : "auto", dict or list, default="auto"
    Each task's kind, ``"regression"``, ``"count"`` or ``"classification"``: a dict task
    label -> kind (tasks left out are "auto"), or a list in the order of the tasks.
    ``"auto"`` takes the kind of the task's loss when one is given (``"poisson"``: a count,
    the others a regression), else reads scikit-learn's ``type_of_target`` of the task's
    observed labels: continuous values are a regression, anything else (strings,
    booleans, integers) classes. Name the kind of integer-valued targets that are
    quantities (counts, ratings).
""" + MODEL_LOSS_PARAMETER,
        attributes=r"""kinds_ : ndarray of str, shape (n_tasks,)
    ``"regression"``, ``"count"``, ``"binary"`` or ``"multiclass"`` per task.
classes_ : list
    Per task, its classes (ndarray), or None for a regression or count.
""",
        rest=r"""See Also
--------
regmtl.deep.DeepMultiTaskRegressor : All tasks regressions.
regmtl.deep.DeepMultiTaskClassifier : All tasks classifications.

Examples
--------
A click (binary) and a rating in its 1-5 units on a shared design, NaN where unobserved:

>>> import numpy as np
>>> from regmtl.deep import DeepMultiTaskModel
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((200, 4))
>>> click = (X[:, 0] > 0).astype(float)
>>> rating = np.where(click == 1, 3 + X[:, 1], np.nan)
>>> m = DeepMultiTaskModel(hidden=(16,), max_epochs=30, batch_size=32)
>>> m = m.fit(X, np.column_stack([click, rating]))
>>> m.kinds_.tolist()
['binary', 'regression']
>>> proba = m.predict_proba(X[:2])  # one entry per task: None for the regression
>>> m.predict(X[:2]).shape, proba[0].shape, proba[1]
((2, 2), (2, 2), None)

A purchase count beside the click: ``loss`` per task (None: the click's own log loss):

>>> count = rng.poisson(np.exp(X[:, 2]))
>>> m = DeepMultiTaskModel(loss=[None, "poisson"], hidden=(16,), max_epochs=30,
...                        batch_size=32).fit(X, np.column_stack([click, count]))
>>> m.kinds_.tolist(), bool((m.predict(X[:5])[:, 1] > 0).all())
(['binary', 'count'], True)
""")

    _kind = "mixed"
    _saved = ("kinds_", "classes_")

    def _restored(self, net: MultiTaskNet) -> None:
        self._classes = list(self.classes_)

    _parameter_constraints: dict = {
        **_DeepMultiTask._parameter_constraints,
        "kinds": [StrOptions({"auto"}), dict, list, tuple],
        "loss": [str, tuple, list, None],
    }

    def __init__(self, kinds: Any = "auto", architecture: str = "hard", *, loss: Any = None,
                 hidden: Any = (64,), head_hidden: Any = (), n_experts: int = 4,
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
        super().__init__(
            architecture, hidden=hidden, head_hidden=head_hidden, n_experts=n_experts,
            activation=activation, dropout=dropout, batch_norm=batch_norm, penalty=penalty,
            alpha=alpha, weighting=weighting, optimizer=optimizer, lr=lr,
            batch_size=batch_size, max_epochs=max_epochs, early_stopping=early_stopping,
            validation_fraction=validation_fraction, patience=patience,
            random_state=random_state, device=device, verbose=verbose,
            categorical_features=categorical_features, on_divergence=on_divergence,
            input_kind=input_kind, trunk=trunk, tokenizer=tokenizer, warm_start=warm_start,
            fusion=fusion, modality_dropout=modality_dropout)
        self.kinds = kinds
        self.loss = loss

    # ------------------------------------------------------------------ kinds
    def _asked_kinds(self, tasks: np.ndarray) -> list[str]:
        """The kind asked for each task ("regression", "count", "classification" or "auto")."""
        allowed = ("regression", "count", "classification", "auto")
        if isinstance(self.kinds, str):
            asked = ["auto"] * len(tasks)
        elif isinstance(self.kinds, dict):
            known = {plain_label(t) for t in tasks}
            unknown = [k for k in self.kinds if plain_label(k) not in known]
            if unknown:
                raise ValueError(f"kinds: unknown task(s) {unknown[:5]}; the tasks are "
                                 f"{[plain_label(t) for t in tasks][:10]}.")
            given = {plain_label(k): v for k, v in self.kinds.items()}
            asked = [given.get(plain_label(t), "auto") for t in tasks]
        else:
            asked = list(self.kinds)
            if len(asked) != len(tasks):
                raise ValueError(f"kinds: a list needs one kind per task ({len(tasks)}), got "
                                 f"{len(asked)}; or pass a dict task -> kind.")
        bad = [k for k in asked if not (isinstance(k, str) and k in allowed)]
        if bad:
            raise ValueError(f"kinds: {bad[0]!r} is not one of {allowed}.")
        return asked

    def _task_losses(self, n_tasks: int) -> list[TaskLoss | None]:
        """Each task's loss as given (None where ``loss`` leaves it to the task's kind)."""
        return task_losses(self.loss, n_tasks, default=None)

    def _kind_of(self, asked: str, tl: TaskLoss | None, label: Any, raw: np.ndarray) -> str:
        """A task's kind from the kind asked and its loss (the loss's kind for "auto")."""
        if tl is not None:
            if asked == "auto":
                return tl.kind
            if asked == "classification" and not isinstance(self.loss, list):
                return asked  # one loss for every task: the value tasks'
            if asked != tl.kind:
                raise ValueError(f"loss: task {plain_label(label)!r} is asked to be a "
                                 f"{asked} (kinds), but loss {tl.name!r} is for a {tl.kind} "
                                 "task; give a list with one loss per task (None: the "
                                 "kind's own).")
            return asked
        if asked == "auto":
            labels = as_labels(raw)
            with warnings.catch_warnings():  # (the classes are checked with their count)
                warnings.filterwarnings("ignore", message=SKLEARN_MANY_CLASSES)
                kind = type_of_target(labels)
            if kind == "continuous":
                return "regression"
            if labels.dtype.kind in "UO" and many_classes(len(cls := np.unique(labels)),
                                                          len(labels)) and numeric_text(cls):
                raise ValueError(class_count_message(cls, len(labels), label, _declare(label),
                                                     auto=True))
            return "classification"
        return asked

    def _encode(self, data: TaskData) -> np.ndarray:
        y = np.full(data.n_obs, np.nan)
        asked = self._asked_kinds(data.tasks)
        kinds, classes = [], []
        for k, (s, _) in enumerate(data.segments()):
            label = data.tasks[data.task_index[k]]
            raw = data.raw_y[s]
            kind = self._kind_of(asked[data.task_index[k]], self._losses[data.task_index[k]],
                                 label, raw)
            if kind in ("regression", "count"):
                try:
                    y[s] = check_array(raw.reshape(-1, 1), dtype=np.float64,
                                       input_name="y")[:, 0]
                except ValueError as exc:
                    raise ValueError(f"y: task {label!r} is a {kind}, but {exc}") from None
                if kind == "count":
                    self._check_counts(y[s], label)
                kinds.append(kind)
                classes.append(None)
            else:
                declared = asked[data.task_index[k]] == "classification"
                y[s], cls = class_codes(raw, label, None if declared else _declare(label))
                kinds.append("binary" if len(cls) == 2 else "multiclass")
                classes.append(cls)
        self.kinds_ = np.array(kinds)
        self._classes = self.classes_ = classes
        return y

    def _specs(self, scales: dict[int, float] | None = None) -> list[TaskSpec]:
        scales = scales or {}
        out = []
        for k, c in enumerate(self._classes):
            if c is None:
                tl = self._losses[k]
                if tl is None or (tl.kind != self.kinds_[k]):  # (one loss: the value tasks')
                    tl = TaskLoss("poisson" if self.kinds_[k] == "count" else "squared")
                out.append(tl.spec(f"t{k}", scales.get(k, 1.0)))
            elif len(c) == 2:
                out.append(TaskSpec(f"t{k}", kind="binary", metrics=("accuracy",)))
            else:
                out.append(TaskSpec(f"t{k}", kind="multiclass", n_outputs=len(c),
                                    metrics=("accuracy",)))
        return out

    def _loss_scales(self, Y: np.ndarray, rows: np.ndarray | None
                     ) -> dict[int, tuple[float, float]]:
        out = super()._loss_scales(Y, rows)
        return {k: v for k, v in out.items() if self.kinds_[k] == "regression"}

    def _head_kinds(self, attrs: dict) -> list[tuple[str, int]]:
        kinds = attrs["kinds_"].tolist()
        classes = attrs["classes_"]
        if any((c is None) != (k in ("regression", "count"))
               for k, c in zip(kinds, classes, strict=True)):
            raise ValueError("attribute 'kinds_' does not fit 'classes_' (classes for the "
                             "classification tasks only)")
        losses = task_losses(self.loss, attrs["n_tasks_"], default=None)
        if isinstance(self.loss, list) and any(
                tl is not None and k != tl.kind for k, tl in zip(kinds, losses, strict=True)):
            raise ValueError("parameter 'loss' does not fit attribute 'kinds_'")
        return [(k, 1) if c is None else ("binary", 1) if len(c) == 2
                else ("multiclass", len(c)) for k, c in zip(kinds, classes, strict=True)]

    # ------------------------------------------------------------------ predictions
    def _outputs_of(self, data: TaskData) -> list[np.ndarray]:
        """Each segment's predictions: values (the mean of a count), or labels in its task's
        label type."""
        return [self._natural(r, t) if self._classes[t] is None
                else self._classes[t][class_index(r)]
                for r, t in zip(self._rows(data), data.task_index, strict=True)]

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predictions in the form of ``X``: values for regression tasks, labels for the others.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict of ndarray
            (n,) for one task or the long form, (n, T) for a shared design (an object array
            when the kinds mix label types), one array per task for a list or dict.
        """
        data = self._predict_data(X, task)
        return segments_in_form(data, self._outputs_of(data))

    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """Class probabilities of the classification tasks, (n, K_t) per task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        ndarray, list or dict
            Columns in the order of each task's ``classes_``. A list (lists and shared
            designs) holds None for a regression task; a dict holds the classification
            tasks; one task or the long form gives one (n, K) array.

        Raises
        ------
        ValueError
            For one task or the long form, when a row's task is a regression or the tasks
            have different numbers of classes.
        """
        data = self._predict_data(X, task)
        probs = [None if self._classes[t] is None else probabilities(r)
                 for r, t in zip(self._rows(data), data.task_index, strict=True)]
        if data.form in ("list", "shared"):
            return probs
        if data.form == "dict":
            return {data.tasks[t]: v for t, v in zip(data.task_index, probs, strict=True)
                    if v is not None}
        if any(p is None for p in probs):
            raise ValueError("predict_proba: some rows belong to regression tasks; pass one "
                             "design per task (a list or dict) to get the classification "
                             "tasks' probabilities.")
        if len({p.shape[1] for p in probs}) > 1:
            raise ValueError("predict_proba: tasks have different numbers of classes, so the "
                             "long form cannot hold them in one array; pass one design per "
                             "task (a list or dict).")
        return data.to_form(np.concatenate(probs))

    def score(self, X: Any, y: Any, task: Any = None) -> float:
        """R^2 of the regression tasks and accuracy of the others, averaged over tasks.

        A count task scores the fraction of Poisson deviance explained (D²), a quantile
        task the fraction of pinball loss explained at its tau.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list or dict of them
            Designs in the form of the fit.
        y : array-like, or list or dict of them
            The true values and labels (NaN = missing in a shared Y).
        task : array-like of shape (n_samples,) or str, optional
            The task of each row (long form).

        Returns
        -------
        float
            The mean over tasks of each task's score.
        """
        data = self._predict_data(X, task, y)
        scores = []
        for (s, _), pred, t, a in zip(data.segments(), self._outputs_of(data), data.task_index,
                                      data.indptr[:-1], strict=True):
            if self._classes[t] is None:
                scores.append(self._value_score(t, data.raw_y[s], pred[s - a]))
            else:
                scores.append(accuracy_score(as_labels(data.raw_y[s]),
                                             as_labels(pred[s - a])))
        return float(np.mean(scores))

    # ------------------------------------------------------------------ persistence
    def _attributes_to_json(self) -> dict:
        return {**super()._attributes_to_json(),
                "kinds_": array_to_json(np.asarray(self.kinds_)),
                "classes_": [None if c is None else array_to_json(np.asarray(c))
                             for c in self.classes_]}

    def _attribute_from_json(self, name: str, value: Any, dims: dict) -> Any:
        if name == "kinds_":
            arr = array_from_json(value, "attribute 'kinds_'")
            if arr.shape != (dims["n_tasks_"],) or not set(arr.tolist()) <= set(KINDS):
                raise ValueError(f"attribute 'kinds_' must name one of {KINDS} per task")
            return arr
        if name != "classes_":
            return super()._attribute_from_json(name, value, dims)
        if not isinstance(value, list) or len(value) != dims["n_tasks_"]:
            raise ValueError(f"attribute 'classes_' must list the classes (or null) of each of "
                             f"the {dims['n_tasks_']} tasks")
        out = [None if v is None else array_from_json(v, "attribute 'classes_'") for v in value]
        if any(c is not None and (c.ndim != 1 or len(c) < 2) for c in out):
            raise ValueError("attribute 'classes_' must hold at least two classes per "
                             "classification task")
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        if tags.classifier_tags is None:  # it has predict_proba (for its classes' tasks)
            tags.classifier_tags = ClassifierTags()
        return tags


def layer_widths(widths: Any) -> tuple[int, ...]:
    """Layer widths as Python ints (an array's NumPy ints would not go into the net's
    JSON config)."""
    return tuple(int(w) for w in widths)


def _declare(label: Any) -> str:
    """How a :class:`DeepMultiTaskModel` task's kind is declared (in a message)."""
    label = plain_label(label)
    return (f"declare the task's kind: kinds={{{label!r}: 'regression'}} (numbers given as "
            f"text are then read as numbers), or kinds={{{label!r}: 'classification'}} to "
            "keep them classes.")


#: The deep wrappers' shared base (input conversion, the net, the trainer, saving), for the
#: estimators of other modules (:class:`~regmtl.deep.DeepESMMClassifier`).
DeepEstimatorBase = _DeepMultiTask
