r"""Feature columns: the named fields of a recommender log or a table as one flat input.

A row of a log is a handful of named fields: ids (user, item, city), multi-valued ids (the
items clicked before, tags) and numbers (price, age). :class:`FeatureColumns` maps a dict
``{name: tensor}`` of them to one float tensor of shape (B, ``out_features``), which the MLP
trunk, experts and gates of a net read:

.. math::

    z = \big[\,E_1[\tilde c_1],\ \dots,\ \mathrm{pool}_{l \in S} E_s[\tilde c_{s l}],\ \dots,\
        (x_1 - \mu_1) / \sigma_1,\ \dots\,\big]

(the embeddings of the id columns in their order, then the standardized numeric columns in
theirs).

====================  ===============================  ======================================
column                input (batch of B rows)          output width
====================  ===============================  ======================================
:class:`Categorical`  integer codes (B,) or (B, 1)     ``dim``: the code's embedding row
:class:`IdSequence`   integer codes (B, L), padded     ``dim``: mean, sum or max of the rows
:class:`Numeric`      floats (B,) or (B, ``width``)    ``width``: :math:`(x - \mu) / \sigma`
====================  ===============================  ======================================

**Codes and the OOV bucket.** An id column of ``vocab_size`` V has codes 0..V-1 and an
embedding table of V + 1 rows; row V is the out-of-vocabulary (OOV) bucket: every code outside
[0, V) (an id unseen in training, a negative code) reads it,
:math:`\tilde c = c` if :math:`0 \le c < V`, else :math:`V`. In training mode each code is
also sent to the bucket with probability ``oov_rate`` (default 0.01, PyTorch's global random
generator, so the trainer's seed fixes it): the bucket learns the average of rare ids and an
unseen id at prediction gets that average rather than a random vector. The bucket starts at
zero. In a :class:`IdSequence`, positions holding the ``padding`` value (default -1) are
padding: they are not ids and contribute nothing.

**Sizes.** ``dim=None`` takes fastai's rule of thumb
:math:`\min(64, \operatorname{round}(1.6\, n^{0.56}))`, at least 2, with :math:`n = V + 1`
(:func:`embedding_dim`; fastai caps it at 600). The config holds the resolved size, so a saved
encoder does not depend on the rule.

**Numbers** are standardized by the mean and standard deviation of the training rows, kept as
float64 buffers in the ``state_dict`` (the identity until :meth:`FeatureColumns.adapt` or
:meth:`FeatureColumns.set_numeric_stats`); :meth:`FeatureColumns.adapt` computes them exactly
in one pass over batches with Chan et al.'s pairwise update.

The columns follow the feature specs of the recommender libraries (DeepCTR's ``SparseFeat``,
``VarLenSparseFeat`` and ``DenseFeat``; torch-rechub's ``SparseFeature``, ``SequenceFeature``
and ``DenseFeature``).

References
----------
- Howard & Gugger (2020). Fastai: a layered API for deep learning. Information 11(2), 108
  (``fastai.tabular.model.emb_sz_rule``).
- Chan, Golub & LeVeque (1983). Algorithms for computing the sample variance: analysis and
  recommendations. The American Statistician 37, 242-247.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._torch import torch
from .checks import check_choice, check_float, check_int, check_keys

nn = torch.nn
F = torch.nn.functional
_F64 = torch.float64

__all__ = ["Categorical", "IdSequence", "Numeric", "FeatureColumns", "embedding_dim"]

#: caps on the sizes a config may ask for (configs come from untrusted checkpoint files)
MAX_VOCAB = 2**31
MAX_DIM = 2**16
MAX_COLUMNS = 4096
MAX_NAME = 256
POOLINGS = ("mean", "sum", "max")


def _dense(x: Any, what: str) -> torch.Tensor:
    """``x`` as a dense (strided) tensor, or a ValueError naming it."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} is a {type(x).__name__}; it must be a torch.Tensor.")
    if x.layout != torch.strided:
        raise ValueError(f"{what} is a sparse tensor ({x.layout}); this column reads a dense "
                         "tensor (x.to_dense()).")
    return x


