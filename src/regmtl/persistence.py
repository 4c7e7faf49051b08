"""Saving and loading fitted models without pickle.

A model file is a compressed NumPy ``.npz`` archive: the arrays of the fitted model plus one
JSON header that names the class, its parameters (a loss by its registered name and parameters),
the non-array attributes, the format version and a SHA-256 digest of every array. :func:`load`
trusts nothing in it. Before it reads any array data it checks the header (the class, and only
the attributes that class declares), every array's ``.npy`` header (a plain numeric, boolean or
fixed-width string dtype; the shape the model's numbers of tasks, features and classes imply)
and the size every archive member declares; it then reads no more than those sizes and checks
the digests. A member that inflates to more than ``_RATIO`` times its compressed bytes is
checked against its digest by streaming (in chunks of ``_CHUNK`` bytes) before any array is
allocated, and each array is read into one buffer of its size: a refused file makes :func:`load`
allocate about a megabyte, an accepted one its arrays once, and no more than ``max_bytes``
(by default ``DEFAULT_RATIO`` times the file's size, at least ``DEFAULT_MIN_BYTES``). A path
that is not a regular file (``/dev/zero``, a FIFO) is refused before it is read.

What the arrays hold is then checked as a fit checks what a user passes (``check_loaded``):
the parameters, penalties and losses by their own checks, every float array finite, every
rule's range (``(low, high)``: the positions of tasks), labels distinct, and the identities of
the fitted structure (a dirty model's parts add up to ``coef_``; the outlier tasks are the
nonzero columns of Q). Every refusal is a ``ValueError`` that names the file and the field.

:func:`load` finds a file's model family by the kind the file declares: an archive's class
(each :class:`SaveMixin` class registers itself), a folder's estimator class in its
``config.json`` (the deep estimators, registered by reference by ``regmtl`` and imported, with
PyTorch, when one is read). This module imports no model family.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ._options import check_option
from .serialization import (
    CONFIG_FILE,
    FORMS,
    MAX_JSON_BYTES,
    Malformed,
    Refused,
    check_labels,
    check_scalar,
    check_shape,
    open_regular,
    read_json,
    scalar,
    unscalar,
)

__all__ = ["FORMAT_VERSION", "SaveMixin", "load"]

FORMAT_NAME = "regmtl-model"
#: The newest model format this version reads and writes: 2 added sparse (CSR) entries (a
#: sparse graph of ``GraphLaplacian``), 3 the certificate's scale and relative value
#: (``objective_at_zero_``, ``certificate_relative_``). A file is written in the oldest format
#: that holds it, so that older versions read every file they can, and refuse the rest by
#: their version.
FORMAT_VERSION = 3
#: the attributes a file of format 3 may hold that older formats do not
_FORMAT_3_ATTRS = frozenset({"objective_at_zero_", "certificate_relative_"})
_HEADER = "__header__"
#: kind -> its loader: a SaveMixin class (an archive, read here) or a function, or its
#: "module:function" reference, that reads a folder (imported when such a folder is read)
_KINDS: dict[str, type | str | Callable] = {}
#: the kind of a folder that declares no estimator: a bare net checkpoint
NET_CHECKPOINT = "net-checkpoint"
_MAX_HEADER_BYTES = MAX_JSON_BYTES  # the JSON header
_MAX_NPY_HEADER = 10_000  # an array's .npy header (NumPy's own limit)
_CHUNK = 2**18  # bytes decompressed (and held) at a time
#: a member whose data is more than this many times its compressed bytes is checked against
#: its digest by streaming (nothing held) before any array is allocated: a refused file never
#: makes load allocate more than about this multiple of its size
_RATIO = 4
#: without max_bytes, a file may allocate DEFAULT_RATIO times its size, and at least
#: DEFAULT_MIN_BYTES (see default_max_bytes)
DEFAULT_RATIO = 64
DEFAULT_MIN_BYTES = 2**28
#: the most bytes of Python objects a byte of JSON text becomes (``[{},{},...]``: 24)
_JSON_COST = 24
_ARRAY_KINDS = "biufcU"  # the dtypes the format writes: no object, void or datetime arrays
_KIND_NAMES = {"f": "float", "iu": "integer"}


def _package_version() -> str:
    try:
        return version("regmtl")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class _Integrity(Exception):
    """The arrays do not match the digests of the header."""


# ---------------------------------------------------------------------- the kinds
def register_kinds(kinds: Iterable[str], loader: str | Callable) -> None:
    """Let :func:`load` read the folders that declare one of ``kinds``.

    ``loader(path, max_bytes=...)`` reads such a folder; as ``"module:function"`` it is
    imported only when a folder of that kind is read (a family whose import is heavy, such as
    PyTorch's, registers this way). :class:`SaveMixin` classes register themselves.
    """
    for kind in kinds:
        _KINDS[kind] = loader


#: Saved model classes defined in a module :mod:`regmtl` imports only when used, by name:
#: the module is imported when a file of that class is read.
_CLASS_MODULES: dict[str, str] = {}


def register_class_modules(kinds: Iterable[str], module: str) -> None:
    """Let :func:`load` read the files of the :class:`SaveMixin` classes ``kinds``, defined
    in ``module`` (imported when such a file is read: a class registers itself when its
    module is imported, and a fresh process may not have imported it)."""
    for kind in kinds:
        _CLASS_MODULES[kind] = module


def _saved_class(kind: Any) -> Any:
    """The registered class of ``kind`` (its module imported where it is registered by
    name), or None."""
    if not isinstance(kind, str):
        return None
    if kind not in _KINDS and kind in _CLASS_MODULES:
        importlib.import_module(_CLASS_MODULES[kind])
    return _KINDS.get(kind)


def known_kinds() -> list[str]:
    """The kinds :func:`load` reads: the saved model classes and the folders' kinds."""
    return sorted({k for k, v in _KINDS.items()
                   if not isinstance(v, type) or v.saved_rules(1, 1, False)}
                  | set(_CLASS_MODULES))


def _unknown_kind(kind: Any) -> str:
    return (f"{kind!r:.80}, which no model family registered; the kinds known are "
            f"{', '.join(known_kinds())}")


def _folder_loader(path: Path) -> Callable:
    """The loader of the model folder ``path``, by the kind its ``config.json`` declares."""
    config_file = path / CONFIG_FILE
    if not config_file.exists():
        raise FileNotFoundError(f"{path} is not a saved model folder (it needs {CONFIG_FILE}, "
                                "which declares what the folder holds).")
    config = read_json(config_file, "a checkpoint config")
    if not isinstance(config, dict):
        raise ValueError(f"{config_file} is not a regmtl checkpoint config (no format).")
    spec = config.get("estimator", {"class": NET_CHECKPOINT})
    kind = spec.get("class") if isinstance(spec, dict) else None
    loader = _KINDS.get(kind) if isinstance(kind, str) else None
    if loader is None or isinstance(loader, type):
        raise ValueError(f"{config_file} was refused: it declares the kind "
                         f"{_unknown_kind(kind)}.")
    if isinstance(loader, str):
        module, _, name = loader.partition(":")
        loader = getattr(importlib.import_module(module), name)
    return loader


def _loss_param_names(cls: type) -> list[str]:
    """The names of a loss class's constructor parameters (``delta``, ``quantile``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind in kinds]


def _loss_params(loss: Any) -> dict[str, Any]:
    """The constructor parameters of a registered loss object, as JSON values."""
    return {n: scalar(getattr(loss, n)) for n in _loss_param_names(type(loss))}


def _encode_loss(loss: Any) -> dict:
    """A loss object as a ``"loss"`` entry: its registered name and parameters; a loss per
    task (``Mixed``) as a list of them."""
    from .datafits import LOSSES, Mixed

    if isinstance(loss, Mixed):
        return {"kind": "list", "items": [_encode_loss(part) for part in loss.losses]}
    if LOSSES.get(loss.name) is not type(loss):
        raise TypeError(f"the loss {loss!r} is not a registered loss (those are "
                        f"{', '.join(sorted(LOSSES))}), so a file could not name it.")
    return {"kind": "loss", "name": loss.name, "params": _loss_params(loss)}


def _encode(value: Any, name: str, arrays: dict[str, np.ndarray]) -> dict:
    from .datafits import Datafit
    from .penalties import Penalty

    if isinstance(value, Datafit):
        return _encode_loss(value)
    if name == "param.loss" and isinstance(value, (tuple, np.ndarray)):
        value = list(value)  # a loss per task
    if isinstance(value, Penalty):
        return {"kind": "penalty", "class": type(value).__name__,
                "params": {k: _encode(v, f"{name}.{k}", arrays)
                           for k, v in value.get_params().items()}}
    if sp.issparse(value):  # a sparse graph: its CSR arrays, never densified
        csr = value.tocsr()
        keys = {part: f"{name}.{part}" for part in ("data", "indices", "indptr")}
        for part, key in keys.items():
            arrays[key] = np.asarray(getattr(csr, part))
        return {"kind": "csr", "shape": list(csr.shape), **keys}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in _ARRAY_KINDS:
            arrays[name] = value
            return {"kind": "array", "key": name}
        if value.dtype.kind == "O":
            return {"kind": "labels", "value": [scalar(v) for v in value.ravel()],
                    "shape": list(value.shape)}
        raise TypeError(f"attribute {name} of dtype {value.dtype} cannot be saved.")
    if isinstance(value, list):
        return {"kind": "list",
                "items": [_encode(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, dict) and name.count(".") == 1:  # a parameter keyed by feature
        return {"kind": "mapping", "keys": [scalar(k) for k in value],
                "values": [scalar(v) for v in value.values()]}
    return {"kind": "json", "value": scalar(value)}


def _decode(spec: dict, arrays: Any) -> Any:
    from . import penalties

    kind = spec["kind"]
    if kind == "array":  # each array is read afresh and used once (see _check_rule)
        return np.asarray(arrays[spec["key"]])
    if kind == "labels":
        out = np.empty(len(spec["value"]), dtype=object)
        out[:] = [unscalar(v) for v in spec["value"]]
        return out.reshape(spec["shape"])
    if kind == "list":
        return [_decode(s, arrays) for s in spec["items"]]
    if kind == "mapping":
        return {unscalar(k): unscalar(v) for k, v in zip(spec["keys"], spec["values"],
                                                         strict=True)}
    if kind == "csr":
        return _csr(spec, arrays)
    if kind == "loss":
        return _loss(spec)
    if kind == "penalty":
        cls = getattr(penalties, spec["class"], None)
        if not (isinstance(cls, type) and issubclass(cls, penalties.Penalty)):
            raise Malformed(f"unknown penalty class {spec['class']!r} in the model file")
        kwargs = {k: _decode(v, arrays) for k, v in spec["params"].items()}
        try:  # a constructor that checks its parameters: refused as the penalty
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            shown = ", ".join(f"{k}={v!r:.40}" for k, v in kwargs.items())
            raise Refused(f"its penalty {cls.__name__}({shown}) is invalid "
                          f"({_first_line(exc)})") from None
    return unscalar(spec["value"])


def _loss(spec: dict) -> Any:
    """The loss object of a ``"loss"`` entry: a registered loss built from its parameters
    (each constructor checks its own: a Huber ``delta`` > 0, a quantile level in (0, 1))."""
    from .datafits import LOSSES

    cls = LOSSES.get(spec["name"])
    if cls is None:
        raise Refused(f"it names the loss {spec['name']!r:.40}, which is not registered (the "
                      f"losses are {', '.join(sorted(LOSSES))})")
    allowed = _loss_param_names(cls)
    unknown = [k for k in spec["params"] if k not in allowed]
    if unknown:
        raise Refused(f"the loss {spec['name']!r} has no parameter {unknown[0]!r:.40}")
    try:
        return cls(**{k: unscalar(v) for k, v in spec["params"].items()})
    except (TypeError, ValueError) as exc:
        raise Refused(f"its loss is invalid ({str(exc).rstrip('.')})") from None


def _check_loss(spec: dict, T: int) -> list[Any]:
    """The ``loss`` parameter of a header: a registered name, a ``"loss"`` entry, or a list of
    them with one entry per task; returns the loss of each task."""
    from .datafits import LOSSES

    def one(entry: dict, where: str) -> Any:
        if entry["kind"] == "loss":
            return _loss(entry)
        value = entry.get("value")
        if entry["kind"] == "json" and isinstance(value, str):
            if value.lower() not in LOSSES:
                raise Refused(f"{where} is {value!r:.40}, which is not a registered loss (the "
                              f"losses are {', '.join(sorted(LOSSES))})")
            return LOSSES[value.lower()]()
        raise Refused(f"{where} holds a {entry['kind']} entry, not a loss")

    if spec["kind"] != "list":
        return [one(spec, "parameter 'loss'")] * T
    items = spec["items"]
    if len(items) != T:
        raise Refused(f"parameter 'loss' lists {len(items)} losses for {T} tasks (one loss per "
                      "task)")
    return [one(item, f"parameter 'loss'[{i}]") for i, item in enumerate(items)]


def _check_classes(attrs: dict, losses: list[Any] | None) -> None:
    """A regressor's ``classes_`` (a fit with one loss per task) holds labels exactly for
    its binary tasks."""
    spec = attrs.get("classes_")
    if spec is None:
        return
    if losses is None:
        raise Refused("attribute 'classes_' is saved, but the loss is not one loss per task")
    for t, (item, loss) in enumerate(zip(spec["items"], losses, strict=True)):
        none = item["kind"] == "json" and item.get("value") is None
        if none != (loss.kind != "binary"):
            raise Refused(f"attribute 'classes_'[{t}] does not fit the task's loss "
                          f"{loss.name!r} (labels for a binary task, None for the others)")


def _csr(spec: dict, arrays: Any) -> sp.csr_matrix:
    """The CSR matrix of a ``"csr"`` entry (shapes checked by :func:`_check_params`); its
    index arrays are checked before scipy sees them: a modified file is refused."""
    data, indices, indptr = (np.asarray(arrays[spec[k]]) for k in ("data", "indices", "indptr"))
    n_rows, n_cols = spec["shape"]
    indices, indptr = indices.astype(np.int64), indptr.astype(np.int64)
    if (indptr[0] != 0 or indptr[-1] != data.shape[0] or np.any(np.diff(indptr) < 0)
            or (indices.size and (indices.min() < 0 or indices.max() >= n_cols))):
        raise Refused("the sparse graph 'penalty.A' has inconsistent CSR indices")
    return sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=(n_rows, n_cols))


def _digest_start(dtype: np.dtype, shape: tuple) -> Any:
    """A SHA-256 fed the dtype and shape of an array, ready for its bytes (C order)."""
    h = hashlib.sha256()
    h.update(str(dtype.str).encode())
    h.update(str(shape).encode())
    return h


def _digest(a: np.ndarray) -> str:
    """SHA-256 of ``a``'s dtype, shape and bytes in C order (hashed in place, or copied in
    slices of about ``_CHUNK`` bytes: never a copy of the whole array)."""
    h = _digest_start(a.dtype, a.shape)
    if a.dtype.hasobject:  # never in a file the format writes: its references, as NumPy has
        h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()
    if a.flags.c_contiguous:
        h.update(a.reshape(-1).view(np.uint8))
        return h.hexdigest()
    step = max(1, _CHUNK // max(1, a[0].nbytes if a.shape[0] else 1))
    for i in range(0, a.shape[0], step):
        h.update(np.ascontiguousarray(a[i:i + step]).reshape(-1).view(np.uint8))
    return h.hexdigest()


# ---------------------------------------------------------------------- what each class holds
# An attribute's rule: ("int", low, high), ("float",) (("float", "finite"): not NaN or inf),
# ("bool",), ("str", choices) for a JSON value; ("array", dtype kinds, shape) for a numeric
# array, its floats finite, and ("array", kinds, shape, (low, high)) with every value in
# low..high (None: unbounded; the positions of tasks: (0, T - 1)); ("labels", shape) for an
# array of any saved dtype, or labels; ("list", length, rule). A shape holds ints, or a range
# of lengths.
def _float_array(*shape: Any) -> tuple:
    return ("array", "f", shape)


def structure_rules(n_tasks: int, n_features: int) -> dict[str, tuple]:
    """The rules of the fitted structure a linear model may hold: what each penalty a file
    can name (those of :mod:`regmtl.penalties`) declares in its ``saved_structure``."""
    from . import penalties

    rules: dict[str, tuple] = {}
    for name in penalties.__all__:
        cls = getattr(penalties, name)
        if isinstance(cls, type) and issubclass(cls, penalties.Penalty):
            rules.update(cls.saved_structure(n_tasks, n_features))
    return rules


def linear_rules(classifier: bool, T: int, p: int, single: bool,
                 classes: tuple[int, ...] | None = None) -> dict[str, tuple]:
    """The attributes a linear estimator's ``fit`` (and
    :func:`~regmtl.scaling.fit_standardized`) may set, with their penalty's structure;
    ``classes``, a multinomial classifier's number of classes per task (its ``coef_`` has a row
    per class of each task)."""
    if classifier and classes is not None and max(classes) > 2:
        rules = linear_rules(True, T, p, False)
        K = int(sum(classes))
        rules["coef_"], rules["intercept_"] = _float_array(K, p), _float_array(K)
        rules["classes_"] = (("labels", (classes[0],)) if single else
                             ("list", T, ("labels", (range(2, max(classes) + 1),))))
        rules.update(structure_rules(K, p))  # (a column of W per class of each task)
        return rules
    rules = {
        "n_features_in_": ("int", 1, None), "n_tasks_": ("int", 1, None),
        "input_form_": ("str", FORMS), "tasks_": ("labels", (T,)),
        "feature_names_in_": ("labels", (p,)),
        "coef_": _float_array(p) if single else _float_array(T, p),
        "intercept_": ("float", "finite") if single else _float_array(T),
        "n_iter_": ("int", 0, None), "task_sizes_": ("array", "f", (T,), (0, None)),
        "dual_gap_": ("float",), "kkt_residual_": ("float",), "objective_": ("float",),
        "objective_at_zero_": ("float",), "certificate_relative_": ("float",),
        "loss_": ("loss", T),
        **structure_rules(T, p),
        "feature_mean_": _float_array(p),
        "feature_scale_": ("array", "f", (p,), (np.finfo(np.float64).tiny, None)),
    }
    if classifier:
        rules["classes_"] = ("labels", (2,)) if single else ("list", T, ("labels", (2,)))
    else:
        rules["residual_variance_"] = ("array", "f", (T,), (0, None))
        # one loss per task: the labels of each binary task, None for the others
        rules["classes_"] = ("list", T, ("optional", ("labels", (2,))))
    return rules


#: the linear estimators by class name: whether each is a classifier (their rules are
#: :func:`linear_rules`; the class is found by name, so this module imports none of them)
def saved_attributes(cls: type) -> frozenset[str]:
    """The names of the fitted attributes ``cls`` writes and :func:`load` accepts."""
    return frozenset(cls.saved_rules(1, 1, False)) if hasattr(cls, "saved_rules") \
        else frozenset()


# ---------------------------------------------------------------------- save
class SaveMixin:
    """Adds ``save`` to a model class; subclasses register themselves for :func:`~regmtl.load`.

    :class:`~regmtl.MultiTaskRegressor`, :class:`~regmtl.MultiTaskClassifier` (and so the
    ``best_estimator_`` of the CV estimators) and :class:`~regmtl.TransferredTask` have it. A
    subclass is a scikit-learn estimator (``get_params``) whose fitted attributes end in ``_``
    and hold arrays (numeric, string or of labels), lists of them, penalties, or str, int,
    float and bool values; its class name must be unique, as :func:`~regmtl.load` finds the
    class by name. Only the fitted attributes the class declares (what its ``fit`` sets) are
    written, and only those are read back.

    See Also
    --------
    regmtl.load : Reads the file back.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor, load
    >>> from regmtl.datasets import make_multitask_regression
    >>> data = make_multitask_regression(3, 20, 4, n_informative=2, random_state=0)
    >>> model = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(data.X, data.y)
    >>> model.save("model.npz")
    >>> again = load("model.npz")
    >>> type(again).__name__, bool((again.coef_ == model.coef_).all())
    ('MultiTaskRegressor', True)
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _KINDS[cls.__name__] = cls

    @classmethod
    def saved_rules(cls, n_tasks: int, n_features: int, single: bool) -> dict[str, tuple]:
        """The rule of every fitted attribute the class saves (see
        :meth:`regmtl.Penalty.saved_structure` for the rules), for a model of ``n_tasks``
        tasks and ``n_features`` features (``single``: fitted on one task's X and y).

        Each model family overrides it (the linear estimators with ``linear_rules``);
        empty for a class that saves nothing.
        """
        return {}

    @classmethod
    def saved_required(cls, attrs: dict) -> tuple[str, ...]:
        """The attributes a file of the class must hold, given its header's ``attrs``."""
        return ()

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (``.npz``; no pickle).

        The file holds the constructor parameters and the fitted attributes the class
        declares (names ending in ``_``), with a SHA-256 digest of every array; read it back
        with :func:`~regmtl.load`.

        Parameters
        ----------
        path : str or path-like
            The file to write (overwritten if it exists).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        TypeError
            If an attribute holds a value that cannot be saved (e.g. an arbitrary object
            as a task label), or the class declares no attributes to save.
        """
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if hasattr(self, "fit"):
            check_is_fitted(self)
        elif not self.__sklearn_is_fitted__():  # a result object such as TransferredTask
            raise NotFittedError(f"This {type(self).__name__} holds no fitted model.")
        names = saved_attributes(type(self))
        if not names:
            raise TypeError(f"{type(self).__name__} declares no attributes to save, so "
                            "regmtl.load could not read it back.")
        arrays: dict[str, np.ndarray] = {}
        params = {k: _encode(v, f"param.{k}", arrays) for k, v in self.get_params(False).items()}
        attrs = {k: _encode(v, f"attr.{k}", arrays) for k, v in vars(self).items() if k in names}
        header = {
            "format": FORMAT_NAME,
            "format_version": _format_of(params, attrs),
            "regmtl_version": _package_version(),
            "class": type(self).__name__,
            "params": params,
            "attributes": attrs,
            "sha256": {k: _digest(a) for k, a in arrays.items()},
        }
        blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **{_HEADER: blob}, **arrays)


def _format_of(params: dict, attrs: dict) -> int:
    """The oldest format that holds a file of these encoded ``params`` and ``attrs``."""
    if _FORMAT_3_ATTRS & set(attrs):
        return 3
    return 2 if '"kind": "csr"' in json.dumps(params) else 1


# ---------------------------------------------------------------------- reading the archive
def _npy_header(fp: Any) -> tuple[tuple, bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of a ``.npy`` stream, reading only its header.

    The header's length is bounded before it is read.
    """
    head = fp.read(10)
    if len(head) < 10:
        raise Refused("an array member is shorter than a .npy header")
    major = np.lib.format.read_magic(io.BytesIO(head[:8]))
    if major == (1, 0):
        n = struct.unpack("<H", head[8:10])[0]
        reader = np.lib.format.read_array_header_1_0
    elif major == (2, 0):
        head += fp.read(2)
        n = struct.unpack("<I", head[8:12])[0]
        reader = np.lib.format.read_array_header_2_0
    else:
        raise Refused(f"an array member has .npy version {major}, which the format never writes")
    if n > _MAX_NPY_HEADER:
        raise Refused(f"an array member declares a .npy header of {n} bytes")
    raw = fp.read(n)
    if len(raw) != n:
        raise Refused("an array member ends inside its .npy header")
    shape, fortran, dtype = reader(io.BytesIO(head[8:] + raw), max_header_size=_MAX_NPY_HEADER)
    return shape, fortran, dtype, len(head) + n


