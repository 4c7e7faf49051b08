"""What every saved model is written with: JSON-safe values, arrays as JSON, checked reads.

The pieces the model families share when they write a model and read one back (the linear
archives of :mod:`regmtl.persistence`, :class:`~regmtl.TransferredTask`, the deep estimators'
folders): task labels and parameters as JSON values (:func:`scalar`, :func:`unscalar`,
:func:`check_scalar`), small arrays as JSON (:func:`array_to_json`, :func:`array_from_json`),
the two ways a file is refused (:class:`Malformed`, :class:`Refused`), and reads that trust
nothing (:func:`open_regular`, :func:`regular_size`, :func:`read_json`). It imports no model.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CONFIG_FILE", "FORMS", "MAX_JSON_BYTES", "Malformed", "Refused", "array_from_json",
    "array_to_json", "check_labels", "check_scalar", "check_shape", "open_regular", "read_json",
    "regular_size", "scalar", "unscalar",
]

#: the input forms a fitted model records in ``input_form_``
FORMS = ("single", "list", "dict", "long", "shared")
#: the file of a model folder that declares what it holds (a deep estimator's config)
CONFIG_FILE = "config.json"
#: the most bytes a JSON text of a model (an archive's header, a folder's config) may take
MAX_JSON_BYTES = 64 * 2**20
MAX_LABEL_DEPTH = 8  # tuples of tuples ... as task labels
_MAX_DIMS = 32


class Malformed(Exception):
    """The file is not what ``save`` writes (its header or config)."""


class Refused(Exception):
    """The file is well formed but inconsistent (shapes, sizes, names)."""


# ---------------------------------------------------------------------- values
def scalar(v: Any) -> Any:
    """``v`` as a JSON value: None, bool, int, float, str, or a tuple of them as
    ``{"tuple": [...]}`` (NumPy scalars as Python's); ``TypeError`` for anything else."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, tuple):
        return {"tuple": [scalar(x) for x in v]}
    raise TypeError(
        f"a value of type {type(v).__name__} cannot be saved; use str, int or float labels."
    )


def unscalar(v: Any) -> Any:
    """The value :func:`scalar` wrote (tuples back as tuples)."""
    if isinstance(v, dict) and set(v) == {"tuple"}:
        return tuple(unscalar(x) for x in v["tuple"])
    return v


def check_scalar(v: Any, where: str, depth: int = 0) -> None:
    """``v`` is what :func:`scalar` writes, tuples nested at most ``MAX_LABEL_DEPTH`` deep;
    :class:`Malformed` naming ``where`` otherwise."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return
    if (isinstance(v, dict) and set(v) == {"tuple"} and isinstance(v["tuple"], list)
            and depth < MAX_LABEL_DEPTH):
        for x in v["tuple"]:
            check_scalar(x, where, depth + 1)
        return
    raise Malformed(f"{where} holds a value that is not a number, string, None or tuple")


def check_labels(name: str, values: Any) -> None:
    """Labels (of tasks, classes, features) are distinct and not NaN or infinite; a
    :class:`Refused` naming the attribute ``name`` otherwise (a label given twice makes two
    tasks or classes one; a NaN label matches nothing)."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise Refused(f"attribute {name!r} holds the label {v!r} (NaN or infinite); labels "
                          "are finite")
    seen: set = set()
    for v in values:
        if v in seen:
            raise Refused(f"attribute {name!r} holds the label {v!r} twice; labels are "
                          "distinct")
        seen.add(v)


def check_shape(value: Any) -> list[int]:
    """``value`` as a shape: a list of at most 32 non-negative ints; :class:`Malformed`
    otherwise."""
    if (not isinstance(value, list) or len(value) > _MAX_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                       for n in value)):
        raise Malformed(f"shape {value!r} is not a list of non-negative integers")
    return value