def _id_codes(x: Any, what: str) -> torch.Tensor:
    """Integer (or bool) codes as int64, or a ValueError naming the input."""
    x = _dense(x, what)
    if x.is_floating_point() or x.is_complex():
        raise ValueError(f"{what} has dtype {str(x.dtype).replace('torch.', '')}; an id column "
                         "needs integer codes (int64).")
    return x.long()


def to_bucket(codes: torch.Tensor, vocab_size: int, rate: float, training: bool
              ) -> torch.Tensor:
    """Codes outside [0, V) -> V (the OOV bucket); in training, any code with prob. ``rate``."""
    codes = torch.where((codes >= 0) & (codes < vocab_size), codes, vocab_size)
    if training and rate > 0:
        drop = torch.rand(codes.shape, device=codes.device) < rate
        codes = codes.masked_fill(drop, vocab_size)
    return codes


def pool_bags(codes: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor, mode: str
              ) -> torch.Tensor:
    """Pool the rows ``weight[codes]`` of each row of ``codes`` (B, L) over its valid positions.

    ``embedding_bag`` without a Python loop: sum and mean weight the positions by the mask
    (per-sample weights), max gathers the valid positions into bags (offsets). A row without
    valid positions gives zeros.
    """
    B, L = codes.shape
    if B == 0 or L == 0:
        return weight.new_zeros(B, weight.shape[1])
    if mode == "max":
        counts = valid.sum(1)
        offsets = torch.zeros_like(counts)
        torch.cumsum(counts[:-1], 0, out=offsets[1:])
        return F.embedding_bag(codes[valid], weight, offsets, mode="max")
    w = valid.to(weight.dtype)
    out = F.embedding_bag(codes, weight, per_sample_weights=w, mode="sum")
    if mode == "mean":
        out = out / w.sum(1, keepdim=True).clamp(min=1.0)
    return out


def embedding_dim(n_categories: int) -> int:
    r"""The embedding size of a categorical column: fastai's rule of thumb, capped at 64.

    .. math::

        d(n) = \max\big(2, \min(64, \operatorname{round}(1.6\, n^{0.56}))\big)

    (Howard & Gugger 2020, ``fastai.tabular.model.emb_sz_rule``, which caps at 600). The
    columns call it with :math:`n` = ``vocab_size`` + 1, the OOV bucket included.

    Parameters
    ----------
    n_categories : int
        Number of rows of the embedding table (>= 1).

    Returns
    -------
    int
        The size, in 2..64.

    Raises
    ------
    ValueError
        If ``n_categories`` is not an integer >= 1.

    Examples
    --------
    >>> from regmtl.deep.features import embedding_dim
    >>> [embedding_dim(n) for n in (2, 3, 11, 101, 1001, 10**6)]
    [2, 3, 6, 21, 64, 64]
    """
    n = check_int(n_categories, "n_categories", 1, 2 * MAX_VOCAB)
    return max(2, min(64, round(1.6 * n**0.56)))


# ---------------------------------------------------------------------- the columns
def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"name must be a non-empty string of at most {MAX_NAME} characters, "
                         f"got {name!r:.80}.")
    return name


@dataclass(frozen=True)
class _Embedded:
    """What the two id columns share: a name, V known codes and an embedding of size dim."""

    name: str
    vocab_size: int
    dim: int | None = None

    def __post_init__(self) -> None:
        _set(self, name=_check_name(self.name),
             vocab_size=check_int(self.vocab_size, "vocab_size", 1, MAX_VOCAB))
        dim = embedding_dim(self.vocab_size + 1) if self.dim is None else self.dim
        _set(self, dim=check_int(dim, "dim", 1, MAX_DIM))

    @property
    def out_features(self) -> int:
        """Output width: ``dim``."""
        return self.dim

    def to_config(self) -> dict:
        """The column as a JSON-able dict (``kind`` and the constructor arguments)."""
        return {"kind": self.kind, "name": self.name, "vocab_size": self.vocab_size,
                "dim": self.dim}