class _Member:
    """One array of the archive: what its headers declare, before any data is read."""

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str):
        self.zf, self.info, self.key = zf, info, key
        with zf.open(info) as fp:
            try:
                self.shape, self.fortran, self.dtype, self.offset = _npy_header(fp)
            except ValueError as exc:  # NumPy's refusal of the header text
                raise Refused(f"array {key!r} has an unreadable .npy header ({exc})") from None
        dt = self.dtype
        if (dt.kind not in _ARRAY_KINDS or dt.names is not None or dt.subdtype is not None
                or dt.hasobject):
            raise Refused(f"array {key!r} has dtype {dt}; model files hold only numeric, "
                          "boolean and fixed-width string arrays")
        if any(n < 0 for n in self.shape):
            raise Refused(f"array {key!r} declares the shape {self.shape}")
        self.nbytes = math.prod(self.shape) * dt.itemsize
        if info.file_size != self.offset + self.nbytes:
            raise Refused(
                f"array {key!r} declares {info.file_size} bytes in the archive, but its .npy "
                f"header describes {self.nbytes} bytes of data (shape {self.shape}, dtype {dt})"
            )

    def _stream(self, sink: Any) -> None:
        """Hand the data to ``sink`` in chunks of at most ``_CHUNK`` bytes: exactly the
        declared bytes, never more (a stream longer or shorter than its headers is refused)."""
        with self.zf.open(self.info) as fp:
            fp.read(self.offset)
            left = self.nbytes
            while left:
                chunk = fp.read(min(left, _CHUNK))
                if not chunk:
                    break
                sink(chunk)
                left -= len(chunk)
            if left or fp.read(1):
                raise Refused(f"array {self.key!r} does not hold the {self.nbytes} bytes its "
                              "headers declare")

    @property
    def inflates(self) -> bool:
        """Whether the data is more than ``_RATIO`` times the bytes it takes in the file."""
        return self.nbytes > _RATIO * self.info.compress_size + 2**16

    @property
    def streamable(self) -> bool:
        """Whether the bytes are in C order, the order the digest reads them in."""
        return not self.fortran or len(self.shape) < 2

    def matches(self, digest: str) -> bool:
        """Whether the data has ``digest``, read in chunks: nothing is allocated for it."""
        h = _digest_start(self.dtype, self.shape)
        self._stream(h.update)
        return h.hexdigest() == digest

    def read(self) -> np.ndarray:
        """The array: its declared bytes read into one buffer of their size (no copies)."""
        buf = np.empty(self.nbytes, dtype=np.uint8)
        view, pos = memoryview(buf), 0

        def sink(chunk: bytes) -> None:
            nonlocal pos
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)

        self._stream(sink)
        order = "F" if self.fortran else "C"
        if self.dtype.itemsize == 0:  # e.g. "<U0": no bytes to view
            return np.empty(self.shape, dtype=self.dtype, order=order)
        return buf.view(self.dtype).reshape(self.shape, order=order)


