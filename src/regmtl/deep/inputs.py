"""What a net reads: tensors of any shape and dtype, sparse rows, or a dict of named inputs.

The trunk decides what an input is; the data layer only carries it, untouched where it can be:

==========================  =============================================  ==================
given                       carried as                                     a batch is
==========================  =============================================  ==================
float array / tensor        float32 tensor of the same shape (N, ...)      rows of it
integer or bool array       int64 tensor (ids, token ids, codes: never     rows of it
                            cast to float)
SciPy sparse matrix         :class:`SparseRows` (CSR, float32 values)      a ``torch`` sparse
                                                                           CSR tensor (B, V)
dict ``{name: any above}``  a dict of them, every entry with N rows        a dict of batches
``Modalities``              its ``carried()`` dict: each modality and the  a dict of batches
                            missing mask (texts first ``tokenized``)
==========================  =============================================  ==================

A pandas DataFrame is read as its numeric matrix here; the scikit-learn wrappers turn its
categorical and string columns into codes first (``regmtl.deep.frames``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._torch import quiet_sparse, torch

__all__ = ["SparseRows", "as_inputs", "take", "to_device", "n_rows", "describe", "Inputs",
           "tensor_of"]


def tensor_of(arr: Any, dtype: Any = None) -> torch.Tensor:
    """``arr`` (a NumPy array) as a CPU tensor, sharing its memory where NumPy lets it be
    written.

    A tensor is always writable, so a tensor on a read-only array (``setflags(write=False)``,
    a memory map opened with ``mmap_mode="r"``, the matrix of a copy-on-write DataFrame) would
    let a write through it reach memory its owner declared read-only, which PyTorch warns
    about. Such an array is copied, once: cast to ``dtype`` (a NumPy dtype) in that copy where
    one is given (the dtype the tensor is carried in, so that no second copy follows). A
    writable array is not copied unless it is not C-contiguous.
    """
    arr = np.ascontiguousarray(arr)  # (a copy where not C-contiguous, and that is writable)
    if not arr.flags.writeable:
        arr = arr.astype(arr.dtype if dtype is None else dtype)  # a copy, cast on the way
    return torch.from_numpy(arr)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
         size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR tensor from parts built valid here (sorted, in range: the invariant check
    is skipped, and PyTorch's notices on it are not repeated per batch)."""
    with quiet_sparse():
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


