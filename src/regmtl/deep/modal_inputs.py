r"""What the scikit-learn wrappers do with :class:`~regmtl.deep.Modalities`: named inputs of one
row set, each read by its own default encoder, fused by a :class:`~regmtl.deep.FusedTrunk`.

=========  ==============================================================================
kind       default encoder (sizes read from the fit's data)
=========  ==============================================================================
images     :class:`~regmtl.deep.ConvTrunk` with the images' channels
text       :class:`~regmtl.deep.TextTrunk` on the ids of a :class:`~regmtl.deep.Tokenizer`
           fitted on that modality's present texts (``tokenizer`` options)
tokens     :class:`~regmtl.deep.TextTrunk` on the ids (vocabulary: the largest id + 1)
sparse     :class:`~regmtl.deep.TextTrunk` reading the bag of words (vocabulary: columns)
table      :class:`~regmtl.deep.TableTrunk` of the table's width; a DataFrame's
           categorical columns (``category``, ``object`` or ``string`` dtype) are embedded,
           with vocabularies learned from the fit's present rows (an unseen value reads the
           out-of-vocabulary bucket), the numeric columns standardized on the training rows
=========  ==============================================================================

``trunk`` gives each modality's encoder its options by name, e.g.
``trunk={"image": {"channels": (16, 32)}, "title": {"dim": 32}, "price": {"hidden": (16,)}}``
(those of the one-kind inputs' trunks; a table's ``hidden``).

A ``Modalities`` is one row set: it goes with a ``task`` array (long form) or a 2-D ``y``
(one column per task), as one table does; a list or dict of them (one per task, the same
modalities in each) is stacked into one, keeping the list or dict form of the predictions.
The rows are routed through :func:`regmtl.as_task_data` as a one-column design of row
numbers, and the net reads the rows those numbers select of :meth:`Modalities.carried` (each
modality, and the missing mask). The
fit keeps the modalities' names, kinds, sizes and fitted tokenizers in ``modalities_``;
``predict`` and ``score`` refuse a ``Modalities`` of other names or kinds, naming the
difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..inputs import as_task_data
from ..taskdata import TaskData
from ._torch import torch
from .frames import ColumnCodes
from .fusion import FUSIONS, MAX_CODE, FusedTrunk, TableTrunk
from .modalities import MODALITY_KINDS, Modalities
from .tokenizer import Tokenizer
from .trunks import ConvTrunk, TextTrunk
from .wrapper_inputs import TRUNK_OPTIONS

__all__ = ["ModalInputs", "is_modal"]

#: the wrappers' parameters that only a ``Modalities`` reads, with their no-op defaults
MODAL_DEFAULTS = {"fusion": "concat", "modality_dropout": 0.0}
#: the options of a table modality's encoder (``trunk={name: {...}}``)
TABLE_OPTIONS = ("hidden",)


def _parts(X: Any) -> list | None:
    values = list(X.values()) if isinstance(X, dict) else X if isinstance(X, (list, tuple)) \
        else None
    return values if values and any(isinstance(v, Modalities) for v in values) else None


def is_modal(X: Any) -> bool:
    """Whether ``X`` is a :class:`Modalities`, or a list or dict of them (one per task).

    Raises
    ------
    ValueError
        For a list or dict mixing Modalities with other inputs.
    """
    if isinstance(X, Modalities):
        return True
    parts = _parts(X)
    if parts is not None and not all(isinstance(v, Modalities) for v in parts):
        raise ValueError("X is a list or dict that mixes Modalities with other inputs; give "
                         "every task's rows as a Modalities of the same modalities.")
    return parts is not None


def _cat(blocks: list, kind: str, name: str) -> Any:
    """The tasks' inputs of modality ``name`` stacked (the rows of every task, in order); a
    table, images or bag of words of another shape than the first task's is refused by name."""
    if kind in ("images", "table", "sparse"):
        shapes = {tuple(b.shape[1:]) for b in blocks}
        if len(shapes) > 1:
            raise ValueError(f"modality {name!r} has rows of shapes {sorted(shapes)} across the "
                             "tasks; give every task's rows of a modality in one shape.")
    if kind == "sparse":
        return sp.vstack(blocks, format="csr")
    frames = [isinstance(b, pd.DataFrame) for b in blocks]
    if any(frames):
        if not all(frames) or len({tuple(b.columns) for b in blocks}) > 1:
            raise ValueError(f"modality {name!r} is a table with categorical columns in some "
                             "tasks and not in others, or with other columns; give every "
                             "task's rows of it as a DataFrame of the same columns.")
        return pd.concat(blocks, ignore_index=True)
    if any(isinstance(b, torch.Tensor) for b in blocks):
        blocks = [b if isinstance(b, torch.Tensor) else torch.from_numpy(np.asarray(b))
                  for b in blocks]
        return torch.cat(blocks)
    if kind == "tokens":  # each task's ids padded with 0 to the longest
        L = max(b.shape[1] for b in blocks)
        return np.concatenate([np.pad(b, ((0, 0), (0, L - b.shape[1]))) for b in blocks])
    return np.concatenate(blocks)