def _members(zf: zipfile.ZipFile) -> dict[str, _Member]:
    """The archive's arrays by key, the header member first; only their headers are read."""
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in infos or info.is_dir():
            raise Refused(f"the archive holds a member {name!r} that is not one array")
        infos[name[:-4]] = info
    if _HEADER not in infos:
        raise zipfile.BadZipFile("the archive has no header")
    order = [_HEADER, *(k for k in infos if k != _HEADER)]
    return {k: _Member(zf, infos[k], k) for k in order}


def _read_header(member: _Member) -> Any:
    if (member.dtype != np.uint8 or len(member.shape) != 1
            or member.nbytes > _MAX_HEADER_BYTES):
        raise Refused(f"its header is a {member.dtype} array of shape {member.shape}, not "
                      f"a JSON text of at most {_MAX_HEADER_BYTES} bytes")
    return json.loads(member.read().tobytes().decode("utf-8"))


# ---------------------------------------------------------------------- checking the header
def _check_entry(spec: Any, where: str, depth: int = 0) -> None:
    """``spec`` is an entry as :func:`_encode` writes it (its form, not yet its content)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise Malformed(f"{where} is not an entry")
    kind = spec["kind"]
    if kind == "array":
        if not isinstance(spec.get("key"), str):
            raise Malformed(f"{where} names no array")
    elif kind == "labels":
        values, shape = spec.get("value"), check_shape(spec.get("shape"))
        if not isinstance(values, list) or math.prod(shape) != len(values):
            raise Malformed(f"{where} declares the shape {tuple(shape)} for "
                            f"{len(values) if isinstance(values, list) else 'no'} labels")
        for v in values:
            check_scalar(v, where)
    elif kind == "list" and depth < 2:
        if not isinstance(spec.get("items"), list):
            raise Malformed(f"{where} has no items")
        for i, item in enumerate(spec["items"]):
            _check_entry(item, f"{where}[{i}]", depth + 1)
    elif kind == "csr" and depth == 1:
        check_shape(spec.get("shape"))
        if len(spec["shape"]) != 2 or not all(
                isinstance(spec.get(k), str) for k in ("data", "indices", "indptr")):
            raise Malformed(f"{where} is not a sparse matrix entry")
    elif kind == "loss" and depth < 2:
        params = spec.get("params")
        if not isinstance(spec.get("name"), str) or not isinstance(params, dict):
            raise Malformed(f"{where} is not a loss entry")
        for k, v in params.items():
            check_scalar(v, f"{where}.{k}")
    elif kind == "penalty" and depth == 0:
        if not isinstance(spec.get("class"), str) or not isinstance(spec.get("params"), dict):
            raise Malformed(f"{where} is not a penalty entry")
        for k, v in spec["params"].items():
            _check_entry(v, f"{where}.{k}", depth + 1)
    elif kind == "json":
        if "value" not in spec:
            raise Malformed(f"{where} has no value")
        check_scalar(spec["value"], where)
    elif kind == "mapping" and depth == 0:
        keys, values = spec.get("keys"), spec.get("values")
        if not isinstance(keys, list) or not isinstance(values, list) or \
                len(keys) != len(values):
            raise Malformed(f"{where} is not a mapping entry")
        for k, v in zip(keys, values, strict=True):
            check_scalar(k, where)
            check_scalar(v, where)
    else:
        raise Malformed(f"unknown entry kind {kind!r} in the model file ({where})")


def _json_value(attrs: dict, name: str, rule: tuple) -> Any:
    """A JSON attribute the shapes depend on, checked against ``rule``."""
    if name not in attrs:
        raise Malformed(f"it lacks the attribute {name!r}")
    _check_rule(name, attrs[name], rule, {}, {})
    return attrs[name]["value"]


def _dims(cls: type, attrs: dict) -> tuple[int, int, bool]:
    """(tasks, features, single task) from the header's numbers."""
    rules = cls.saved_rules(1, 1, False)
    p = _json_value(attrs, "n_features_in_", rules["n_features_in_"])
    if "n_tasks_" not in rules:
        return 1, p, True
    T = _json_value(attrs, "n_tasks_", rules["n_tasks_"])
    single = _json_value(attrs, "input_form_", rules["input_form_"]) == "single"
    if single and T != 1:
        raise Refused(f"input_form_ is 'single' but n_tasks_ is {T}")
    return T, p, single