@dataclass(frozen=True)
class Categorical(_Embedded):
    r"""An id or categorical column: one integer code per row, read as an embedding row.

    The output of a row with code :math:`c` is :math:`E[\tilde c]`, a row of the table
    :math:`E` of shape (``vocab_size`` + 1, ``dim``); :math:`\tilde c = c` for
    :math:`0 \le c <` ``vocab_size`` and the OOV bucket ``vocab_size`` otherwise (and, in
    training, with probability ``oov_rate``: see :class:`FeatureColumns`).

    Parameters
    ----------
    name : str
        The key of the column in the input dict.
    vocab_size : int
        Number of known codes V: codes are 0..V-1 (1 <= V <= 2**31).
    dim : int, optional
        Embedding size (1..65536); default :func:`embedding_dim` (``vocab_size`` + 1).

    See Also
    --------
    regmtl.deep.FeatureColumns : Builds the tables and reads the columns.

    Examples
    --------
    >>> from regmtl.deep.features import Categorical
    >>> Categorical("city", 99)
    Categorical(name='city', vocab_size=99, dim=21)
    """

    kind: ClassVar[str] = "categorical"


@dataclass(frozen=True)
class IdSequence(_Embedded):
    r"""A multi-valued id column: a padded row of codes per sample, pooled into one vector.

    A row of codes :math:`c_1, \dots, c_L` with non-padding positions :math:`S` gives

    .. math::

        \text{mean: } \frac{1}{|S|} \sum_{l \in S} E[\tilde c_l], \qquad
        \text{sum: } \sum_{l \in S} E[\tilde c_l], \qquad
        \text{max: } \max_{l \in S} E[\tilde c_l] \text{ (entrywise)},

    and zeros when :math:`S` is empty. :math:`\tilde c` is the code or the OOV bucket, as
    for :class:`Categorical`. Pooled by ``torch.nn.functional.embedding_bag`` (no loop over
    rows).

    Parameters
    ----------
    name : str
        The key of the column in the input dict.
    vocab_size : int
        Number of known codes V: codes are 0..V-1 (1 <= V <= 2**31).
    dim : int, optional
        Embedding size (1..65536); default :func:`embedding_dim` (``vocab_size`` + 1).
    pooling : {"mean", "sum", "max"}, default="mean"
        How the rows of a sample are combined.
    padding : int, default=-1
        The code that fills a row up to the length L: it is not an id and contributes
        nothing. Any other code outside [0, V) is OOV. A value in [0, V) makes that code
        padding (its row of the table is then never read).

    See Also
    --------
    regmtl.deep.FeatureColumns : Builds the tables and reads the columns.

    Examples
    --------
    >>> from regmtl.deep.features import IdSequence
    >>> IdSequence("clicked", 1000, dim=8, pooling="max")
    IdSequence(name='clicked', vocab_size=1000, dim=8, pooling='max', padding=-1)
    """

    pooling: str = "mean"
    padding: int = -1
    kind: ClassVar[str] = "sequence"

    def __post_init__(self) -> None:
        super().__post_init__()
        _set(self, pooling=check_choice(self.pooling, "pooling", POOLINGS),
             padding=check_int(self.padding, "padding", -MAX_VOCAB, MAX_VOCAB))

    def to_config(self) -> dict:
        """The column as a JSON-able dict (``kind`` and the constructor arguments)."""
        return {**super().to_config(), "pooling": self.pooling, "padding": self.padding}


