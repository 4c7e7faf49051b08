r"""One encoder per modality, fused into the flat vector the nets read (:class:`FusedTrunk`),
and a small encoder of numeric tables (:class:`TableTrunk`).

:class:`FusedTrunk` reads the dict :meth:`regmtl.deep.Modalities.carried` gives: one input per
modality and the bool mask ``MISSING_KEY`` (B, M). Encoder :math:`j` maps its input to
:math:`h_j \in \mathbb{R}^{d_j}`; where modality :math:`j` is missing in a row (or dropped by
``modality_dropout`` in training), :math:`h_j` is replaced by a learned vector
:math:`m_j` (the modality's "missing" embedding), so a missing modality never reaches the
fused vector as data and never as NaN. In training each encoder reads only its modality's
present rows (batch normalization's statistics never see a missing row); in evaluation it
reads every row (each row on its own) and the missing ones are replaced after. With
:math:`z = [h_1; \dots; h_M]`:

- ``fusion="concat"``: the output is :math:`z`, of width :math:`\sum_j d_j`;
- ``fusion="gated"``: each :math:`h_j` is projected to a common width :math:`d`,
  :math:`u_j = W_j h_j + b_j`, gates are computed from the concatenation,
  :math:`g = V z + c \in \mathbb{R}^M`, and the output is

  .. math::

      y = \sum_{j=1}^{M} a_j\, u_j, \qquad
      a = \mathrm{softmax}(g) \;\; (\textstyle\sum_j a_j = 1) \quad\text{or}\quad
      a_j = \sigma(g_j) \;\; (\text{each in } (0, 1)),

  of width :math:`d` (``gate="softmax"`` or ``"sigmoid"``).

``modality_dropout`` :math:`p` drops each available modality of each training row with
probability :math:`p` (its vector becomes :math:`m_j`, as if missing); a row whose every
available modality would be dropped keeps one of them, chosen at random, so no row is left
without data. Nothing is dropped in ``eval()`` mode.

Both classes are registered in ``regmtl.deep.trunks.ENCODERS``, so
``encoder_from_config(name, module.config())`` rebuilds them (a fused trunk's encoders must be
registered encoders themselves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._torch import torch
from .checks import check_choice, check_float, check_int, check_keys
from .features import MAX_DIM, Categorical, FeatureColumns, Numeric
from .inputs import device_of, n_rows, take
from .modalities import MISSING_KEY
from .trunks import ENCODERS

nn = torch.nn

__all__ = ["FusedTrunk", "TableTrunk", "FUSIONS", "GATES"]

FUSIONS = ("concat", "gated")
GATES = ("softmax", "sigmoid")
#: the most modalities a fused trunk takes
MAX_MODALITIES = 64
#: the largest vocabulary of a table's code column (codes ride in float32, exact below 2**24)
MAX_CODE = 2**24


class TableTrunk(nn.Module):
    r"""A table (B, in_features) through its columns' encoding and ``Linear`` + ReLU layers.

    The first ``len(categories)`` columns hold integer codes (as floats: a table is one float
    matrix), each embedded by its own table of ``categories[k]`` + 1 rows (the last the
    out-of-vocabulary bucket); the other columns are numbers, standardized by the mean and
    deviation of the training rows:

    .. math::

        z = \big[E_1[c_1], \dots, E_k[c_k], (x - \mu) / \sigma\big], \qquad
        h = \mathrm{ReLU}(W_L \cdots \mathrm{ReLU}(W_1 z + b_1) \cdots + b_L)

    (a :class:`~regmtl.deep.FeatureColumns` of :class:`~regmtl.deep.Categorical` columns
    ``"c0"``, ``"c1"``, ... and one :class:`~regmtl.deep.Numeric` block ``"numeric"``).
    :math:`\mu, \sigma` are the identity until :meth:`adapt` (the trainer calls it on the
    training rows before the first step) or :meth:`set_numeric_stats`; they are buffers of
    the ``state_dict``.

    Parameters
    ----------
    in_features : int
        Columns of the table, codes included.
    hidden : sequence of int, default=(32,)
        Widths of the layers; empty: :math:`z` itself.
    categories : sequence of int, default=()
        The vocabulary size of each leading code column (codes 0..V-1; any other value reads
        the bucket).

    Attributes
    ----------
    out_features : int
        ``hidden[-1]``, or the width of :math:`z` without layers.
    columns : FeatureColumns
        The embeddings and the standardization.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TableTrunk
    >>> TableTrunk(3, (8, 4))(torch.zeros(5, 3)).shape
    torch.Size([5, 4])
    >>> trunk = TableTrunk(3, (), categories=[10])  # a code column, then two numbers
    >>> trunk.out_features  # an embedding of 6 (``embedding_dim(11)``) and the two numbers
    8
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (32,),
                 categories: Sequence[int] = ()):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1, MAX_DIM)
        if isinstance(hidden, str) or not isinstance(hidden, Sequence) or len(hidden) > 64:
            raise ValueError(f"hidden must be a list of at most 64 widths, got {hidden!r:.80}.")
        self.hidden = [check_int(h, f"hidden[{i}]", 1, MAX_DIM) for i, h in enumerate(hidden)]
        if isinstance(categories, str) or not isinstance(categories, Sequence) \
                or len(categories) > self.in_features:
            raise ValueError(f"categories must list the vocabulary sizes of at most "
                             f"in_features={self.in_features} leading code columns, got "
                             f"{categories!r:.80}.")
        self.categories = [check_int(v, f"categories[{i}]", 1, MAX_CODE)
                           for i, v in enumerate(categories)]
        self.n_numeric = self.in_features - len(self.categories)
        cols: list = [Categorical(f"c{k}", v) for k, v in enumerate(self.categories)]
        if self.n_numeric:
            cols.append(Numeric("numeric", width=self.n_numeric))
        self.columns = FeatureColumns(cols)
        layers: list[nn.Module] = []
        width = self.columns.out_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.layers = nn.Sequential(*layers)
        self.out_features = width

    def _split(self, x: Any) -> dict:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x is {got}; TableTrunk reads a table (batch, "
                             f"{self.in_features}).")
        k = len(self.categories)
        out = {f"c{j}": x[:, j].round().to(torch.int64) for j in range(k)}
        if self.n_numeric:
            out["numeric"] = x[:, k:].to(torch.float32)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoded rows (B, out_features) of a float table (B, in_features)."""
        return self.layers(self.columns(self._split(x)))

    def needs_adapt(self) -> bool:
        """Whether the numeric columns have no statistics yet (:meth:`adapt` sets them)."""
        return self.columns.needs_adapt()

    def adapt(self, batches: Any) -> TableTrunk:
        """Set the numeric columns' mean and deviation from tables (B, in_features) (or
        ``(table, targets)`` pairs), exactly, in one pass; no rows: the identity."""
        tables = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
        tables = [self._split(t) for t in tables if n_rows(t)]
        if not self.n_numeric:
            return self
        if not tables:
            self.set_numeric_stats(torch.zeros(self.n_numeric), torch.ones(self.n_numeric))
        else:
            self.columns.adapt(tables)
        return self

    def set_numeric_stats(self, mean: Any, std: Any) -> None:
        """Set the numeric columns' mean and deviation by hand (each of width
        ``in_features - len(categories)``, the deviations > 0)."""
        self.columns.set_numeric_stats("numeric", mean, std)

    def config(self) -> dict:
        """The constructor arguments, JSON-able: ``in_features``, ``hidden``,
        ``categories``."""
        return {"in_features": self.in_features, "hidden": list(self.hidden),
                "categories": list(self.categories)}

    @classmethod
    def from_config(cls, config: dict) -> TableTrunk:
        """The trunk a config describes, every entry checked (configs are untrusted)."""
        check_keys(config, "TableTrunk config", {"in_features", "hidden", "categories"},
                   ("in_features",))
        lists = {k: config.get(k, d) for k, d in (("hidden", [32]), ("categories", []))}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(type(h) is int for h in value):
                raise ValueError(f"TableTrunk config: {key} must be a list of ints, got "
                                 f"{value!r:.80}.")
        try:
            return cls(check_int(config["in_features"], "in_features", 1, MAX_DIM, strict=True),
                       lists["hidden"], lists["categories"])
        except ValueError as exc:
            raise ValueError(f"TableTrunk config: {exc}") from None


def _encoder(value: Any, name: str) -> nn.Module:
    """An encoder given as a module or as ``{"class": ..., "config": ...}``."""
    if isinstance(value, Mapping):
        if set(value) != {"class", "config"} or value["class"] not in ENCODERS \
                or value["class"] == "FusedTrunk":
            names = sorted(set(ENCODERS) - {"FusedTrunk"})
            raise ValueError(f"encoders[{name!r}] = {value!r:.80} is not one of {names} with "
                             "its config ({'class': ..., 'config': {...}}).")
        value = ENCODERS[value["class"]].from_config(value["config"])
    if not isinstance(value, nn.Module):
        raise ValueError(f"encoders[{name!r}] is a {type(value).__name__}; give a "
                         "torch.nn.Module (ConvTrunk, TextTrunk, TableTrunk, ...) or its "
                         "{'class': ..., 'config': ...}.")
    width = getattr(value, "out_features", None)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"encoders[{name!r}] ({type(value).__name__}) has no int attribute "
                         "out_features, the width of the vector it returns.")
    return value


class FusedTrunk(nn.Module):
    r"""One encoder per modality, missing modalities as learned vectors, fused into one vector.

    See the module's docstring for the math of the fusion and the gates.

    Parameters
    ----------
    encoders : mapping of str to torch.nn.Module or dict
        Per modality (the names of :class:`~regmtl.deep.Modalities`), its encoder: a module
        with an int ``out_features`` (:class:`ConvTrunk`, :class:`TextTrunk`,
        :class:`TableTrunk`, ...), or a registered encoder's ``{"class": name, "config":
        {...}}``.
    fusion : {"concat", "gated"}, default="concat"
        Concatenate the modality vectors, or mix their projections by gates.
    gate : {"softmax", "sigmoid"}, default="softmax"
        The gates of ``fusion="gated"``.
    dim : int, optional
        The common width of ``fusion="gated"`` (default: the widest encoder's).
    modality_dropout : float, default=0.0
        Probability, in training, that an available modality of a row is dropped (read as
        missing); never every modality of a row. In [0, 1).

    Attributes
    ----------
    out_features : int
        Width of the output: :math:`\sum_j d_j` (concat) or ``dim`` (gated).
    names : tuple of str
        The modalities, in the order of the mask's columns.
    encoders : torch.nn.ModuleDict
        The encoders.
    missing_embeddings : torch.nn.ParameterDict
        The learned vector :math:`m_j` per modality (zeros at the start).

    Raises
    ------
    ValueError
        On no encoder, an encoder without ``out_features``, an unknown option, or a name a
        module cannot hold.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FusedTrunk, TableTrunk, TextTrunk
    >>> trunk = FusedTrunk({"price": TableTrunk(1, (4,)), "title": TextTrunk(50, dim=6)})
    >>> trunk.out_features
    10
    >>> batch = {"price": torch.tensor([[1.0], [0.0]]), "title": torch.tensor([[3, 4], [0, 0]]),
    ...          "_missing": torch.tensor([[False, False], [True, False]])}
    >>> trunk(batch).shape
    torch.Size([2, 10])
    """

    def __init__(self, encoders: Mapping[str, Any], *, fusion: str = "concat",
                 gate: str = "softmax", dim: int | None = None, modality_dropout: float = 0.0):
        super().__init__()
        if not isinstance(encoders, Mapping) or not 1 <= len(encoders) <= MAX_MODALITIES:
            raise ValueError(f"encoders must be a dict of 1..{MAX_MODALITIES} named encoders, "
                             f"got {type(encoders).__name__}.")
        self.fusion = check_choice(fusion, "fusion", FUSIONS)
        self.gate = check_choice(gate, "gate", GATES)
        self.modality_dropout = check_float(modality_dropout, "modality_dropout", 0.0, 1.0)
        self.names = tuple(encoders)
        mods = {}
        for name, enc in encoders.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"encoder name {name!r:.60} is not an identifier that does "
                                 "not start with '_'.")
            mods[name] = _encoder(enc, name)
        try:
            self.encoders = nn.ModuleDict(mods)
        except KeyError as exc:
            raise ValueError(f"a modality name clashes with a torch module attribute ({exc}); "
                             "rename it.") from None
        widths = [m.out_features for m in mods.values()]
        self.missing_embeddings = nn.ParameterDict(
            {k: nn.Parameter(torch.zeros(w)) for k, w in zip(self.names, widths, strict=True)})
        self._dim = None if dim is None else check_int(dim, "dim", 1, MAX_DIM)
        if self.fusion == "concat":
            self.out_features = sum(widths)
            self.projections, self.gate_layer = None, None
        else:
            d = self._dim or max(widths)
            self.projections = nn.ModuleDict({k: nn.Linear(w, d) for k, w
                                              in zip(self.names, widths, strict=True)})
            self.gate_layer = nn.Linear(sum(widths), len(self.names))
            self.out_features = d

    def _mask(self, batch: Any) -> torch.Tensor:
        if not isinstance(batch, Mapping):
            raise ValueError(f"x is a {type(batch).__name__}; FusedTrunk reads a dict "
                             f"{{name: input, ..., {MISSING_KEY!r}: mask}} "
                             "(Modalities.carried()).")
        absent = [k for k in self.names if k not in batch]
        if absent:
            raise ValueError(f"the batch lacks modalities {absent}; it has {sorted(batch)}.")
        B = int(batch[self.names[0]].shape[0])
        mask = batch.get(MISSING_KEY)
        if mask is None:
            return torch.zeros(B, len(self.names), dtype=torch.bool)
        if tuple(mask.shape) != (B, len(self.names)):
            raise ValueError(f"the missing mask has shape {tuple(mask.shape)}; it needs "
                             f"({B}, {len(self.names)}) (rows, modalities {list(self.names)}).")
        return mask.bool()

    def _dropped(self, mask: torch.Tensor) -> torch.Tensor:
        """The mask with modality dropout applied (training only): each available modality
        dropped with probability p, one available modality kept in every row."""
        p = self.modality_dropout
        if not self.training or p == 0:
            return mask
        drop = (torch.rand(mask.shape, device=mask.device) < p) & ~mask
        out = mask | drop
        emptied = out.all(dim=1) & ~mask.all(dim=1)
        if bool(emptied.any()):
            score = torch.rand(mask.shape, device=mask.device).masked_fill(mask, -1.0)
            keep = score.argmax(dim=1)  # a random available modality of each row
            rows = torch.nonzero(emptied).reshape(-1)
            out[rows, keep[rows]] = False
        return out

    def modality_vectors(self, batch: Mapping[str, Any]) -> tuple[list[torch.Tensor],
                                                                    torch.Tensor]:
        """Each modality's vector (B, d_j), missing rows replaced by :math:`m_j`, and the
        mask used (B, M) (after modality dropout in training)."""
        mask = self._dropped(self._mask(batch).to(self.missing_embeddings[self.names[0]].device))
        out = []
        for j, name in enumerate(self.names):
            if self.training:
                out.append(self._present_rows(name, batch[name], mask[:, j]))
                continue
            h = self.encoders[name](batch[name])
            m = self.missing_embeddings[name].to(h.dtype)
            out.append(torch.where(mask[:, j:j + 1], m, h))
        return out, mask

    def _present_rows(self, name: str, x: Any, missing: torch.Tensor) -> torch.Tensor:
        """Modality ``name``'s vectors in training: its encoder runs on the present rows only,
        so batch statistics (batch normalization) never see a missing row's zeros. The
        missing vector and every encoder parameter stay in the graph whatever the batch holds
        (a batch with none present adds 0 times the parameters), as distributed training
        needs."""
        enc, m = self.encoders[name], self.missing_embeddings[name]
        B = missing.shape[0]
        present = torch.nonzero(~missing).reshape(-1)
        if len(present) == 0:
            zero = sum(p.sum() for p in enc.parameters()) * 0.0
            return (m + zero).expand(B, -1)
        if isinstance(x, torch.Tensor) and x.layout != torch.strided:
            return torch.where(missing[:, None], m, enc(x))  # sparse rows: no batch statistics
        h = enc(x if len(present) == B else x[present])
        return m.to(h.dtype).expand(B, -1).index_copy(0, present, h)

    def _fuse(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        hs, _ = self.modality_vectors(batch)
        z = torch.cat(hs, dim=1)
        if self.fusion == "concat":
            return z, None
        g = self.gate_layer(z)
        a = torch.softmax(g, dim=1) if self.gate == "softmax" else torch.sigmoid(g)
        u = torch.stack([self.projections[k](h) for k, h in zip(self.names, hs, strict=True)],
                        dim=1)                                        # (B, M, d)
        return (a[:, :, None] * u).sum(dim=1), a

    def forward(self, x: Mapping[str, Any]) -> torch.Tensor:
        """The fused vector (B, out_features) of a batch ``{name: input, ..., "_missing":
        mask}`` (a batch without the mask has nothing missing)."""
        return self._fuse(x)[0]

    def gates(self, x: Mapping[str, Any]) -> torch.Tensor:
        """The gate weights :math:`a` (B, M) of ``fusion="gated"`` on a batch.

        Raises
        ------
        ValueError
            With ``fusion="concat"``, which has no gates.
        """
        if self.fusion != "gated":
            raise ValueError("fusion='concat' has no gates; build the trunk with "
                             "fusion='gated'.")
        return self._fuse(x)[1]

    def needs_adapt(self) -> bool:
        """Whether an encoder learns input statistics it has not yet (a table's means and
        deviations: :meth:`adapt`)."""
        return any(getattr(e, "needs_adapt", lambda: False)() for e in self.encoders.values())

    def adapt(self, batches: Any) -> FusedTrunk:
        """One pass over training batches (dicts as :meth:`forward` reads them, or
        ``(inputs, targets)`` pairs): every encoder that needs statistics adapts on its
        modality's present rows."""
        names = [k for k, e in self.encoders.items()
                 if getattr(e, "needs_adapt", lambda: False)()]
        rows: dict[str, list] = {k: [] for k in names}
        for item in batches:
            batch = item[0] if isinstance(item, (tuple, list)) else item
            mask = self._mask(batch).cpu()
            for name in names:
                present = torch.nonzero(~mask[:, self.names.index(name)]).reshape(-1)
                rows[name].append(take(batch[name], present.to(
                    device_of(batch[name]))))
        for name in names:
            self.encoders[name].adapt(rows[name])
        return self

    def config(self) -> dict:
        """The constructor arguments, JSON-able (:meth:`from_config` reads them back); every
        encoder must be a registered encoder (``ENCODERS``)."""
        entries = {}
        for name, enc in self.encoders.items():
            cls = type(enc).__name__
            if ENCODERS.get(cls) is not type(enc):
                raise ValueError(f"encoders[{name!r}] ({cls}) is not a registered encoder; "
                                 "it has no JSON config (save the state_dict and rebuild the "
                                 "trunk in code).")
            entries[name] = {"class": cls, "config": enc.config()}
        return {"encoders": entries, "fusion": self.fusion, "gate": self.gate,
                "dim": self._dim, "modality_dropout": self.modality_dropout}

    @classmethod
    def from_config(cls, config: dict) -> FusedTrunk:
        """The trunk a config describes, every entry checked (configs are untrusted).

        Raises
        ------
        ValueError
            On an unknown or missing key, an unregistered or nested encoder, or a value of the
            wrong type or range, naming it.
        """
        what = "FusedTrunk config"
        check_keys(config, what, {"encoders", "fusion", "gate", "dim", "modality_dropout"},
                   ("encoders",))
        try:
            if not isinstance(config["encoders"], dict):
                raise ValueError("encoders must be a dict of named encoder entries.")
            dim = config.get("dim")
            return cls(config["encoders"], fusion=config.get("fusion", "concat"),
                       gate=config.get("gate", "softmax"),
                       dim=None if dim is None else check_int(dim, "dim", 1, MAX_DIM,
                                                              strict=True),
                       modality_dropout=check_float(config.get("modality_dropout", 0.0),
                                                    "modality_dropout", 0.0, 1.0, strict=True))
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None


ENCODERS.update({"TableTrunk": TableTrunk, "FusedTrunk": FusedTrunk})