def _class_counts(attrs: dict, members: dict) -> tuple[int, ...] | None:
    """A classifier's number of classes per task, read from the shapes its header (labels)
    or the arrays' headers (numbers) declare for ``classes_`` (None where they are neither:
    the rules then refuse them)."""
    spec = attrs.get("classes_")
    items = spec.get("items") if isinstance(spec, dict) and spec.get("kind") == "list" else [spec]
    counts = []
    for item in items or []:
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind == "labels":
            shape = item.get("shape")
        elif kind == "array" and item.get("key") in members and item["key"] != _HEADER:
            shape = list(members[item["key"]].shape)
        else:
            return None
        if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)):
            return None
        counts.append(shape[0])
    return tuple(counts) if counts else None


def _fits(shape: tuple, want: tuple) -> bool:
    return len(shape) == len(want) and all(
        n in w if isinstance(w, range) else n == w for n, w in zip(shape, want, strict=True))


def _show(want: tuple) -> str:
    dims = [f"{w.start}..{w.stop - 1}" if isinstance(w, range) else str(w) for w in want]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"


def _check_rule(name: str, spec: dict, rule: tuple, members: dict[str, _Member],
                used: dict[str, tuple[str, tuple]], dims: str = "the header") -> None:
    """An entry against its rule; array shapes come from the ``.npy`` headers, the expected
    ones from the header's numbers (``dims`` says which). Each array checked is recorded in
    ``used`` (key -> its name and rule), so that its values are checked once read
    (:func:`_check_values`)."""
    kind, what = spec["kind"], rule[0]
    if what in ("int", "float", "bool", "str"):
        v = spec.get("value") if kind == "json" else None
        types = {"int": int, "float": (int, float), "bool": bool, "str": str}[what]
        if (kind != "json" or not isinstance(v, types)
                or (what != "bool" and isinstance(v, bool))):
            raise Refused(f"attribute {name!r} must be a {what}, got {spec!r:.80}")
        if what == "int" and not ((rule[1] is None or v >= rule[1])
                                  and (rule[2] is None or v <= rule[2])):
            raise Refused(f"attribute {name!r} is {v}, outside {rule[1]}..{rule[2]}")
        if what == "str" and v not in rule[1]:
            raise Refused(f"attribute {name!r} is {v!r}, not one of {rule[1]}")
        if what == "float" and rule[1:] == ("finite",) and not math.isfinite(v):
            raise Refused(f"attribute {name!r} is {v!r}; it must be a finite number")
        return
    if what == "loss":  # a registered loss, or one per task (its entries: _check_entry)
        items = spec.get("items", []) if kind == "list" else [spec]
        if kind not in ("loss", "list") or any(i.get("kind") != "loss" for i in items) or (
                kind == "list" and len(items) != rule[1]):
            raise Refused(f"attribute {name!r} must be a loss, or a list of {rule[1]} (one "
                          f"per task), got {spec!r:.80}")
        return
    if what == "optional":
        if kind == "json" and spec.get("value") is None:
            return
        _check_rule(name, spec, rule[1], members, used, dims)
        return
    if what == "list":
        if kind != "list" or len(spec["items"]) != rule[1]:
            raise Refused(f"attribute {name!r} must be a list of {rule[1]} entries (one per "
                          "task)")
        for i, item in enumerate(spec["items"]):
            _check_rule(f"{name}[{i}]", item, rule[2], members, used, dims)
        return
    want = rule[2] if what == "array" else rule[-1]
    if kind == "labels" and what == "labels":
        shape = tuple(spec["shape"])
        check_labels(name, [unscalar(v) for v in spec["value"]])
    elif kind == "array":
        key = spec["key"]
        if key not in members or key == _HEADER:
            raise Malformed(f"attribute {name!r} names the array {key!r}, which the file "
                            "lacks")
        if key in used:
            raise Refused(f"the array {key!r} is named twice")
        used[key] = (name, rule)
        shape, dtype = members[key].shape, members[key].dtype
        if what == "array" and dtype.kind not in rule[1]:
            raise Refused(f"attribute {name!r} has dtype {dtype}, expected "
                          f"{_KIND_NAMES.get(rule[1], 'numeric')} values")
    else:
        raise Refused(f"attribute {name!r} must be an array, got a {kind} entry")
    if not _fits(shape, want):
        raise Refused(f"attribute {name!r} has shape {shape}, but {dims} make it "
                      f"{_show(want)}")