@dataclass(frozen=True)
class Numeric:
    r"""A numeric column of ``width`` floats per row, standardized: :math:`(x - \mu) / \sigma`.

    :math:`\mu` and :math:`\sigma` (one per entry; float64 buffers of the encoder) are the
    identity (0 and 1) until :meth:`FeatureColumns.adapt` or
    :meth:`FeatureColumns.set_numeric_stats` sets them. NaN or infinite values are refused.

    Parameters
    ----------
    name : str
        The key of the column in the input dict.
    width : int, default=1
        Floats per row (1..65536): the input is (B,) (width 1) or (B, width).

    See Also
    --------
    regmtl.deep.FeatureColumns : Reads and standardizes the columns.

    Examples
    --------
    >>> from regmtl.deep.features import Numeric
    >>> Numeric("price").out_features, Numeric("position", width=2).out_features
    (1, 2)
    """

    name: str
    width: int = 1
    kind: ClassVar[str] = "numeric"

    def __post_init__(self) -> None:
        _set(self, name=_check_name(self.name),
             width=check_int(self.width, "width", 1, MAX_DIM))

    @property
    def out_features(self) -> int:
        """Output width: ``width``."""
        return self.width

    def to_config(self) -> dict:
        """The column as a JSON-able dict (``kind`` and the constructor arguments)."""
        return {"kind": self.kind, "name": self.name, "width": self.width}


def _set(obj: Any, **values: Any) -> None:
    for k, v in values.items():
        object.__setattr__(obj, k, v)


_COLUMNS = {c.kind: c for c in (Categorical, IdSequence, Numeric)}
_COLUMN_KEYS = {"categorical": {"kind", "name", "vocab_size", "dim"},
                "sequence": {"kind", "name", "vocab_size", "dim", "pooling", "padding"},
                "numeric": {"kind", "name", "width"}}


def _column_from_config(entry: Any, where: str) -> Categorical | IdSequence | Numeric:
    """A column from its config, every entry checked strictly (types and ranges)."""
    if not isinstance(entry, dict) or entry.get("kind") not in _COLUMNS:
        raise ValueError(f"{where} must be a dict with 'kind' in {sorted(_COLUMNS)}, got "
                         f"{entry!r:.80}.")
    kind = entry["kind"]
    check_keys(entry, where, _COLUMN_KEYS[kind], ("name",) if kind == "numeric"
               else ("name", "vocab_size"))
    kw = {k: v for k, v in entry.items() if k != "kind"}
    try:
        _check_name(kw["name"])
        if kind == "numeric":
            check_int(kw.get("width", 1), "width", 1, MAX_DIM, strict=True)
        else:
            check_int(kw["vocab_size"], "vocab_size", 1, MAX_VOCAB, strict=True)
            if kw.get("dim") is not None:
                check_int(kw["dim"], "dim", 1, MAX_DIM, strict=True)
        if kind == "sequence":
            check_choice(kw.get("pooling", "mean"), "pooling", POOLINGS)
            check_int(kw.get("padding", -1), "padding", -MAX_VOCAB, MAX_VOCAB, strict=True)
        return _COLUMNS[kind](**kw)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------- the encoder
class _Standardize(nn.Module):
    """(x - mean) / std with float64 buffers, and whether they were set."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width, dtype=_F64))
        self.register_buffer("std", torch.ones(width, dtype=_F64))
        self.register_buffer("adapted", torch.zeros((), dtype=torch.bool))

    def set(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std))
        self.adapted.fill_(True)

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return ((x.to(self.mean.device, _F64) - self.mean) / self.std).to(dtype)

    def extra_repr(self) -> str:
        return f"width={self.mean.shape[0]}"


def _merge(acc: list[torch.Tensor], nb: float, mb: torch.Tensor, m2b: torch.Tensor) -> None:
    """Chan et al.'s pairwise update of [n, mean, M2] (in place in ``acc``)."""
    na, ma, m2a = acc
    n = na + nb
    if n == 0:
        return
    delta = mb - ma
    frac = nb / n
    acc[0], acc[1], acc[2] = n, ma + delta * frac, m2a + m2b + delta**2 * na * frac