def stacked(X: Any) -> tuple[Modalities, Any]:
    """One :class:`Modalities` of the rows of ``X`` (one, or a list or dict per task), and
    ``X`` with each Modalities replaced by its rows' numbers, (n_t, 1) floats: what
    :func:`regmtl.as_task_data` groups and orders."""
    if isinstance(X, Modalities):
        return X, np.arange(len(X), dtype=np.float64)[:, None]
    keys = list(X) if isinstance(X, dict) else range(len(X))
    parts = list(X.values()) if isinstance(X, dict) else list(X)
    first = parts[0]
    for k, m in zip(keys, parts, strict=True):
        if list(m.names) != list(first.names) or m.kinds != first.kinds:
            raise ValueError(f"X[{k!r}] has the modalities {m.kinds}, but X[{keys[0]!r}] has "
                             f"{first.kinds}; give every task the same modalities, of the "
                             "same kinds, in one order.")
    data = {name: _cat([dict(iter(m))[name] for m in parts], kind, name)
            for name, kind in first.kinds.items()}
    one = Modalities.from_dict(data, first.kinds)
    sizes = np.cumsum([0] + [len(m) for m in parts])
    index = [np.arange(a, b, dtype=np.float64)[:, None]
             for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return one, dict(zip(keys, index, strict=True)) if isinstance(X, dict) else index


class ModalInputs:
    """The wrappers' reading of :class:`~regmtl.deep.Modalities` (mixed into the wrappers)."""

    def _modal_options(self, modal: bool) -> tuple[str, float]:
        """``fusion`` and ``modality_dropout``, checked (non-defaults need a Modalities)."""
        fusion = getattr(self, "fusion", "concat")
        p = getattr(self, "modality_dropout", 0.0)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r:.40} is not one of {list(FUSIONS)}.")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"modality_dropout={p!r:.40} is not a probability in [0, 1).")
        if not modal:
            for name, default in MODAL_DEFAULTS.items():
                if getattr(self, name, default) != default:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} has no effect: it sets how the "
                        "modalities of a regmtl.deep.Modalities are fused, and X is not one; "
                        f"leave {name}={default!r}, or give X as Modalities(name=input, ...).")
        return fusion, float(p)

    def _continues(self) -> bool:
        """Whether this fit continues the last one's net (``warm_start`` with a fitted
        state)."""
        return bool(self.warm_start) and getattr(
            getattr(self, "trainer_", None), "state_", None) is not None

    def _modal_fit(self, X: Any, fitting: bool) -> bool:
        """Whether the estimator was fitted on a Modalities; a fit that continues the last
        net (``warm_start``) with X in the other form is refused."""
        modal_fit = getattr(self, "modalities_", None) is not None
        if fitting and self._continues() and modal_fit != is_modal(X):
            raise ValueError(
                "warm_start=True continues the last net, which read "
                + ("a Modalities" if modal_fit else f"{getattr(self, 'input_kind_', 'table')} "
                   "input") + f", but X is {'' if is_modal(X) else 'not '}a Modalities; give X "
                "in the form of that fit, or set warm_start=False to train a new net.")
        return modal_fit

    def _modal_data(self, X: Any, y: Any, task: Any, fitting: bool) -> TaskData:
        """The task data of a :class:`Modalities` (or a list or dict of them): its rows routed
        through ``as_task_data`` by their numbers, the carried dict in ``row_inputs``."""
        self._modal_options(True)
        X, index = stacked(X)
        if isinstance(task, str):
            raise ValueError(f"task={task!r} names a DataFrame column, but X is a Modalities; "
                             "pass the task ids themselves (one per row).")
        if fitting:
            self._encoder_options(X.kinds)
            if not isinstance(self.categorical_features, str) \
                    and list(self.categorical_features):
                raise ValueError("categorical_features names DataFrame columns, but X is a "
                                 "Modalities; leave categorical_features='from_dtype'.")
        if fitting and not self._continues():
            self._learn_modalities(X)
        else:  # (a warm start keeps the fit's tokenizers and vocabularies, as its net does)
            try:
                self._check_modalities(X)
            except ValueError as exc:
                if not fitting:
                    raise
                raise ValueError(f"{exc} (warm_start=True continues the last net, which reads "
                                 "those; set warm_start=False to train a new one.)") from None
        spec = self.modalities_
        tokenizers = {k: Tokenizer.from_json(v) for k, v in spec["tokenizers"].items()}
        codes = {k: ColumnCodes.from_json(v["categories"]) for k, v in spec["tables"].items()}
        carried = X.carried(tokenizers, codes)
        for name in spec["names"]:
            kind, size = spec["kinds"][name], spec["sizes"][name]
            x = carried[name]
            if kind == "images":
                x = carried[name] = x.reshape(x.shape[0], -1, *x.shape[-2:])
            if kind == "images" and list(x.shape[1:]) != size:
                raise ValueError(f"modality {name!r} holds images of shape "
                                 f"{tuple(x.shape[1:])}, but the estimator was fitted on "
                                 f"{tuple(size)}; give images of the fitted shape.")
            if kind in ("table", "sparse") and x.shape[1] != size[0]:
                raise ValueError(f"modality {name!r} has {x.shape[1]} columns, but the "
                                 f"estimator was fitted on {size[0]}.")
        data = as_task_data(
            index, y, task, tasks=None if fitting else self.tasks_,
            check_x=lambda Z, reset: Z, numeric_y=self._kind == "regression",
            require_y=y is not None or fitting, reset=fitting,
            single=False if fitting else self.input_form_ == "single",
        )
        data.row_inputs = carried
        return data

    def _learn_modalities(self, X: Modalities) -> None:
        """``modalities_``: the names, kinds, sizes and fitted tokenizers of the fit."""
        for attr in ("categories_", "feature_names_in_", "x_mean_", "x_scale_", "tokenizer_",
                     "input_kind_", "input_size_"):
            self.__dict__.pop(attr, None)
        missing = X.missing()
        kinds, sizes, tokenizers, tables = X.kinds, {}, {}, {}
        for j, (name, x) in enumerate(X):
            kind, present = kinds[name], ~missing[:, j]
            if isinstance(x, pd.DataFrame):  # a table with categorical columns
                codes = ColumnCodes.learn([x[present]])
                if any(len(v) >= MAX_CODE for v in codes.categories.values()):
                    raise ValueError(f"modality {name!r}: a categorical column has "
                                     f"{MAX_CODE} values or more; a table modality embeds "
                                     "fewer (give such ids as their own modality of tokens).")
                tables[name] = {"columns": list(x.columns), "categories": codes.to_json()}
                sizes[name] = [int(x.shape[1])]
            elif kind == "text":
                tok = Tokenizer.from_options(self.tokenizer).fit(
                    [s for s, p in zip(x, present, strict=True) if p])
                tokenizers[name] = tok.to_json()
                sizes[name] = [tok.n_ids]
            elif kind == "images":
                shape = [int(v) for v in x.shape[1:]]
                sizes[name] = [int(np.prod(shape[:-2])) if len(shape) > 2 else 1, *shape[-2:]]
            elif kind == "tokens":
                sizes[name] = [max(int(np.asarray(x).max()) + 1 if np.asarray(x).size else 1,
                                   1)]
            else:  # table, sparse: columns
                sizes[name] = [int(x.shape[1])]
        self.modalities_ = {"names": list(X.names), "kinds": dict(kinds), "sizes": sizes,
                            "tokenizers": tokenizers, "tables": tables}
        self.n_features_in_ = len(X.names)

    def _check_modalities(self, X: Modalities) -> None:
        """Refuse a Modalities of other names or kinds than the fit's, naming the difference."""
        spec = getattr(self, "modalities_", None)
        if spec is None:
            raise ValueError("X is a Modalities, but the estimator was fitted on "
                             f"{getattr(self, 'input_kind_', 'table')} input; give X in the "
                             "form of the fit.")
        names, kinds = list(X.names), X.kinds
        if names != spec["names"]:
            absent = [n for n in spec["names"] if n not in names]
            extra = [n for n in names if n not in spec["names"]]
            raise ValueError(f"X has the modalities {names}, but the estimator was fitted on "
                             f"{spec['names']} (missing: {absent}, unknown: {extra}); give "
                             "the fit's modalities, in its order (a missing value per row: "
                             "None or a row of NaN).")
        changed = {n: (spec["kinds"][n], kinds[n]) for n in names if kinds[n] != spec["kinds"][n]}
        if changed:
            what = ", ".join(f"{n!r} was {a!r} and is {b!r}" for n, (a, b) in changed.items())
            raise ValueError(f"X's modalities are of other kinds than the fit's: {what}; give "
                             "each modality in the kind of the fit.")
        data = dict(iter(X))
        for name, table in spec["tables"].items():
            x = data[name]
            columns = list(x.columns) if isinstance(x, pd.DataFrame) else None
            if columns != table["columns"]:
                raise ValueError(f"modality {name!r} was fitted as a DataFrame with the "
                                 f"columns {table['columns'][:10]} (categorical ones among "
                                 f"them), and X gives {columns[:10] if columns else 'an array'}"
                                 "; give a DataFrame of those columns, in that order.")

    def _keep_importance(self, val: Any) -> None:
        """``modality_importance_`` after a fit on Modalities with validation rows ``val``
        (the packed validation data; None: no attribute)."""
        self.__dict__.pop("modality_importance_", None)
        if val is not None and getattr(self, "modalities_", None) is not None:
            from .modality_use import importance_after_fit

            self.modality_importance_ = importance_after_fit(self, val)

    def _encoder_options(self, kinds: dict[str, str]) -> dict[str, dict]:
        """``trunk`` for a Modalities: ``{modality: {option: value}}``, each modality's
        options checked against its encoder's (``TABLE_OPTIONS`` for a table)."""
        given = self.trunk or {}
        if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
            raise ValueError(f"trunk={given!r:.80}: with a Modalities X, trunk gives each "
                             "modality's encoder options by name, e.g. trunk={'image': "
                             "{'channels': (16, 32)}, 'title': {'dim': 32}}.")
        unknown = [k for k in given if k not in kinds]
        if unknown:
            raise ValueError(f"trunk names {unknown[:5]}, which are not modalities of X "
                             f"{list(kinds)}.")
        for name, options in given.items():
            allowed = TABLE_OPTIONS if kinds[name] == "table" else TRUNK_OPTIONS[kinds[name]]
            bad = [k for k in options if k not in allowed]
            if bad:
                raise ValueError(f"trunk[{name!r}]: {bad[0]!r:.40} is not an option of the "
                                 f"encoder of {kinds[name]} input; those are {list(allowed)}.")
        return {k: dict(given.get(k, {})) for k in kinds}

    def _modal_encoder(self) -> FusedTrunk:
        """The fused trunk: each modality's default encoder (the module's table) with its
        ``trunk`` options."""
        spec = self.modalities_
        options = self._encoder_options(spec["kinds"])
        encoders: dict[str, Any] = {}
        for name in spec["names"]:
            kind, size, kw = spec["kinds"][name], spec["sizes"][name], options[name]
            if kind == "images":
                encoders[name] = ConvTrunk(size[0], **kw)
            elif kind == "table":
                vocab = spec["tables"].get(name, {}).get("categories", [])
                encoders[name] = TableTrunk(size[0], categories=[len(v) for _, v in vocab],
                                            **kw)
            elif kind == "text":
                encoders[name] = TextTrunk(size[0], **{"padding_idx": Tokenizer.PADDING_ID,
                                                       **kw})
            else:  # tokens, sparse
                encoders[name] = TextTrunk(size[0], **kw)
        fusion, p = self._modal_options(True)
        return FusedTrunk(encoders, fusion=fusion, modality_dropout=p)

    @staticmethod
    def modalities_from_json(value: Any) -> dict:
        """``modalities_`` as saved, checked (names, kinds, sizes, tokenizers)."""
        ok = (isinstance(value, dict)
              and set(value) == {"names", "kinds", "sizes", "tokenizers", "tables"}
              and isinstance(value["names"], list) and 1 <= len(value["names"]) <= 64
              and all(isinstance(n, str) and n.isidentifier() and not n.startswith("_")
                      for n in value["names"])
              and len(set(value["names"])) == len(value["names"])
              and isinstance(value["kinds"], dict) and isinstance(value["sizes"], dict)
              and isinstance(value["tokenizers"], dict) and isinstance(value["tables"], dict)
              and all(value["kinds"].get(n) == "table" and isinstance(t, dict)
                      and set(t) == {"columns", "categories"} and isinstance(t["columns"], list)
                      and all(isinstance(c, str) for c in t["columns"])
                      for n, t in value["tables"].items())
              and set(value["kinds"]) == set(value["names"]) == set(value["sizes"])
              and all(value["kinds"][n] in MODALITY_KINDS for n in value["names"])
              and set(value["tokenizers"]) == {n for n in value["names"]
                                               if value["kinds"][n] == "text"}
              and all(isinstance(s, list) and len(s) == (3 if value["kinds"][n] == "images"
                                                         else 1)
                      and all(type(v) is int and 1 <= v < 2**31 for v in s)
                      for n, s in value["sizes"].items()))
        if not ok:
            raise ValueError("attribute 'modalities_' is not the names, kinds, sizes, "
                             "tokenizers and tables of modalities")
        for name, table in value["tables"].items():
            codes = ColumnCodes.from_json(table["categories"])
            if not set(codes.columns) <= set(table["columns"]) \
                    or len(table["columns"]) != value["sizes"][name][0]:
                raise ValueError(f"attribute 'modalities_': the table {name!r} does not fit "
                                 "its columns and size")
        for name, tok in value["tokenizers"].items():
            if Tokenizer.from_json(tok).n_ids != value["sizes"][name][0]:
                raise ValueError(f"attribute 'modalities_': the tokenizer of {name!r} does not "
                                 "fit its size")
        return value