#: the per-feature terms (``regmtl.feature_terms``) a file may hold as arrays: name ->
#: (p, T, two-dimensional) -> (dtype kinds, shape); their values are checked as user input
#: (:func:`check_loaded`)
_TERM_RULES = {
    "penalty_factor": lambda p, T, wide: ("biuf", (p, T) if wide else (p,)),
    "lower_bounds": lambda p, T, wide: ("biuf", (p, T) if wide else (p,)),
    "upper_bounds": lambda p, T, wide: ("biuf", (p, T) if wide else (p,)),
    "exclude": lambda p, T, wide: ("biu", (range(p + 1),)),
}


def _check_params(cls: type, params: dict, T: int, members: dict[str, _Member],
                  used: dict[str, tuple[str, tuple]], dims: str,
                  p: int = 0) -> list[Any] | None:
    """Constructor parameters: known names; arrays only a task weight or an alpha per task
    (T,), or a graph (T, T), dense or CSR (data and indices of one length nnz <= T^2, indptr
    of T + 1); a loss registered, with valid parameters, one per task in a list. Returns the
    loss of each task of a list of losses (else None)."""
    known = set(cls._get_param_names()) if hasattr(cls, "_get_param_names") else set()
    losses = None
    for name, spec in params.items():
        if name not in known:
            raise Refused(f"parameter {name!r} is not a parameter of {cls.__name__}")
        _check_entry(spec, f"parameter {name!r}")
        kind = spec["kind"]
        if name == "loss":
            each = _check_loss(spec, T)
            losses = each if kind == "list" else None
        elif kind == "array" and name in ("task_weight", "alpha"):
            _check_rule(name, spec, ("array", "f", (T,), (0, None)), members, used, dims)
        elif kind == "list" and name in ("task_weight", "alpha"):  # given as a list
            _check_numbers(name, spec["items"], T)
        elif name in _TERM_RULES and kind in ("array", "list", "labels", "mapping"):
            if kind == "array":  # (values checked once the model is built: check_loaded)
                key = spec["key"]
                wide = key in members and len(members[key].shape) == 2
                kinds, shape = _TERM_RULES[name](p, T, wide)
                _check_rule(name, spec, ("array", kinds, shape, (None, None), "inf"),
                            members, used, dims)
        elif kind == "penalty" and name == "penalty":
            for k, v in spec["params"].items():
                if v["kind"] == "array" and k == "A":
                    _check_rule(f"penalty.{k}", v, ("array", "biuf", (T, T)), members,
                                used, dims)
                elif v["kind"] == "csr" and k == "A":
                    _check_csr(f"penalty.{k}", v, T, members, used, dims)
                elif v["kind"] != "json":
                    raise Refused(f"penalty parameter {k!r} holds a {v['kind']} entry")
        elif kind != "json":
            raise Refused(f"parameter {name!r} holds a {kind} entry")
    return losses


