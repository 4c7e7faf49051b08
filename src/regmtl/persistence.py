"""Saving and loading fitted models without pickle.

A model file is a compressed NumPy ``.npz`` archive read with ``allow_pickle=False``: the arrays
of the fitted model plus one JSON header that names the class, its parameters, the non-array
attributes, the format version and a SHA-256 digest of every array. A file from a newer format, a
file whose arrays do not match their digests, or anything that is not such an archive is refused
with a ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "SaveMixin", "load"]

FORMAT_NAME = "regmtl-model"
FORMAT_VERSION = 1
_HEADER = "__header__"
_REGISTRY: dict[str, type] = {}


def _package_version() -> str:
    try:
        return version("regmtl")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# ---------------------------------------------------------------------- value encoding
def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, tuple):
        return {"tuple": [_scalar(x) for x in v]}
    raise TypeError(
        f"a value of type {type(v).__name__} cannot be saved; use str, int or float labels."
    )


def _unscalar(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"tuple"}:
        return tuple(_unscalar(x) for x in v["tuple"])
    return v


def _encode(value: Any, name: str, arrays: dict[str, np.ndarray]) -> dict:
    from .penalties import Penalty

    if isinstance(value, Penalty):
        return {"kind": "penalty", "class": type(value).__name__,
                "params": {k: _encode(v, f"{name}.{k}", arrays)
                           for k, v in value.get_params().items()}}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufcU":
            arrays[name] = value
            return {"kind": "array", "key": name}
        if value.dtype.kind == "O":
            return {"kind": "labels", "value": [_scalar(v) for v in value.ravel()],
                    "shape": list(value.shape)}
        raise TypeError(f"attribute {name} of dtype {value.dtype} cannot be saved.")
    if isinstance(value, list):
        return {"kind": "list",
                "items": [_encode(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]}
    return {"kind": "json", "value": _scalar(value)}


def _decode(spec: dict, arrays: Any) -> Any:
    from . import penalties

    kind = spec["kind"]
    if kind == "array":
        return np.array(arrays[spec["key"]])
    if kind == "labels":
        out = np.empty(len(spec["value"]), dtype=object)
        out[:] = [_unscalar(v) for v in spec["value"]]
        return out.reshape(spec["shape"])
    if kind == "list":
        return [_decode(s, arrays) for s in spec["items"]]
    if kind == "penalty":
        cls = getattr(penalties, spec["class"], None)
        if not (isinstance(cls, type) and issubclass(cls, penalties.Penalty)):
            raise ValueError(f"unknown penalty class {spec['class']!r} in the model file.")
        return cls(**{k: _decode(v, arrays) for k, v in spec["params"].items()})
    if kind == "json":
        return _unscalar(spec["value"])
    raise ValueError(f"unknown entry kind {kind!r} in the model file.")


def _digest(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.dtype.str).encode())
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------- save / load
class SaveMixin:
    """Adds ``save`` to a model class; subclasses register themselves for :func:`~regmtl.load`.

    :class:`~regmtl.MultiTaskRegressor`, :class:`~regmtl.MultiTaskClassifier` (and so the
    ``best_estimator_`` of the CV estimators) and :class:`~regmtl.TransferredTask` have it. A
    subclass is a scikit-learn estimator (``get_params``) whose fitted attributes end in ``_``
    and hold arrays (numeric, string or of labels), lists of them, penalties, or str, int,
    float and bool values; its class name must be unique, as :func:`~regmtl.load` finds the
    class by name.

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
        _REGISTRY[cls.__name__] = cls

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (``.npz``; no pickle).

        The file holds the constructor parameters and every fitted attribute (names ending
        in ``_``), with a SHA-256 digest of every array; read it back with :func:`~regmtl.load`.

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
            as a task label).
        """
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if hasattr(self, "fit"):
            check_is_fitted(self)
        elif not self.__sklearn_is_fitted__():  # a result object such as TransferredTask
            raise NotFittedError(f"This {type(self).__name__} holds no fitted model.")
        arrays: dict[str, np.ndarray] = {}
        params = {k: _encode(v, f"param.{k}", arrays) for k, v in self.get_params(False).items()}
        attrs = {
            k: _encode(v, f"attr.{k}", arrays)
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_")
        }
        header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "regmtl_version": _package_version(),
            "class": type(self).__name__,
            "params": params,
            "attributes": attrs,
            "sha256": {k: _digest(a) for k, a in arrays.items()},
        }
        blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **{_HEADER: blob}, **arrays)


def load(path: str | os.PathLike) -> Any:
    """Load a model written by ``save``; refuses newer formats and modified files.

    The archive is read with ``allow_pickle=False``, so loading runs no code from the file.
    ``regmtl.load`` is this function.

    Parameters
    ----------
    path : str or path-like
        A file written by the ``save`` method of a model (see
        :class:`~regmtl.persistence.SaveMixin`).

    Returns
    -------
    MultiTaskRegressor, MultiTaskClassifier or TransferredTask
        The fitted model, with its parameters and fitted attributes.

    Raises
    ------
    ValueError
        If the file is not a readable regmtl model file, uses a newer format than this
        version reads, fails its integrity check, or names an unknown class.

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
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz[_HEADER]).decode("utf-8"))
            arrays = {k: npz[k] for k in npz.files if k != _HEADER}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError,
            json.JSONDecodeError, EOFError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} is not a readable regmtl model file ({exc}); it may be "
            "truncated or corrupted."
        ) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{os.fspath(path)!r} is not a regmtl model file.")
    fv = header.get("format_version")
    if isinstance(fv, bool) or not isinstance(fv, int) or fv < 1:
        raise ValueError(
            f"{os.fspath(path)!r} has a malformed header (format_version {fv!r} is not a "
            "positive integer)."
        )
    if fv > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} uses model format {fv!r}, newer than this regmtl reads "
            f"({FORMAT_VERSION}); upgrade regmtl to load it."
        )
    digests = header.get("sha256", {})
    if (not isinstance(digests, dict) or set(digests) != set(arrays)
            or any(_digest(arrays[k]) != d for k, d in digests.items())):
        raise ValueError(
            f"{os.fspath(path)!r} failed its integrity check: its arrays do not match the "
            "digests in its header (the file was modified or corrupted)."
        )
    cls = _REGISTRY.get(header.get("class"))
    if cls is None:
        raise ValueError(
            f"{os.fspath(path)!r} holds an unknown model class {header.get('class')!r}."
        )
    try:
        model = cls(**{k: _decode(v, arrays) for k, v in header["params"].items()})
        for k, v in header["attributes"].items():
            setattr(model, k, _decode(v, arrays))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{os.fspath(path)!r} has a malformed header ({exc}).") from exc
    return model