class SparseRows:
    """Rows of a sparse matrix (CSR) held as three tensors; indexing gives a CSR batch.

    ``rows[idx]`` gathers the rows ``idx`` (an index tensor, in its order) into a
    ``torch.sparse_csr_tensor`` of shape (len(idx), V) without a Python loop over rows: the
    new row pointers are the cumulative lengths, and the positions of the entries are the old
    row starts repeated by the lengths plus a running offset.

    Parameters
    ----------
    matrix : scipy.sparse matrix or array of shape (N, V)
        Any SciPy sparse format (converted to CSR once); finite values.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> from regmtl.deep.inputs import SparseRows
    >>> rows = SparseRows(sp.csr_matrix(np.array([[0, 2.0, 0], [1, 0, 0], [0, 0, 3]])))
    >>> rows[torch.tensor([2, 0])].to_dense().tolist()
    [[0.0, 0.0, 3.0], [0.0, 2.0, 0.0]]
    """

    def __init__(self, matrix: Any, *, what: str = "X"):
        csr = sp.csr_matrix(matrix)
        csr.sum_duplicates()
        data = np.asarray(csr.data, dtype=np.float32)
        if not data.flags.writeable:  # read-only values: copied (see tensor_of)
            data = data.copy()
        if not np.isfinite(data).all():
            raise ValueError(f"{what} (sparse) contains NaN or infinity; impute or drop those "
                             "entries.")
        self.shape = (int(csr.shape[0]), int(csr.shape[1]))
        self.indptr = torch.from_numpy(csr.indptr.astype(np.int64))
        self.indices = torch.from_numpy(csr.indices.astype(np.int64))
        self.values = torch.from_numpy(data)
        # on the CPU, SciPy's row indexing (compiled) makes a batch at a quarter of the cost
        # of the tensor operations below; it shares the values and SciPy's own index arrays
        self._csr = sp.csr_matrix((data, csr.indices, csr.indptr), shape=self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def device(self) -> torch.device:
        return self.values.device

    def to(self, device: Any) -> SparseRows:
        new = object.__new__(SparseRows)
        new.shape = self.shape
        new.indptr, new.indices, new.values = (self.indptr.to(device),
                                               self.indices.to(device), self.values.to(device))
        new._csr = self._csr if new.values.device.type == "cpu" else None
        return new

    def subset(self, idx: Any) -> SparseRows:
        """The rows ``idx`` (in that order) as new :class:`SparseRows` (a batch stays a
        batch: ``rows[idx]`` is a CSR tensor)."""
        batch = self[idx]
        new = object.__new__(SparseRows)
        new.shape = (int(batch.shape[0]), self.shape[1])
        new.indptr, new.indices, new.values = (batch.crow_indices(), batch.col_indices(),
                                               batch.values())
        new._csr = None if new.values.device.type != "cpu" else sp.csr_matrix(
            (new.values.numpy(), new.indices.numpy(), new.indptr.numpy()), shape=new.shape)
        return new

    def __getitem__(self, idx: Any) -> torch.Tensor:
        idx = torch.as_tensor(idx, dtype=torch.int64, device=self.indptr.device).reshape(-1)
        csr = self.__dict__.get("_csr")
        if csr is not None and idx.device.type == "cpu":
            sub = csr[idx.numpy()]
            return _csr(torch.from_numpy(sub.indptr).long(), torch.from_numpy(sub.indices).long(),
                        torch.from_numpy(sub.data), (len(idx), self.shape[1]))
        start, stop = self.indptr[idx], self.indptr[idx + 1]
        lengths = stop - start
        crow = torch.zeros(len(idx) + 1, dtype=torch.int64, device=idx.device)
        torch.cumsum(lengths, 0, out=crow[1:])
        total = int(crow[-1])
        # entry k of the batch: old position start[row(k)] + (k - crow[row(k)])
        row = torch.repeat_interleave(torch.arange(len(idx), device=idx.device), lengths,
                                      output_size=total)
        pos = start[row] + torch.arange(total, device=idx.device) - crow[:-1][row]
        return _csr(crow, self.indices[pos], self.values[pos], (len(idx), self.shape[1]))


#: what the data layer carries: a tensor, sparse rows, or a dict of them
Inputs = torch.Tensor | SparseRows | dict


def _dense(X: Any, what: str) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        t = X.detach().cpu()
    else:
        if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a DataFrame: name its columns
            _check_frame(X, what)
            X = X.to_numpy(dtype=_frame_dtype(X))
        elif hasattr(X, "to_numpy"):
            X = X.to_numpy()
        arr = np.asarray(X)
        if arr.dtype == object or arr.dtype.kind in "USMm":
            raise ValueError(f"{what} has dtype {arr.dtype}: the nets read numbers. Encode "
                             "strings and categories as integer codes (the scikit-learn "
                             "wrappers do it for a DataFrame's columns) or use "
                             "regmtl.deep.FeatureColumns.")
        if arr.dtype.kind == "c":
            raise ValueError(f"{what} is complex; the nets read real numbers.")
        # floats are carried as float32, integers and booleans as int64: a read-only array
        # is copied into that dtype (one copy, which the cast below would make anyway)
        t = tensor_of(arr, np.float32 if arr.dtype.kind == "f" else np.int64)
    if t.is_complex():
        raise ValueError(f"{what} is complex; the nets read real numbers.")
    if t.dtype == torch.bool or not t.is_floating_point():
        t = t.to(torch.int64)
    else:
        t = t.to(torch.float32)
        # one pass: a finite sum has no NaN or infinity among its terms (a sum that
        # overflows is checked entry by entry)
        if t.numel() and not (bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())):
            bad = torch.nonzero(~torch.isfinite(t))[0].tolist()
            raise ValueError(f"{what} contains NaN or infinity (first at index {bad}); impute "
                             "or drop those rows (NaN is a missing label only in targets).")
    if t.ndim == 0:
        raise ValueError(f"{what} is a scalar; it needs one row per sample.")
    return t


def _check_frame(frame: Any, what: str) -> None:
    """Refuse a DataFrame column the nets cannot read, naming it: dates, durations, complex
    numbers or missing values (``regmtl.deep.frames.check_column_types``), and strings or
    categories (the scikit-learn wrappers encode those; here they need codes)."""
    from .frames import categorical_columns, check_column_types

    check_column_types(frame, what=what)
    cats = categorical_columns(frame)
    if cats:
        raise ValueError(f"{what}: column(s) {cats[:5]} hold strings or categories; the nets "
                         "read numbers. Encode them as integer codes (e.g. "
                         f"X[{cats[0]!r}].astype('category').cat.codes, read as ids by an "
                         "embedding: regmtl.deep.FeatureColumns), or fit a scikit-learn "
                         "wrapper (DeepMultiTaskRegressor, ...), which encodes them.")