def _check_numbers(name: str, items: list, T: int) -> None:
    """A parameter given as a list of one number per task: T finite numbers >= 0."""
    values = [i.get("value") if i.get("kind") == "json" else None for i in items]
    if len(values) != T or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in values):
        raise Refused(f"parameter {name!r} must list {T} numbers, one per task")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise Refused(f"parameter {name!r} holds {bad[0]!r}; its values must be finite and "
                      ">= 0")


def _check_csr(name: str, spec: dict, T: int, members: dict[str, _Member],
               used: dict[str, tuple[str, tuple]], dims: str) -> None:
    """A sparse (T, T) graph: its shape, then its three arrays' dtypes and lengths."""
    if tuple(spec["shape"]) != (T, T):
        raise Refused(f"parameter {name!r} has shape {tuple(spec['shape'])}, but {dims} "
                      f"make it ({T}, {T})")
    key = spec["data"]
    _check_rule(f"{name}.data", {"kind": "array", "key": key}, ("array", "biuf",
                (range(T * T + 1),)), members, used, dims)
    nnz = members[key].shape[0]
    _check_rule(f"{name}.indices", {"kind": "array", "key": spec["indices"]},
                ("array", "iu", (nnz,)), members, used, "its data")
    _check_rule(f"{name}.indptr", {"kind": "array", "key": spec["indptr"]},
                ("array", "iu", (T + 1,)), members, used, dims)


def _check_header(header: Any, members: dict[str, _Member]) -> _Checked:
    """Everything in the header, before any array data is read."""
    kind = header.get("class")
    cls = _saved_class(kind)
    if not isinstance(cls, type) or not cls.saved_rules(1, 1, False):
        raise Refused(f"it holds an unknown model class {_unknown_kind(kind)}")
    params, attrs, digests = (header.get(k) for k in ("params", "attributes", "sha256"))
    if not isinstance(params, dict) or not isinstance(attrs, dict):
        raise Malformed("params and attributes must be objects")
    if (not isinstance(digests, dict) or set(digests) != set(members) - {_HEADER}
            or not all(isinstance(d, str) for d in digests.values())):
        raise _Integrity()
    for name, spec in attrs.items():
        _check_entry(spec, f"attribute {name!r}")
    allowed = cls.saved_rules(1, 1, False)
    for name in attrs:
        if name not in allowed:
            raise Refused(f"attribute {name!r:.80} is not one that {cls.__name__} saves "
                          f"(those are {', '.join(sorted(allowed))})")
    for name in cls.saved_required(attrs):
        if name not in attrs:
            raise Malformed(f"it lacks the attribute {name!r}")
    T, p, single = _dims(cls, attrs)
    # a classifier's classes per task (a multinomial fit has a row of coef_ per class)
    classifier = ("classes_" in cls.saved_rules(1, 1, False)
                  and "loss" not in getattr(cls, "_get_param_names", list)())
    classes = _class_counts(attrs, members) if classifier else None
    rules = (cls.saved_rules(T, p, single, classes) if classes is not None
             else cls.saved_rules(T, p, single))
    dims = (f"n_features_in_ = {p}" if "n_tasks_" not in rules
            else f"n_tasks_ = {T} and n_features_in_ = {p}")
    if classes is not None and max(classes) > 2:
        dims = (f"n_tasks_ = {T}, n_features_in_ = {p} and the classes_ "
                f"({', '.join(map(str, classes))} per task)")
    used: dict[str, tuple[str, tuple]] = {}
    for name, spec in attrs.items():
        _check_rule(name, spec, rules[name], members, used, dims)
    losses = _check_params(cls, params, T, members, used, dims, p)
    if "loss" in getattr(cls, "_get_param_names", list)():  # a classifier's classes_ differ
        _check_classes(attrs, losses)
    unused = set(members) - set(used) - {_HEADER}
    if unused:
        raise Refused(f"it holds arrays its header does not use: {sorted(unused)[:5]}")
    return _Checked(cls, params, attrs, digests, used, T, p)


class _Checked(NamedTuple):
    """What :func:`_check_header` found: the class, its parameters, attributes and digests,
    each array's name and rule by key, and the numbers of tasks and features."""

    cls: type
    params: dict
    attrs: dict
    digests: dict
    rules: dict[str, tuple[str, tuple]]
    n_tasks: int
    n_features: int


