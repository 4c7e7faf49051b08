r"""Encoders of images and text: a raw batch in, a flat float tensor (B, out_features) out.

The nets read a flat tensor; an encoder turns a batch of another kind into one, and its
parameters train with the rest of the net. Every encoder knows its ``out_features`` at
construction, describes itself by ``config()`` (JSON-able constructor arguments) and is rebuilt
by ``from_config(config)``, which checks every entry (checkpoints are untrusted files) and
builds nothing that depends on data, so it works on the ``meta`` device.

=========================================  ==============================================
encoder                                    reads
=========================================  ==============================================
:class:`~regmtl.deep.FeatureColumns`       a dict of named id, id-sequence and numeric
                                           columns (``regmtl.deep.features``)
:class:`ConvTrunk`                         images (B, C, H, W) or (B, H, W): float, or
                                           8-bit integers 0..255
:class:`TextTrunk`                         token ids (B, L), or a sparse CSR bag of words
                                           (B, vocab_size)
=========================================  ==============================================

``ENCODERS`` maps each encoder's class name to its class (what a saved net's config names);
:func:`encoder_from_config` rebuilds one from that name and its config.

References
----------
- Lin, Chen & Yan (2014). Network in network. ICLR (global average pooling).
- Joulin, Grave, Bojanowski & Mikolov (2017). Bag of tricks for efficient text
  classification. EACL (mean of word embeddings).
- Kim (2014). Convolutional neural networks for sentence classification. EMNLP
  (convolution and max-over-time pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._torch import torch
from .checks import check_choice, check_float, check_int, check_keys
from .features import MAX_DIM, MAX_VOCAB, FeatureColumns, pool_bags, to_bucket

nn = torch.nn
F = torch.nn.functional

__all__ = ["ConvTrunk", "TextTrunk", "ENCODERS", "encoder_from_config"]

#: caps of a config beyond those of ``regmtl.deep.features``
MAX_WIDTHS = 64
MAX_KERNEL = 1024
TEXT_MODES = ("mean", "sum")


def _check_widths(value: Any, name: str, *, strict: bool = False) -> list[int]:
    ok = isinstance(value, list) if strict else (isinstance(value, Sequence)
                                                 and not isinstance(value, str))
    if not ok or not 1 <= len(value) <= MAX_WIDTHS:
        raise ValueError(f"{name} must be a list of 1..{MAX_WIDTHS} widths, got {value!r:.80}.")
    return [check_int(v, f"{name}[{i}]", 1, MAX_DIM, strict=strict) for i, v in enumerate(value)]


def _check_optional(value: Any, name: str, low: int, high: int, *, strict: bool = False
                    ) -> int | None:
    return None if value is None else check_int(value, name, low, high, strict=strict)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r:.80}.")
    return value


def _pair(value: Any, name: str, names: tuple[str, str], highs: tuple[int, int], *,
          strict: bool = False) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = isinstance(value, list) if strict else (isinstance(value, Sequence)
                                                 and not isinstance(value, str))
    if not ok or len(value) != 2:
        raise ValueError(f"{name} must be None or ({names[0]}, {names[1]}), got {value!r:.80}.")
    return (check_int(value[0], f"{name}[0] ({names[0]})", 1, highs[0], strict=strict),
            check_int(value[1], f"{name}[1] ({names[1]})", 1, highs[1], strict=strict))


def _from_config(cls: type, config: Any, checks: dict, required: tuple = ()) -> nn.Module:
    """``cls(**config)`` after checking every entry strictly, errors naming the key."""
    what = f"{cls.__name__} config"
    check_keys(config, what, set(checks), required)
    try:
        kw = {k: checks[k](v, k) for k, v in config.items()}
        return cls(**kw)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _head(width: int, out_features: int | None, dropout: float
          ) -> tuple[nn.Module, nn.Module | None, int]:
    """Dropout on the pooled vector, then the optional Linear + ReLU; the final width."""
    drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
    if out_features is None:
        return drop, None, width
    return drop, nn.Sequential(nn.Linear(width, out_features), nn.ReLU()), out_features


def _dtype_name(x: torch.Tensor) -> str:
    return str(x.dtype).replace("torch.", "")


# ---------------------------------------------------------------------- images
def _averaging(n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """The (m, n) matrix whose row ``i`` averages PyTorch's adaptive window ``i`` of ``n``:
    ``floor(i n / m)`` to ``ceil((i + 1) n / m)``, exclusive."""
    i = torch.arange(m, device=like.device)
    start, stop = (i * n) // m, -((-(i + 1) * n) // m)
    at = torch.arange(n, device=like.device)
    inside = (at >= start[:, None]) & (at < stop[:, None])
    return inside.to(like.dtype) / (stop - start).to(like.dtype)[:, None]


class GridAverage(nn.Module):
    r"""Adaptive average pooling to an ``(h, w)`` grid whose gradient is the same on every run:
    an average pool where the windows tile the map, else two averaging matrices, per channel
    :math:`y = A_h\, x\, A_w^\top` (PyTorch's adaptive windows, which may overlap).

    The same numbers as ``nn.AdaptiveAvgPool2d`` (to rounding); CUDA's adaptive pooling adds
    its gradient with atomics, in an order that varies where windows overlap, and refuses
    ``torch.use_deterministic_algorithms``."""

    def __init__(self, size: Sequence[int]):
        super().__init__()
        self.size = tuple(int(v) for v in size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if torch.onnx.is_in_onnx_export():  # (forward only: PyTorch's op, as exported)
            return nn.functional.adaptive_avg_pool2d(x, self.size)
        (h, w), (H, W) = self.size, x.shape[-2:]
        if H % h == 0 and W % w == 0:  # windows that tile the map: a plain average pool
            return nn.functional.avg_pool2d(x, (H // h, W // w))
        return torch.einsum("nchw,ih,jw->ncij", x, _averaging(H, h, x), _averaging(W, w, x))

    def extra_repr(self) -> str:  # noqa: D102
        return f"size={self.size}"


class ConvTrunk(nn.Module):
    r"""A small convolutional trunk for images: conv blocks, global average pooling.

    Each width :math:`c` of ``channels`` adds a block

    .. math::

        h \mapsto \mathrm{maxpool}_{2 \times 2}\big(\mathrm{ReLU}(\mathrm{BN}(W_c * h))\big)

    (a ``kernel_size`` convolution with "same" zero padding, batch normalization unless
    ``batch_norm=False``; the pooling rounds up, so a side of 1 stays 1 and any image size
    works, 8x8 as well as 224x224). The last feature map is averaged over its positions
    (global average pooling: the output does not depend on the image size), dropout is
    applied, and an optional ``Linear`` + ReLU maps it to ``out_features``.

    Parameters
    ----------
    in_channels : int, default=1
        Channels C of the images.
    channels : sequence of int, default=(32, 64)
        Output channels of the blocks (1 to 64 blocks).
    kernel_size : int, default=3
        Side of the square convolution kernels (1..1024).
    out_features : int, optional
        Width of a final ``Linear`` + ReLU; without it the output is the ``channels[-1]``
        averages.
    dropout : float, default=0.0
        Dropout on the pooled vector, in [0, 1).
    batch_norm : bool, default=True
        Batch normalization after every convolution (which then has no bias).
    image_shape : (int, int), optional
        (H, W): a flat input (B, C * H * W), e.g. a table of pixels, is reshaped to
        (B, C, H, W).
    pool : (int, int), default=(1, 1)
        The grid the last feature maps are averaged to (adaptive average pooling): (1, 1)
        averages over all positions (the trunk can tell where a feature was only from the
        zero-padded image border, slowly); (1, 2) keeps left from right (two digits side by
        side), and the output has ``channels[-1] * 1 * 2`` numbers before ``out_features``.

    Attributes
    ----------
    out_features : int
        Width of the output: ``out_features`` if given, else ``channels[-1]``.
    features : torch.nn.Sequential
        The blocks and the global average pooling.
    out : torch.nn.Sequential or None
        The final ``Linear`` + ReLU.

    Raises
    ------
    ValueError
        On a size outside its range (naming it).

    See Also
    --------
    regmtl.deep.TextTrunk : The encoder of text.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.trunks import ConvTrunk
    >>> trunk = ConvTrunk(1, (8, 16), out_features=10)
    >>> trunk.out_features
    10
    >>> tuple(trunk(torch.rand(4, 1, 28, 28)).shape), tuple(trunk(torch.rand(4, 8, 8)).shape)
    ((4, 10), (4, 10))

    8-bit images are divided by 255:

    >>> x = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    >>> _ = trunk.eval()
    >>> torch.allclose(trunk(x), trunk(x.float() / 255))
    True
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64), *,
                 kernel_size: int = 3, out_features: int | None = None, dropout: float = 0.0,
                 batch_norm: bool = True, image_shape: Sequence[int] | None = None,
                 pool: Sequence[int] = (1, 1)):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1, MAX_DIM)
        self.channels = _check_widths(channels, "channels")
        self.kernel_size = check_int(kernel_size, "kernel_size", 1, MAX_KERNEL)
        out_arg = _check_optional(out_features, "out_features", 1, MAX_DIM)
        self.dropout_rate = check_float(dropout, "dropout", 0.0, 1.0)
        self.batch_norm = _check_bool(batch_norm, "batch_norm")
        self.image_shape = _pair(image_shape, "image_shape", ("height", "width"),
                                 (MAX_DIM, MAX_DIM))
        layers: list[nn.Module] = []
        width = self.in_channels
        k = self.kernel_size
        for c in self.channels:
            if k % 2:
                layers.append(nn.Conv2d(width, c, k, padding=k // 2, bias=not self.batch_norm))
            else:  # "same" for an even kernel: one more zero after than before
                layers += [nn.ZeroPad2d(((k - 1) // 2, k // 2) * 2),
                           nn.Conv2d(width, c, k, bias=not self.batch_norm)]
            if self.batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers += [nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            width = c
        self.pool = _pair(pool, "pool", ("height", "width"), (64, 64)) or (1, 1)
        layers += [GridAverage(self.pool), nn.Flatten()]
        width *= self.pool[0] * self.pool[1]
        self.features = nn.Sequential(*layers)
        self.dropout, self.out, self.out_features = _head(width, out_arg, self.dropout_rate)
        self._out_arg = out_arg

    def _images(self, x: Any) -> torch.Tensor:
        C = self.in_channels
        want = f"(batch, {C}, height, width)" + (" or (batch, height, width)" if C == 1 else "")
        if self.image_shape is not None:
            H, W = self.image_shape
            want += f" or (batch, {C * H * W}) (image_shape {H}x{W})"
        if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
            raise ValueError(f"x is a {type(x).__name__}"
                             + (f" ({x.layout})" if isinstance(x, torch.Tensor) else "")
                             + f"; ConvTrunk reads a dense image tensor {want}.")
        if x.ndim == 2 and self.image_shape is not None and x.shape[1] == C * H * W:
            x = x.reshape(x.shape[0], C, H, W)
        elif x.ndim == 3 and C == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != C or x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"x has shape {tuple(x.shape)}; ConvTrunk expects {want}.")
        dtype = self._conv_dtype()
        if x.is_floating_point():
            return x.to(dtype)
        if x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"x has dtype {_dtype_name(x)}; ConvTrunk reads float images or "
                             "8-bit integers 0..255.")
        if x.dtype != torch.uint8 and x.numel() and not bool(((x >= 0) & (x <= 255)).all()):
            raise ValueError(f"x has dtype {_dtype_name(x)} with values outside 0..255; "
                             "integer images are read as 8-bit pixels (divided by 255): pass "
                             "floats for other scales.")
        return x.to(dtype) / 255.0

    def _conv_dtype(self) -> torch.dtype:
        return next(m for m in self.features if isinstance(m, nn.Conv2d)).weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoded images.

        Parameters
        ----------
        x : Tensor of shape (B, C, H, W), (B, H, W) or (B, C * H * W)
            Images: floats, or integers read as 8-bit pixels (uint8, or int64 in 0..255 as the
            data layer carries them) and divided by 255. (B, H, W) needs ``in_channels=1``,
            the flat form ``image_shape``.

        Returns
        -------
        Tensor of shape (B, out_features)
            The pooled features.

        Raises
        ------
        ValueError
            On another shape, channel count or dtype, or integers outside 0..255.
        """
        h = self.dropout(self.features(self._images(x)))
        return h if self.out is None else self.out(h)

    def config(self) -> dict:
        """The constructor arguments, JSON-able (:meth:`from_config` reads them back).

        Returns
        -------
        dict
            ``in_channels``, ``channels``, ``kernel_size``, ``out_features``, ``dropout``,
            ``batch_norm``, ``image_shape``, ``pool``.
        """
        return {"in_channels": self.in_channels, "channels": list(self.channels),
                "kernel_size": self.kernel_size, "out_features": self._out_arg,
                "dropout": self.dropout_rate, "batch_norm": self.batch_norm,
                "image_shape": None if self.image_shape is None else list(self.image_shape),
                "pool": list(self.pool)}

    @classmethod
    def from_config(cls, config: dict) -> ConvTrunk:
        """The trunk a config describes, every entry checked (configs are untrusted).

        Parameters
        ----------
        config : dict
            As written by :meth:`config` (missing keys take their defaults).

        Returns
        -------
        ConvTrunk
            A new trunk (fresh weights).

        Raises
        ------
        ValueError
            On an unknown key or a value of the wrong type or range, naming it.
        """
        return _from_config(cls, config, {
            "in_channels": lambda v, k: check_int(v, k, 1, MAX_DIM, strict=True),
            "channels": lambda v, k: _check_widths(v, k, strict=True),
            "kernel_size": lambda v, k: check_int(v, k, 1, MAX_KERNEL, strict=True),
            "out_features": lambda v, k: _check_optional(v, k, 1, MAX_DIM, strict=True),
            "dropout": lambda v, k: check_float(v, k, 0.0, 1.0, strict=True),
            "batch_norm": _check_bool,
            "pool": lambda v, k: _pair(v, k, ("height", "width"), (64, 64), strict=True),
            "image_shape": lambda v, k: _pair(v, k, ("height", "width"), (MAX_DIM, MAX_DIM),
                                              strict=True),
        })


# ---------------------------------------------------------------------- text
class TextTrunk(nn.Module):
    r"""Word embeddings pooled over a text: token ids or a sparse bag of words.

    The table :math:`E` has ``vocab_size`` + 1 rows; row V = ``vocab_size`` is the OOV
    bucket (zero at the start). Two inputs:

    - **token ids** (B, L), integers padded with ``padding_idx``: a padding position is not a
      token and contributes nothing; every other id outside [0, V) reads the OOV bucket. With
      :math:`S` the tokens of a row, the output is

      .. math::

          \text{mean: } \frac{1}{|S|} \sum_{l \in S} E[\tilde t_l], \qquad
          \text{sum: } \sum_{l \in S} E[\tilde t_l]

      (zeros for a row without tokens).
    - **a sparse CSR batch** (B, V) of counts or tf-idf weights :math:`x_{bv}`: the
      weighted bag :math:`\sum_v x_{bv} E[v]` ("sum"), divided by the row's total weight
      :math:`\sum_v x_{bv}` ("mean"; zeros where it is 0). Every column is a word
      (``padding_idx`` concerns ids only), so the counts of the tokens of padded ids give the
      same output as the ids.

    Both pool with ``torch.nn.functional.embedding_bag`` (no loop over rows; the CSR row
    pointers are its offsets, the values its per-sample weights). With ``conv=(channels,
    k)`` the ids are instead read in order (Kim 2014): a 1-D convolution of width k over the
    embeddings (padding positions are zero vectors, like the ends of the text), ReLU, and
    the maximum over the positions of the tokens. Then dropout and an optional ``Linear`` +
    ReLU to ``out_features``.

    Parameters
    ----------
    vocab_size : int
        Number of known tokens V: ids 0..V-1 (1 <= V <= 2**31).
    dim : int, default=64
        Embedding size (1..65536).
    mode : {"mean", "sum"}, default="mean"
        Pooling without ``conv``.
    conv : (int, int), optional
        (channels, kernel_size) of a convolution over the ids (token ids only).
    out_features : int, optional
        Width of a final ``Linear`` + ReLU.
    padding_idx : int or None, default=0
        The id that pads a row of ids: not a token, it contributes nothing (an id in [0, V)
        used as padding is then not a token of the ids, its row is never read by them;
        -1 keeps all of 0..V-1 as tokens). None: no padding, every position is a token. A
        bag of words has no padding: every column is a word.
    dropout : float, default=0.0
        Dropout on the pooled vector, in [0, 1).
    oov_rate : float, default=0.0
        Probability that a token is sent to the OOV bucket in training (as in
        :class:`~regmtl.deep.FeatureColumns`); 0 (the default) leaves the bucket to the
        out-of-range ids of the training texts.

    Attributes
    ----------
    out_features : int
        Width of the output: ``out_features`` if given, else ``conv[0]`` or ``dim``.
    embedding : torch.nn.Embedding
        The table, (vocab_size + 1, dim).
    conv : torch.nn.Conv1d or None
        The convolution.

    Raises
    ------
    ValueError
        On a size outside its range (naming it).

    See Also
    --------
    regmtl.deep.ConvTrunk : The encoder of images.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.trunks import TextTrunk
    >>> trunk = TextTrunk(100, dim=8, mode="sum")
    >>> ids = torch.tensor([[5, 7, 7, 0], [3, 0, 0, 0]])      # 0 pads
    >>> bow = torch.zeros(2, 100)
    >>> bow[0, 5], bow[0, 7], bow[1, 3] = 1.0, 2.0, 1.0
    >>> torch.allclose(trunk(ids), trunk(bow.to_sparse_csr()))
    True
    >>> TextTrunk(100, dim=8, conv=(16, 3)).out_features
    16
    """

    def __init__(self, vocab_size: int, dim: int = 64, *, mode: str = "mean",
                 conv: Sequence[int] | None = None, out_features: int | None = None,
                 padding_idx: int | None = 0, dropout: float = 0.0, oov_rate: float = 0.0):
        super().__init__()
        self.vocab_size = check_int(vocab_size, "vocab_size", 1, MAX_VOCAB)
        self.dim = check_int(dim, "dim", 1, MAX_DIM)
        self.mode = check_choice(mode, "mode", TEXT_MODES)
        self.conv_shape = _pair(conv, "conv", ("channels", "kernel_size"), (MAX_DIM, MAX_KERNEL))
        out_arg = _check_optional(out_features, "out_features", 1, MAX_DIM)
        self.padding_idx = _check_optional(padding_idx, "padding_idx", -MAX_VOCAB, MAX_VOCAB)
        self.dropout_rate = check_float(dropout, "dropout", 0.0, 1.0)
        self.oov_rate = check_float(oov_rate, "oov_rate", 0.0, 1.0)
        self.embedding = nn.Embedding(self.vocab_size + 1, self.dim)
        with torch.no_grad():
            self.embedding.weight[self.vocab_size].zero_()
        width = self.dim
        self.conv = None
        if self.conv_shape is not None:
            channels, k = self.conv_shape
            self.conv = nn.Conv1d(self.dim, channels, k)
            width = channels
        self.dropout, self.out, self.out_features = _head(width, out_arg, self.dropout_rate)
        self._out_arg = out_arg

    def _ids(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"x has dtype {_dtype_name(x)}; TextTrunk reads integer token ids "
                             f"(batch, length) (int64), or a sparse CSR bag of words (batch, "
                             f"{self.vocab_size}) (a dense one: x.to_sparse_csr()).")
        if x.ndim != 2:
            raise ValueError(f"x has shape {tuple(x.shape)}; TextTrunk reads token ids of shape "
                             "(batch, length), padded with padding_idx "
                             f"{self.padding_idx}.")
        ids = x.long()
        valid = (ids != self.padding_idx if self.padding_idx is not None
                 else torch.ones_like(ids, dtype=torch.bool))
        codes = to_bucket(ids, self.vocab_size, self.oov_rate, self.training)
        weight = self.embedding.weight
        if self.conv is None:
            return pool_bags(codes, valid, weight, self.mode)
        B, L = codes.shape
        if B == 0 or L == 0:
            return weight.new_zeros(B, self.conv.out_channels)
        mask = valid.to(weight.dtype)
        emb = F.embedding(codes, weight) * mask[:, :, None]           # (B, L, dim)
        k = self.conv.kernel_size[0]                                  # "same" positions:
        emb = F.pad(emb.transpose(1, 2), ((k - 1) // 2, k // 2))      # zeros at both ends
        h = torch.relu(self.conv(emb)) * mask[:, None, :]             # (B, C, L)
        return h.amax(dim=2)  # >= 0: padding (0) never exceeds a token; no token: 0

    def _bag_of_words(self, x: torch.Tensor) -> torch.Tensor:
        V = self.vocab_size
        if self.conv is not None:
            raise ValueError("x is a sparse CSR bag of words, which has no word order; a "
                             "TextTrunk with conv reads token ids (batch, length). Pass ids, "
                             "or drop conv.")
        if x.ndim != 2 or x.shape[1] != V:
            raise ValueError(f"x is a sparse CSR tensor of shape {tuple(x.shape)}; TextTrunk "
                             f"reads bags of words of shape (batch, {V}) (vocab_size).")
        values = x.values()
        if values.is_complex() or values.dtype == torch.bool:
            raise ValueError(f"x has values of dtype {_dtype_name(values)}; a bag of words "
                             "holds real counts or weights (float32).")
        weight = self.embedding.weight
        values = values.to(weight.dtype)
        if not bool(torch.isfinite(values).all()):
            raise ValueError("x (a sparse bag of words) contains NaN or infinity.")
        crow, cols = x.crow_indices().long(), x.col_indices().long()
        cols = to_bucket(cols, V, self.oov_rate, self.training)
        out = F.embedding_bag(cols, weight, crow, mode="sum", per_sample_weights=values,
                              include_last_offset=True)
        if self.mode == "mean":
            B = x.shape[0]
            rows = torch.repeat_interleave(torch.arange(B, device=crow.device), crow.diff(),
                                           output_size=cols.numel())
            total = values.new_zeros(B).index_add_(0, rows, values)[:, None]
            out = torch.where(total != 0, out / torch.where(total != 0, total, 1.0), 0.0)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoded texts.

        Parameters
        ----------
        x : Tensor of shape (B, L) or sparse CSR tensor of shape (B, vocab_size)
            Integer token ids padded with ``padding_idx``, or bags of words (counts or
            weights; not with ``conv``).

        Returns
        -------
        Tensor of shape (B, out_features)
            The pooled embeddings.

        Raises
        ------
        ValueError
            On float ids, another shape, a bag of words with ``conv``, another sparse layout,
            or non-finite weights.
        """
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x is a {type(x).__name__}; TextTrunk reads a tensor of token ids "
                             "(batch, length) or a sparse CSR bag of words.")
        if x.layout == torch.sparse_csr:
            h = self._bag_of_words(x)
        elif x.layout != torch.strided:
            raise ValueError(f"x is a sparse tensor with layout {x.layout}; TextTrunk reads "
                             "sparse CSR rows (x.to_sparse_csr()) or dense token ids.")
        else:
            h = self._ids(x)
        h = self.dropout(h)
        return h if self.out is None else self.out(h)

    def config(self) -> dict:
        """The constructor arguments, JSON-able (:meth:`from_config` reads them back).

        Returns
        -------
        dict
            ``vocab_size``, ``dim``, ``mode``, ``conv``, ``out_features``, ``padding_idx``,
            ``dropout``, ``oov_rate``.
        """
        return {"vocab_size": self.vocab_size, "dim": self.dim, "mode": self.mode,
                "conv": None if self.conv_shape is None else list(self.conv_shape),
                "out_features": self._out_arg, "padding_idx": self.padding_idx,
                "dropout": self.dropout_rate, "oov_rate": self.oov_rate}

    @classmethod
    def from_config(cls, config: dict) -> TextTrunk:
        """The trunk a config describes, every entry checked (configs are untrusted).

        Parameters
        ----------
        config : dict
            As written by :meth:`config` (``vocab_size`` required; missing keys take their
            defaults).

        Returns
        -------
        TextTrunk
            A new trunk (fresh weights).

        Raises
        ------
        ValueError
            On an unknown or missing key or a value of the wrong type or range, naming it.
        """
        return _from_config(cls, config, {
            "vocab_size": lambda v, k: check_int(v, k, 1, MAX_VOCAB, strict=True),
            "dim": lambda v, k: check_int(v, k, 1, MAX_DIM, strict=True),
            "mode": lambda v, k: check_choice(v, k, TEXT_MODES),
            "conv": lambda v, k: _pair(v, k, ("channels", "kernel_size"),
                                       (MAX_DIM, MAX_KERNEL), strict=True),
            "out_features": lambda v, k: _check_optional(v, k, 1, MAX_DIM, strict=True),
            "padding_idx": lambda v, k: _check_optional(v, k, -MAX_VOCAB, MAX_VOCAB,
                                                        strict=True),
            "dropout": lambda v, k: check_float(v, k, 0.0, 1.0, strict=True),
            "oov_rate": lambda v, k: check_float(v, k, 0.0, 1.0, strict=True),
        }, required=("vocab_size",))


#: the encoders by class name: what a saved net's config names
ENCODERS: dict[str, type[nn.Module]] = {"FeatureColumns": FeatureColumns,
                                        "ConvTrunk": ConvTrunk, "TextTrunk": TextTrunk}


def encoder_from_config(name: str, config: dict) -> nn.Module:
    """Rebuild an encoder from its class name and its config.

    Parameters
    ----------
    name : str
        A key of ``ENCODERS``: "FeatureColumns", "ConvTrunk" or "TextTrunk", and
        "TableTrunk" or "FusedTrunk" (``regmtl.deep.fusion`` registers them).
    config : dict
        What the encoder's ``config()`` wrote; checked entry by entry.

    Returns
    -------
    torch.nn.Module
        A new encoder (fresh weights; load the saved ``state_dict`` into it). Call it under
        ``with torch.device("meta"):`` to get the shapes without memory.

    Raises
    ------
    ValueError
        If ``name`` is not an encoder or the config is invalid.

    Examples
    --------
    >>> from regmtl.deep.trunks import TextTrunk, encoder_from_config
    >>> trunk = TextTrunk(500, dim=16, out_features=8)
    >>> encoder_from_config("TextTrunk", trunk.config()).out_features
    8
    """
    if not isinstance(name, str) or name not in ENCODERS:
        raise ValueError(f"encoder {name!r:.80} is not one of {sorted(ENCODERS)}.")
    return ENCODERS[name].from_config(config)