def _frame_dtype(frame: Any) -> Any:
    """The NumPy dtype of a numeric DataFrame's matrix (pandas' nullable and Arrow integers,
    floats and booleans as NumPy's, so that they are not read as objects); None where there
    is none."""
    try:
        return np.result_type(*[getattr(d, "numpy_dtype", d) for d in frame.dtypes])
    except (TypeError, ValueError):
        return None


def as_inputs(X: Any, what: str = "X") -> Inputs:
    """The inputs ``X`` as the data layer carries them (see the module's table).

    Parameters
    ----------
    X : array-like, tensor, SciPy sparse matrix, or dict of str to them
        The inputs; every entry of a dict has the same number of rows.
    what : str, default="X"
        How errors name the input.

    Returns
    -------
    Tensor, SparseRows or dict
        Floats as float32, integers and booleans as int64, sparse rows as CSR.

    Raises
    ------
    ValueError
        On strings or objects, complex numbers, NaN or infinity, no rows, or dict entries of
        different lengths.
    """
    if isinstance(X, SparseRows):
        out: Inputs = X
    elif callable(getattr(X, "carried", None)) and hasattr(X, "kinds"):  # a Modalities
        texts = [k for k, kind in X.kinds.items() if kind == "text"]
        if texts:
            raise ValueError(f"{what}: modality {texts[0]!r} holds texts, and a net reads "
                             f"token ids; give {what}.tokenized({{{texts[0]!r}: tokenizer}}) "
                             "with the fitted Tokenizer its TextTrunk was built for.")
        out = X.carried()
    elif isinstance(X, Mapping):
        if not X:
            raise ValueError(f"{what} is an empty dict; it needs at least one named input.")
        out = {}
        for k, v in X.items():
            if not isinstance(k, str):
                raise ValueError(f"{what}: input names must be strings, got {k!r}.")
            out[k] = as_inputs(v, f"{what}[{k!r}]")
            if isinstance(out[k], dict):
                raise ValueError(f"{what}[{k!r}] is a dict; named inputs do not nest.")
        lengths = {k: n_rows(v) for k, v in out.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{what}: the named inputs have different numbers of rows "
                             f"{lengths}; each needs one row per sample.")
    elif sp.issparse(X):
        out = SparseRows(X, what=what)
    else:
        out = _dense(X, what)
    if n_rows(out) == 0:
        raise ValueError(f"{what} has no rows.")
    return out


def n_rows(inputs: Inputs) -> int:
    """The number of samples in ``inputs``."""
    if isinstance(inputs, dict):
        return n_rows(next(iter(inputs.values())))
    if isinstance(inputs, SparseRows):
        return len(inputs)
    if isinstance(inputs, torch.Tensor) and inputs.layout == torch.sparse_csr:
        return int(inputs.shape[0])
    return int(inputs.shape[0])


def take(inputs: Inputs, idx: torch.Tensor) -> Any:
    """The batch of rows ``idx``: a tensor, a sparse CSR tensor, or a dict of them."""
    if isinstance(inputs, dict):
        return {k: take(v, idx) for k, v in inputs.items()}
    if isinstance(inputs, SparseRows):
        return inputs[idx]
    return inputs[idx]


def to_device(inputs: Any, device: Any, non_blocking: bool = False) -> Any:
    """``inputs`` (a batch or a whole set) on ``device``."""
    if isinstance(inputs, dict):
        return {k: to_device(v, device, non_blocking) for k, v in inputs.items()}
    if isinstance(inputs, SparseRows):
        return inputs.to(device)
    return inputs.to(device, non_blocking=non_blocking)


def device_of(inputs: Any) -> torch.device:
    """The device the inputs are on."""
    if isinstance(inputs, dict):
        return device_of(next(iter(inputs.values())))
    return inputs.device


def describe(inputs: Any) -> str:
    """A short description for error messages: shapes and dtypes."""
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in inputs.items()) + "}"
    if isinstance(inputs, SparseRows):
        return f"sparse rows {inputs.shape}"
    if isinstance(inputs, torch.Tensor):
        kind = "sparse CSR " if inputs.layout == torch.sparse_csr else ""
        return f"{kind}{tuple(inputs.shape)} {str(inputs.dtype).replace('torch.', '')}"
    return type(inputs).__name__


def chunks(inputs: Inputs, size: int):
    """Consecutive batches of at most ``size`` rows (for prediction)."""
    n = n_rows(inputs)
    for i in range(0, n, size):
        yield take(inputs, torch.arange(i, min(i + size, n)))