def _check_values(name: str, a: np.ndarray, rule: tuple) -> None:
    """An array's values against its rule: floats finite; labels distinct; a rule's fourth
    entry ``(low, high)`` bounds every value (``None``: unbounded), e.g. the positions of
    tasks. Read in slices of ``_CHUNK`` bytes: nothing of the array's size is allocated."""
    if rule[0] == "labels" and a.ndim == 1:
        check_labels(name, a)
    bounds = rule[3] if rule[0] == "array" and len(rule) > 3 else (None, None)
    infinite = rule[0] == "array" and len(rule) > 4 and rule[4] == "inf"  # (a bound, a factor)
    if a.dtype.kind != "f" and bounds == (None, None):
        return
    low, high = bounds
    flat = np.ravel(a, order="K")  # a view of the array as stored
    step = max(1, _CHUNK // max(1, a.dtype.itemsize))
    for i in range(0, flat.size, step):
        part = flat[i:i + step]
        if infinite and part.dtype.kind == "f" and np.isnan(part).any():
            raise Refused(f"parameter {name!r} holds NaN (a factor or bound is a number; "
                          "inf: excluded or unbounded)")
        if part.dtype.kind == "f" and not (infinite or np.isfinite(part).all()):
            raise Refused(f"attribute {name!r} holds NaN or infinite values")
        bad = np.zeros(part.shape, bool)
        if low is not None:
            bad |= part < low
        if high is not None:
            bad |= part > high
        if bad.any():
            value = part[int(np.flatnonzero(bad)[0])].item()
            if high is None:
                raise Refused(f"attribute {name!r} holds {value!r}; its values must be >= "
                              f"{low:g}")
            if low is None:
                raise Refused(f"attribute {name!r} holds {value!r}; its values must be <= "
                              f"{high:g}")
            raise Refused(f"attribute {name!r} holds {value!r}, outside {low}..{high}")


# ---------------------------------------------------------------------- load
def load(path: str | os.PathLike, *, max_bytes: int | None = None) -> Any:
    """Load a model written by ``save``; refuses newer formats and modified files.

    The archive is read without pickle, so loading runs no code from the file, and nothing in
    the file is trusted: the class must be one of regmtl's models, only the attributes that
    class declares are set, every array's shape must be the one the model's numbers of tasks
    and features imply, and every size is checked before any array data is read (no more than
    the declared bytes are then decompressed, and no more than ``max_bytes`` declared). The
    values are then checked as a fit checks user input (``check_loaded``): the parameters
    by the estimator's and the penalty's own checks, float arrays finite, positions of tasks
    in range, labels distinct, the dirty models' parts adding up to ``coef_``. A folder is a
    deep estimator (see :meth:`regmtl.deep.DeepMultiTaskRegressor.save`; needs PyTorch).
    ``regmtl.load`` is this function.

    Parameters
    ----------
    path : str or path-like
        A file written by the ``save`` method of a model (see
        :class:`~regmtl.persistence.SaveMixin`), or a folder written by the ``save`` method of
        a deep estimator.
    max_bytes : int, optional
        The most bytes the model's arrays may take once loaded: a file whose arrays declare
        more (a small file of highly compressible zeros that inflates to gigabytes, all
        consistent) is refused before any array data is read. By default the bound is
        ``max(256 MiB, 64 x the file's size)`` (``persistence.default_max_bytes``: a fit's
        arrays compress far less than 64-fold, unless almost all zeros); pass a larger value
        to load such a file you trust. The header's JSON text is bounded too, by the larger of the
        two, counting 24 bytes of Python objects per byte of text. For a folder, it bounds
        the bytes of the weights file, which is read as it is stored.

    Returns
    -------
    MultiTaskRegressor, MultiTaskClassifier, TransferredTask or a deep estimator
        The fitted model, with its parameters and fitted attributes.

    Raises
    ------
    ValueError
        If the path is not a regular file (a device such as ``/dev/zero``, a FIFO), or the
        file is not a readable regmtl model file, uses a newer format than this
        version reads, fails its integrity check, names an unknown class or attribute,
        holds arrays whose shapes, dtypes or sizes do not fit its header, declares more
        bytes than ``max_bytes`` (or its default), or holds a parameter or fitted value that
        a fit would not (the message names the field); the message names the file.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MultiTaskClassifier, load
    >>> from regmtl.datasets import make_multitask_classification
    >>> data = make_multitask_classification(2, 40, 3, n_informative=2, random_state=0)
    >>> clf = MultiTaskClassifier(penalty="l21", alpha=0.01).fit(data.X, data.y)
    >>> clf.save("clf.npz")
    >>> again = load("clf.npz")
    >>> all(np.array_equal(a, b) for a, b in zip(again.predict(data.X), clf.predict(data.X)))
    True

    A file that is not a model is refused:

    >>> _ = open("notes.npz", "w").write("not a model")
    >>> try:
    ...     load("notes.npz")
    ... except ValueError as exc:
    ...     print("refused:", "not a readable regmtl model file" in str(exc))
    refused: True
    """
    max_bytes = check_option("max_bytes", max_bytes, "int", low=0, none=True)
    if os.path.isdir(path):
        return _folder_loader(Path(path))(path, max_bytes=max_bytes)
    name = repr(os.fspath(path))
    try:
        with open_regular(path, name) as fh, zipfile.ZipFile(fh) as zf:
            return _load_archive(zf, name, max_bytes, os.fstat(fh.fileno()).st_size)
    except Malformed as exc:
        raise ValueError(f"{name} has a malformed header ({str(exc).rstrip('.')}).") from None
    except Refused as exc:
        raise ValueError(f"{name} was refused: {str(exc).rstrip('.')}.") from None
    except _Integrity:
        raise ValueError(
            f"{name} failed its integrity check: its arrays do not match the digests in its "
            "header (the file was modified or corrupted)."
        ) from None
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError,
            NotImplementedError, UnicodeDecodeError, json.JSONDecodeError,
            RecursionError) as exc:
        raise ValueError(
            f"{name} is not a readable regmtl model file ({type(exc).__name__}: {exc}); it may "
            "be truncated or corrupted."
        ) from None


def check_loaded(model: Any, n_tasks: int, n_features: int) -> None:
    """The checks a fit makes, made on a model read from a file (``Refused`` naming the field).

    A file holds what a user could have passed, so its parameters go through the checks of
    user input: scikit-learn's parameter constraints, the penalty's ``check`` at the saved
    numbers of tasks and features (every parameter of every penalty: ``cap > 0``, a graph's
    shape), the alpha (one per task only for a separable penalty), and a loss rebuilt from
    fitted attributes through its constructor. Then the identities of the fitted structure
    (:func:`check_structure`).
    """
    validate = getattr(model, "_validate_params", None)
    if callable(validate) and hasattr(model, "_parameter_constraints"):
        try:
            validate()
        except (TypeError, ValueError) as exc:
            raise Refused(f"its parameters are invalid ({_first_line(exc)})") from None
    terms = getattr(model, "_checked_terms", None)
    if callable(terms):  # per-feature factors and bounds: the checks of a fit
        try:
            terms(n_tasks, n_features)
        except (TypeError, ValueError) as exc:
            raise Refused(f"its per-feature terms are invalid ({_first_line(exc)})") from None
    rebuild = getattr(model, "_loss", None)
    if callable(rebuild):  # a loss kept in fitted attributes (TransferredTask: loss_params_)
        try:
            rebuild()
        except (TypeError, ValueError) as exc:
            raise Refused(f"attributes 'loss_' and 'loss_params_' do not make a valid loss "
                          f"({_first_line(exc)})") from None
    if getattr(model, "penalty", None) is None or not hasattr(model, "alpha"):
        return
    from .penalties import make_penalty
    from .task_alpha import resolve_alpha

    try:
        penalty = make_penalty(model.penalty)
        penalty.check(n_features, n_tasks)
    except (TypeError, ValueError) as exc:
        raise Refused(f"its penalty {model.penalty!r:.80} is invalid "
                      f"({_first_line(exc)})") from None
    try:
        alpha, _ = resolve_alpha(model.alpha, penalty, n_tasks)
    except (TypeError, ValueError) as exc:
        raise Refused(f"parameter 'alpha' is invalid ({_first_line(exc)})") from None
    check_structure(model, penalty, alpha, n_tasks)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else repr(exc)