# ---------------------------------------------------------------------- arrays
def array_to_json(a: np.ndarray) -> dict:
    """A small array as JSON: dtype, shape and values (labels of object arrays as scalars)."""
    if a.dtype.kind == "O":
        return {"dtype": "labels", "shape": list(a.shape),
                "values": [scalar(v) for v in a.ravel()]}
    if a.dtype.kind not in "biufU":
        raise TypeError(f"an array of dtype {a.dtype} cannot be saved.")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "values": a.ravel().tolist()}


def array_from_json(spec: Any, where: str) -> np.ndarray:
    """The array :func:`array_to_json` wrote; ``ValueError`` naming ``where`` otherwise.

    The shape must fit the values, the dtype be a plain numeric or string dtype that holds
    them (a string dtype far wider than its strings is refused: it would allocate for it).
    """
    try:
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "values"}:
            raise Malformed("not an array entry")
        values, shape = spec["values"], check_shape(spec["shape"])
        if not isinstance(values, list) or math.prod(shape) != len(values):
            raise Malformed(f"its shape {tuple(shape)} does not fit its values")
        if spec["dtype"] == "labels":
            for v in values:
                check_scalar(v, "it")
            out = np.empty(len(values), dtype=object)
            out[:] = [unscalar(v) for v in values]
            return out.reshape(shape)
        dtype = np.dtype(spec["dtype"]) if isinstance(spec["dtype"], str) else None
        if dtype is None or dtype.kind not in "biufU" or dtype.names is not None:
            raise Malformed(f"dtype {spec['dtype']!r} is not a plain numeric or string dtype")
        kinds = {"b": bool, "i": int, "u": int, "f": (int, float), "U": str}[dtype.kind]
        if not all(isinstance(v, kinds) and (dtype.kind == "b" or not isinstance(v, bool))
                   for v in values):
            raise Malformed(f"its values are not all of dtype {dtype}")
        if (dtype.kind == "U" and dtype.itemsize * len(values) > 2**20
                and dtype.itemsize > 4 * max([1, *map(len, values)])):
            raise Malformed(f"dtype {dtype} is far wider than its strings")
        return np.array(values, dtype=dtype).reshape(shape)
    except (Malformed, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{where}: {str(exc).rstrip('.')}") from None


# ---------------------------------------------------------------------- checked reads
def _not_regular(mode: int) -> str:
    return ("a character device" if stat.S_ISCHR(mode) else "a block device"
            if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket"
            if stat.S_ISSOCK(mode) else "not a regular file")


def open_regular(path: str | os.PathLike, name: str) -> io.BufferedReader:
    """``path`` opened for reading, if it is a regular file (symbolic links followed).

    A device (``/dev/zero``), FIFO or socket is refused (``ValueError`` naming ``name``)
    before anything is read from it; the file is opened without blocking and checked with
    ``fstat``, so what is checked is what is read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{name} is {_not_regular(mode)}, not a model file: regmtl.load "
                             "reads a regular file written by a model's save (or a deep "
                             "estimator's folder).")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def regular_size(file: str | os.PathLike) -> int:
    """The size of ``file``, a regular file (symbolic links followed): a device such as
    ``/dev/zero``, a FIFO or a folder is refused (``ValueError``) before anything is read."""
    st = os.stat(file)  # a folder cannot be opened everywhere; a FIFO would block open
    if stat.S_ISREG(st.st_mode):
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)  # what is read, should the name have changed since
        finally:
            os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{file} is not a regular file (a folder, device, FIFO or socket); a "
                         "checkpoint's files are regular files written by save_checkpoint.")
    return st.st_size


def read_json(file: str | os.PathLike, what: str = "a checkpoint config",
              max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON text of the regular file ``file``, read no further than ``max_bytes``.

    Every refusal (not a regular file, too large, not UTF-8 JSON) is a ``ValueError`` naming
    the file; ``what`` says what the file should be.
    """
    file = Path(file)
    if regular_size(file) > max_bytes:
        raise ValueError(f"{file} is larger than {what} can be ({max_bytes} bytes).")
    try:
        with open(file, "rb") as fh:  # no more than the bound, if it grew since
            raw = fh.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ValueError(f"{file} is larger than {what} can be ({max_bytes} bytes).")
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc}).") from None