class FeatureColumns(nn.Module):
    r"""An encoder of named columns: ids embedded, sequences pooled, numbers standardized.

    Maps a dict ``{name: tensor}`` with one entry per column to the float tensor

    .. math::

        z = \big[\,E_1[\tilde c_1],\ \dots,\ \mathrm{pool}_{l} E_s[\tilde c_{s l}],\ \dots,\
            (x_1 - \mu_1) / \sigma_1,\ \dots\,\big] \in \R^{B \times \text{out\_features}}

    the id columns (:class:`Categorical`, :class:`IdSequence`) in their order, then the
    :class:`Numeric` ones in theirs. Every id column has its own table of ``vocab_size`` + 1
    rows, the last the OOV bucket (codes outside [0, ``vocab_size``) read it; it starts at
    zero). In training mode each code goes to the bucket with probability ``oov_rate``, so
    the bucket learns the average of rare ids; in evaluation mode only out-of-range codes do.

    Parameters
    ----------
    columns : sequence of Categorical, IdSequence or Numeric
        The columns (at least one, unique names).
    oov_rate : float, default=0.01
        Probability that a code is replaced by the OOV bucket in training, in [0, 1); 0
        disables it. Draws from PyTorch's global generator (the trainer's seed fixes them).

    Attributes
    ----------
    columns : tuple
        The columns, in the given order.
    out_features : int
        Width of the output: the sum of the embedding sizes and numeric widths.
    slices : dict of str to slice
        Where each column's block lies in the output.
    embeddings : torch.nn.ModuleList
        The table of each id column (``torch.nn.Embedding``), in order.
    numerics : torch.nn.ModuleList
        The float64 buffers ``mean``, ``std`` and the flag ``adapted`` of each numeric column.

    Raises
    ------
    ValueError
        If ``columns`` is empty, holds something else than a column or repeats a name, or
        ``oov_rate`` is outside [0, 1).

    See Also
    --------
    regmtl.deep.ConvTrunk : The encoder of images.
    regmtl.deep.TextTrunk : The encoder of token ids and bags of words.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.features import Categorical, FeatureColumns, Numeric, IdSequence
    >>> enc = FeatureColumns([Categorical("user", 100, dim=4),
    ...                       IdSequence("clicked", 50, dim=3),
    ...                       Numeric("price")])
    >>> enc.out_features, enc.needs_adapt()
    (8, True)
    >>> batch = {"user": torch.tensor([3, 7]),
    ...          "clicked": torch.tensor([[1, 2, -1], [5, -1, -1]]),
    ...          "price": torch.tensor([9.5, 12.0])}
    >>> enc.adapt([batch]).needs_adapt()
    False
    >>> tuple(enc.eval()(batch).shape)
    (2, 8)
    >>> enc(batch)[:, 7].tolist()
    [-1.0, 1.0]

    An unseen id reads the OOV bucket (the last row of its table):

    >>> out = enc({**batch, "user": torch.tensor([100, -5])})
    >>> torch.equal(out[:, :4], enc.embeddings[0].weight[100].expand(2, 4))
    True
    """

    def __init__(self, columns: Iterable[Categorical | IdSequence | Numeric], *,
                 oov_rate: float = 0.01):
        super().__init__()
        if isinstance(columns, (Categorical, IdSequence, Numeric)):
            columns = [columns]
        cols = tuple(columns)
        if not 1 <= len(cols) <= MAX_COLUMNS:
            raise ValueError(f"columns: give 1..{MAX_COLUMNS} columns, got {len(cols)}.")
        bad = [c for c in cols if not isinstance(c, (Categorical, IdSequence, Numeric))]
        if bad:
            raise ValueError(f"columns: {bad[0]!r:.80} is not a column; use Categorical, "
                             "IdSequence or Numeric.")
        names = [c.name for c in cols]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"columns: names must be unique, {dup} repeat.")
        self.oov_rate = check_float(oov_rate, "oov_rate", 0.0, 1.0)
        self.columns = cols
        self.id_columns = [c for c in cols if not isinstance(c, Numeric)]
        self.numeric_columns = [c for c in cols if isinstance(c, Numeric)]
        self.embeddings = nn.ModuleList(nn.Embedding(c.vocab_size + 1, c.dim)
                                        for c in self.id_columns)
        with torch.no_grad():
            for c, emb in zip(self.id_columns, self.embeddings, strict=True):
                emb.weight[c.vocab_size].zero_()
        self.numerics = nn.ModuleList(_Standardize(c.width) for c in self.numeric_columns)
        self.slices: dict[str, slice] = {}
        start = 0
        for c in self.id_columns + self.numeric_columns:
            self.slices[c.name] = slice(start, start + c.out_features)
            start += c.out_features
        self.out_features = start

    # ------------------------------------------------------------------ reading the inputs
    def _inputs(self, inputs: Any, what: str = "inputs") -> Mapping:
        if not isinstance(inputs, Mapping):
            raise ValueError(f"{what} is a {type(inputs).__name__}; FeatureColumns reads a dict "
                             f"{{name: tensor}} with the keys {list(self.slices)}.")
        missing = [c.name for c in self.columns if c.name not in inputs]
        unknown = [k for k in inputs if k not in self.slices]
        if missing or unknown:
            raise ValueError(f"{what} has the keys {list(inputs)[:20]}; FeatureColumns expects "
                             f"exactly {list(self.slices)[:20]}"
                             + (f" (missing {missing[:10]})" if missing else "")
                             + (f" (unknown {unknown[:10]})" if unknown else "") + ".")
        return inputs

    def _numeric(self, col: Numeric, x: Any, what: str) -> torch.Tensor:
        x = _dense(x, what)
        if not x.is_floating_point():
            raise ValueError(f"{what} has dtype {str(x.dtype).replace('torch.', '')}; a numeric "
                             "column needs floats (float32): cast integer values to float.")
        if x.ndim == 1 and col.width == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != col.width:
            want = "(batch,) or (batch, 1)" if col.width == 1 else f"(batch, {col.width})"
            raise ValueError(f"{what} has shape {tuple(x.shape)}; numeric column {col.name!r} "
                             f"takes {want}.")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{what} contains NaN or infinity; numeric column {col.name!r} "
                             "needs finite values (impute them first).")
        return x

    def _codes(self, col: Categorical | IdSequence, x: Any, what: str) -> torch.Tensor:
        codes = _id_codes(x, what)
        if isinstance(col, Categorical):
            if codes.ndim == 2 and codes.shape[1] == 1:
                codes = codes[:, 0]
            if codes.ndim != 1:
                raise ValueError(f"{what} has shape {tuple(codes.shape)}; categorical column "
                                 f"{col.name!r} takes one code per row, (batch,) or (batch, 1) "
                                 "(a IdSequence column reads several).")
        elif codes.ndim != 2:
            raise ValueError(f"{what} has shape {tuple(codes.shape)}; sequence column "
                             f"{col.name!r} takes (batch, length) codes padded with "
                             f"{col.padding}.")
        return codes

    @staticmethod
    def _same_batch(sizes: dict[str, int], what: str) -> None:
        if len(set(sizes.values())) > 1:
            raise ValueError(f"{what}: the columns have different batch sizes {sizes}; each "
                             "needs one row per sample.")

    def _dtype(self) -> torch.dtype:
        return self.embeddings[0].weight.dtype if len(self.embeddings) else torch.float32

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The encoded batch.

        Parameters
        ----------
        inputs : dict of str to Tensor
            One entry per column, exactly the columns' names: integer codes for the id
            columns, floats for the numeric ones, all with the same batch size B.

        Returns
        -------
        Tensor of shape (B, out_features)
            The embeddings of the id columns, then the standardized numbers.

        Raises
        ------
        ValueError
            On a missing or unknown key, float codes, integer numbers, a wrong shape, NaN or
            infinite numbers, or columns of different batch sizes.
        """
        inputs = self._inputs(inputs)
        parts, sizes = [], {}
        for col, emb in zip(self.id_columns, self.embeddings, strict=True):
            what = f"inputs[{col.name!r}]"
            codes = self._codes(col, inputs[col.name], what).to(emb.weight.device)
            sizes[col.name] = int(codes.shape[0])
            if isinstance(col, Categorical):
                codes = to_bucket(codes, col.vocab_size, self.oov_rate, self.training)
                parts.append(F.embedding(codes, emb.weight))
            else:
                valid = codes != col.padding
                codes = to_bucket(codes, col.vocab_size, self.oov_rate, self.training)
                parts.append(pool_bags(codes, valid, emb.weight, col.pooling))
        dtype = self._dtype()
        for col, std in zip(self.numeric_columns, self.numerics, strict=True):
            x = self._numeric(col, inputs[col.name], f"inputs[{col.name!r}]")
            sizes[col.name] = int(x.shape[0])
            parts.append(std(x, dtype))
        self._same_batch(sizes, "inputs")
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ numeric statistics
    def needs_adapt(self) -> bool:
        """Whether some numeric column has no statistics yet (see :meth:`adapt`).

        Returns
        -------
        bool
            True until every numeric column was adapted or set; False without numeric columns.
        """
        return any(not bool(m.adapted) for m in self.numerics)

    def adapt(self, batches: Iterable[Any],
              gather: Callable[[torch.Tensor], list[torch.Tensor]] | None = None
              ) -> FeatureColumns:
        r"""Set the mean and standard deviation of every numeric column from training batches.

        One pass; each batch's count, mean and sum of squared deviations are merged in float64
        by Chan et al.'s pairwise update, so the result is the exact (population) mean and
        standard deviation of all rows, in any batch order. A constant column gets
        :math:`\sigma = 1` (only its mean is removed).

        Parameters
        ----------
        batches : iterable of dict
            Input dicts as :meth:`forward` reads them (or ``(inputs, targets)`` pairs, whose
            first item is used).
        gather : callable, optional
            ``gather(tensor) -> list of tensors``, one per rank
            (:meth:`~regmtl.deep.distributed.Context.gather`): the statistics of all ranks are
            merged, in rank order, so every rank gets the same.

        Returns
        -------
        FeatureColumns
            ``self``.

        Raises
        ------
        ValueError
            If a batch fails the checks of :meth:`forward` or the batches hold no rows.
        """
        accs = [[0.0, torch.zeros(c.width, dtype=_F64), torch.zeros(c.width, dtype=_F64)]
                for c in self.numeric_columns]
        for item in batches:
            if isinstance(item, (tuple, list)) and item:
                item = item[0]
            inputs = self._inputs(item, "adapt: a batch")
            sizes = {}
            for col, acc in zip(self.numeric_columns, accs, strict=True):
                x = self._numeric(col, inputs[col.name], f"adapt: batch[{col.name!r}]")
                x = x.detach().to("cpu", _F64)
                sizes[col.name] = nb = int(x.shape[0])
                if nb:
                    mb = x.mean(0)
                    _merge(acc, float(nb), mb, ((x - mb) ** 2).sum(0))
            self._same_batch(sizes, "adapt: a batch")
        if gather is not None and accs:
            flat = torch.cat([torch.cat([torch.tensor([a[0]], dtype=_F64), a[1], a[2]])
                              for a in accs])
            parts = gather(flat)
            accs = [[0.0, torch.zeros(c.width, dtype=_F64), torch.zeros(c.width, dtype=_F64)]
                    for c in self.numeric_columns]
            for part in parts:
                part, i = part.to("cpu", _F64), 0
                for col, acc in zip(self.numeric_columns, accs, strict=True):
                    w = col.width
                    _merge(acc, float(part[i]), part[i + 1:i + 1 + w],
                           part[i + 1 + w:i + 1 + 2 * w])
                    i += 1 + 2 * w
        if any(a[0] == 0 for a in accs):
            raise ValueError("adapt: the batches hold no rows; pass the training batches "
                             "(an iterable of input dicts).")
        for col, acc in zip(self.numeric_columns, accs, strict=True):
            n, mean, m2 = acc
            std = torch.sqrt(m2 / n)
            constant = (std == 0) | (std <= 1e-12 * mean.abs())
            self._set_stats(col.name, mean, torch.where(constant, torch.ones_like(std), std))
        return self

    def set_numeric_stats(self, name: str, mean: Any, std: Any) -> None:
        """Set the standardization of numeric column ``name`` by hand.

        Parameters
        ----------
        name : str
            A numeric column.
        mean : float or array-like of shape (width,)
            Its mean(s), finite.
        std : float or array-like of shape (width,)
            Its standard deviation(s), finite and > 0.

        Returns
        -------
        None

        Raises
        ------
        ValueError
            If ``name`` is not a numeric column or the values have the wrong size or range.
        """
        names = [c.name for c in self.numeric_columns]
        if name not in names:
            raise ValueError(f"name: {name!r:.80} is not a numeric column; they are {names}.")
        width = self.numeric_columns[names.index(name)].width
        vals = []
        for what, v in (("mean", mean), ("std", std)):
            try:
                arr = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v,
                                 dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.array([np.nan])
            t = torch.from_numpy(arr.copy()).reshape(-1)
            if t.numel() == 1:
                t = t.expand(width)
            if t.numel() != width or not bool(torch.isfinite(t).all()):
                raise ValueError(f"{what} of column {name!r} must be {width} finite value(s), "
                                 f"got {v!r:.80}.")
            vals.append(t)
        if not bool((vals[1] > 0).all()):
            raise ValueError(f"std of column {name!r} must be > 0, got {std!r:.80}.")
        self._set_stats(name, *vals)

    def _set_stats(self, name: str, mean: torch.Tensor, std: torch.Tensor) -> None:
        i = [c.name for c in self.numeric_columns].index(name)
        self.numerics[i].set(mean, std)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """The constructor arguments, JSON-able (:meth:`from_config` reads them back).

        Returns
        -------
        dict
            ``columns`` (each a dict with its ``kind``) and ``oov_rate``.
        """
        return {"columns": [c.to_config() for c in self.columns], "oov_rate": self.oov_rate}

    @classmethod
    def from_config(cls, config: dict) -> FeatureColumns:
        """The encoder a config describes, every entry checked (configs are untrusted).

        Parameters
        ----------
        config : dict
            As written by :meth:`config`.

        Returns
        -------
        FeatureColumns
            A new encoder (fresh weights; load the ``state_dict`` for the saved ones).

        Raises
        ------
        ValueError
            On an unknown or missing key, a value of the wrong type (``True`` for an integer),
            a size beyond the caps (vocabularies 2**31, sizes 2**16, 4096 columns), naming it.
        """
        what = "FeatureColumns config"
        check_keys(config, what, {"columns", "oov_rate"}, ("columns",))
        columns = config["columns"]
        if not isinstance(columns, list) or not 1 <= len(columns) <= MAX_COLUMNS:
            raise ValueError(f"{what}: 'columns' must be a list of 1..{MAX_COLUMNS} columns.")
        cols = [_column_from_config(c, f"{what}: columns[{i}]") for i, c in enumerate(columns)]
        try:
            rate = check_float(config.get("oov_rate", 0.01), "oov_rate", 0.0, 1.0, strict=True)
            return cls(cols, oov_rate=rate)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None

    def extra_repr(self) -> str:
        return ", ".join(f"{c.name!r}: {c.kind} " + (f"{c.width}" if isinstance(c, Numeric)
                                                      else f"{c.vocab_size} -> {c.dim}")
                         for c in self.columns)