def check_structure(model: Any, penalty: Any, alpha: float, n_tasks: int) -> None:
    """The fitted structure of a linear model is the one its penalty sets, and agrees with
    ``coef_``.

    Only the attributes the penalty declares (``structure_attrs``, and the names of older files
    in its ``saved_structure``) may be present. A penalty whose fit keeps a variable V beside
    W (``penalty.variable(structure)``: the parts P and Q of the dirty models) must compose the
    coefficients, ``penalty.compose(V) == coef_`` to 1e-9 relative to the largest entry, and
    the integer structure it derives from V (the outlier tasks: the nonzero columns of Q) must
    be the saved one.
    """
    from .penalties import STRUCTURE_ATTRS

    declared = set(penalty.structure_attrs) | set(type(penalty).saved_structure(1, 1))
    foreign = sorted(k for k in set(STRUCTURE_ATTRS) | set(structure_rules(1, 1))
                     if k in vars(model) and k not in declared)
    if foreign:
        raise Refused(f"attribute {foreign[0]!r} is not one that penalty {penalty!r:.60} "
                      f"sets (it sets {', '.join(penalty.structure_attrs) or 'none'})")
    structure = {k: vars(model)[k] for k in penalty.structure_attrs if k in vars(model)}
    V = penalty.variable(structure) if structure else None
    if V is None:
        return
    W = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64)).T
    names = " and ".join(repr(k) for k, v in structure.items() if np.asarray(v).dtype.kind == "f")
    W_V = np.asarray(penalty.compose(V), dtype=np.float64)
    if W_V.shape != W.shape:
        raise Refused(f"attributes {names} hold coefficients of shape {W_V.T.shape}, but "
                      f"coef_ has shape {W.T.shape}")
    scale = max(float(np.abs(W).max(initial=0.0)), float(np.abs(V).max(initial=0.0)))
    err = float(np.abs(W_V - W).max(initial=0.0))
    if err > 1e-9 * scale:
        raise Refused(f"attributes {names} do not compose coef_ (the penalty's parts of a fit "
                      f"add up to its coefficients): they differ from coef_ by {err:.3g}, "
                      f"the largest coefficient being {scale:.3g}")
    if W.shape[1] != n_tasks:  # the classes' layout: its structure is on task blocks
        from .classes import layout_of_classes

        classes = model.classes_
        penalty = penalty.on_classes(layout_of_classes(
            classes if isinstance(classes, list) else [classes]))
    for k, fresh in penalty.structure(V, alpha).items():
        fresh = np.asarray(fresh)
        if k in structure and fresh.dtype.kind in "iub" and not np.array_equal(
                np.asarray(structure[k]), fresh):
            raise Refused(f"attribute {k!r} is {np.asarray(structure[k]).tolist()!r:.80}, but "
                          f"{names} make it {fresh.tolist()!r:.80}")


def _set_cluster_factors(model: Any, M: np.ndarray) -> None:
    """``cluster_vectors_``, ``cluster_weights_`` and ``cluster_rest_`` from a dense M (files
    written before the factors): its eigenvectors, all T of them, and eigenvalues."""
    if not np.all(np.isfinite(M)):
        raise Refused("attribute 'cluster_matrix_' holds values that are not finite")
    m, V = np.linalg.eigh(0.5 * (M + M.T))
    model.cluster_vectors_, model.cluster_weights_, model.cluster_rest_ = V, m, 0.0


def default_max_bytes(file_size: int) -> int:
    """The most bytes :func:`load` lets a file of ``file_size`` bytes allocate when no
    ``max_bytes`` is given: ``max(DEFAULT_MIN_BYTES, DEFAULT_RATIO * file_size)``.

    The arrays of a model compress little (floats of a fit: about 1.1 to 1; a sparse
    coefficient matrix, most rows zero, some tens to 1), but deflate inflates zeros 1032-fold,
    so a small file can declare arrays of gigabytes, all consistent. Up to this bound a file
    loads; beyond it, only with ``max_bytes`` raised.
    """
    return max(DEFAULT_MIN_BYTES, DEFAULT_RATIO * int(file_size))


def _bound_text(max_bytes: int | None, file_size: int) -> str:
    if max_bytes is not None:
        return f"max_bytes={max_bytes}"
    return (f"the default bound of {default_max_bytes(file_size)} bytes for a file of "
            f"{file_size} bytes (max({DEFAULT_MIN_BYTES}, {DEFAULT_RATIO} x its size); "
            "max_bytes=None")


def _load_archive(zf: zipfile.ZipFile, name: str, max_bytes: int | None = None,
                  file_size: int = 0) -> Any:
    members = _members(zf)
    # the header's JSON text becomes Python objects of up to _JSON_COST bytes per byte; it is
    # bounded before it is read, by the larger of the default bound and max_bytes
    bound = max(default_max_bytes(file_size), max_bytes or 0)
    if members[_HEADER].nbytes * _JSON_COST > bound:
        raise Refused(f"its header declares {members[_HEADER].nbytes} bytes of JSON, which "
                      f"may take {_JSON_COST} times as much once read, more than "
                      f"{_bound_text(max_bytes, file_size)} allows (pass a larger max_bytes "
                      "to regmtl.load, or --max-bytes to regmtl predict, if you trust the "
                      "file)")
    header = _read_header(members[_HEADER])
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{name} is not a regmtl model file.")
    fv = header.get("format_version")
    if isinstance(fv, bool) or not isinstance(fv, int) or fv < 1:
        raise Malformed(f"format_version {fv!r:.40} is not a positive integer")
    if fv > FORMAT_VERSION:
        raise ValueError(
            f"{name} uses model format {fv!r}, newer than this regmtl reads "
            f"({FORMAT_VERSION}); upgrade regmtl to load it."
        )
    checked = _check_header(header, members)
    cls, params, attrs, digests = checked[:4]
    total = sum(m.nbytes for k, m in members.items() if k != _HEADER)
    limit = default_max_bytes(file_size) if max_bytes is None else max_bytes
    if total > limit:
        raise Refused(f"its arrays declare {total} bytes once loaded, more than "
                      f"{_bound_text(max_bytes, file_size)} (raise max_bytes if you trust "
                      f"the file: regmtl.load(path, max_bytes={total}), or regmtl predict "
                      f"--max-bytes {total})")
    # the shapes fit the header's numbers; a member that inflates far beyond its bytes in the
    # file is checked against its digest first, by streaming, so that a refused file never
    # makes load allocate more than a small multiple of its size
    streamed = {k for k, m in members.items()
                if k != _HEADER and m.inflates and m.streamable}
    if any(not members[k].matches(digests[k]) for k in streamed):
        raise _Integrity()
    arrays = {k: m.read() for k, m in members.items() if k != _HEADER}
    if any(_digest(arrays[k]) != d for k, d in digests.items() if k not in streamed):
        raise _Integrity()
    for key, (attr, rule) in checked.rules.items():
        _check_values(attr, arrays[key], rule)
    try:
        model = cls(**{k: _decode(v, arrays) for k, v in params.items()})
        for k, v in attrs.items():
            if k == "cluster_matrix_":  # an older file: the dense M, kept by its factors
                _set_cluster_factors(model, _decode(v, arrays))
                continue
            value = _decode(v, arrays)
            if k == "loss_" and isinstance(value, list):  # (a loss per task, as fitted)
                from .datafits import Mixed

                value = Mixed(value)
            setattr(model, k, value)
        if ("loss_" in saved_attributes(cls) and "loss_" not in attrs
                and getattr(model, "loss", None) is not None):  # (a regressor's)
            model.loss_ = _loss_as_saved(model.loss)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Malformed(str(exc)) from None
    check_loaded(model, checked.n_tasks, checked.n_features)
    return model


def _loss_as_saved(loss: Any) -> Any:
    """The loss a file written before ``loss_`` was kept was fitted with: its ``loss=``, the
    name ``"huber"`` then meaning delta 1.35 in the targets' units (``Huber()`` now reads its
    delta from the data)."""
    from .datafits import Huber, make_loss

    def one(entry):
        return Huber(1.35) if isinstance(entry, str) and entry == "huber" else entry

    if isinstance(loss, (list, tuple, np.ndarray)):
        return make_loss([one(entry) for entry in loss])
    return make_loss(one(loss))
