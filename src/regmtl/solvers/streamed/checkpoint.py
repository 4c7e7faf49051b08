r"""The state of an out-of-core fit kept in a folder, so that a fit killed midway resumes.

``fit(source, checkpoint=folder)`` keeps in ``folder``:

- ``checkpoint.json``: the format, the data's fingerprint (each file's name, size,
  modification time and row count, the columns read, the chunking and standardization, a
  digest of the task ids and row counts) and the fit's parameters (penalty, alpha, loss,
  task weighting, intercepts, tolerance, iterations, the stored Grams' type, the checks'
  spacing, a digest of the warm start), written once;
- the statistics pass as it goes: the spill files of the Grams and the centers and a third of
  each task's other moments (``g_t``, ``e_t``, ``zm_t`` and the curvature bound), appended chunk
  by chunk and synced; the pass resumes at the last chunk whose three records are all whole
  (the files cut back to it);
- FISTA's state at each certificate (``fista.npz``, replaced atomically): the iterate, the
  previous one, the momentum's ``t`` and coefficient, the iteration, the best certificate and
  its iteration, and the round of the outer loop (its iterations so far and inner tolerance);
- for the logistic loss, the proximal Newton state after each step (``newton.npz``): the
  coefficients and intercepts, the step count, the best certificate, the stalls, the last
  ratio, the inner iterations and the objective's scale (a fit killed inside a step does that
  step again).

A second call with the same folder, data and parameters goes on from there and ends at the same
point as one uninterrupted fit, bit for bit (every step is deterministic); a folder of other
data or parameters is refused naming the first difference. The folder is the user's: it is
left in place after the fit (remove it to start afresh).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StreamedCheckpoint", "array_digest", "fit_identity", "source_fingerprint",
           "weight_digest"]

#: the folder's format
FORMAT = 1


def _digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        arr = np.asarray(a)
        if arr.dtype == object:
            h.update(json.dumps([str(v) for v in arr.tolist()]).encode("utf-8"))
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(b"|")
    return h.hexdigest()


def weight_digest(task_weight: Any) -> str:
    """The task weighting as a checkpoint records it: its name, or a digest of the weights."""
    if isinstance(task_weight, str):
        return task_weight
    return _digest(np.asarray(task_weight, dtype=np.float64))


def fit_identity(loss: str, penalty: Any, alpha: float, fit_intercept: bool, task_weight: Any,
                 tol: float, max_iter: int, gram_dtype: np.dtype, start: Any,
                 **more: Any) -> dict:
    """What identifies an out-of-core fit beside its source (:func:`source_fingerprint`):
    its loss, penalty, alpha, intercepts, task weights, tol, iteration budget, Grams' dtype
    and warm start (a digest), and ``more`` of the solver's own (JSON values); a checkpoint
    written for another identity is refused, naming the first difference."""
    return {"loss": loss, "penalty": repr(penalty), "alpha": float(alpha),
            "fit_intercept": bool(fit_intercept), "task_weight": weight_digest(task_weight),
            "tol": float(tol), "max_iter": int(max_iter), "gram_dtype": np.dtype(gram_dtype).name,
            "start": array_digest(start), **more}


def array_digest(a: Any) -> str | None:
    """A digest of a float array (a warm start), or None."""
    return None if a is None else _digest(np.asarray(a, dtype=np.float64))


def source_fingerprint(source: Any) -> dict:
    """What identifies the rows a source yields: its files (name, size, modification time in
    ns, rows), columns, chunking and standardization where it has them (a ``ParquetTasks``),
    and for any source its shape and a digest of its task ids and row counts."""
    out: dict[str, Any] = {"n_tasks": int(source.n_tasks), "n_features": int(source.n_features),
                           "tasks": _digest(np.asarray(source.tasks, dtype=object),
                                            np.asarray(source.task_rows, dtype=np.int64))}
    files = getattr(source, "files", None)
    if files is not None:
        rows = getattr(source, "file_rows", np.zeros(len(files), dtype=np.int64))
        out["files"] = [{"name": Path(f).name, "size": os.stat(f).st_size,
                         "mtime_ns": os.stat(f).st_mtime_ns, "rows": int(r)}
                        for f, r in zip(files, rows, strict=True)]
    for attr in ("target", "task", "chunk_rows"):
        if hasattr(source, attr):
            out[attr] = getattr(source, attr)
    names = getattr(source, "feature_names", None)
    if names is not None:
        out["features"] = [str(n) for n in names]
    scaling = getattr(source, "applied_scaling", None)
    if scaling is not None:
        out["scaling"] = _digest(*scaling)
    return out


def _first_difference(old: Any, new: Any, where: str) -> str | None:
    """The first place two JSON values differ, as ``where.key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            diff = _first_difference(old.get(key), new.get(key), f"{where}.{key}")
            if diff:
                return diff
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for k, (a, b) in enumerate(zip(old, new, strict=True)):
            diff = _first_difference(a, b, f"{where}[{k}]")
            if diff:
                return diff
        return None
    return None if old == new else f"{where}: {old!r:.80} then, {new!r:.80} now"


class StreamedCheckpoint:
    """An out-of-core fit's folder (see the module's text): made, or read and checked against
    the data's fingerprint and the fit's parameters."""

    def __init__(self, folder: str | os.PathLike, source: Any, parameters: dict):
        if not isinstance(folder, (str, os.PathLike)):
            raise ValueError(f"checkpoint={folder!r:.60}: give a folder's path (a str or "
                             "path-like), made if absent.")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"checkpoint={str(folder)!r} is a file; give a folder (made if "
                             "absent).")
        self.folder.mkdir(parents=True, exist_ok=True)
        fingerprint = source_fingerprint(source)
        parameters = json.loads(json.dumps(parameters, default=str))
        path = self.folder / "checkpoint.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"checkpoint={str(folder)!r}: its checkpoint.json cannot be "
                                 f"read ({exc}); remove the folder to start afresh.") from None
            if not isinstance(saved, dict) or saved.get("format") != FORMAT:
                raise ValueError(f"checkpoint={str(folder)!r} was written in another format; "
                                 "remove it to start afresh.")
            for what, old, new in (("data", saved.get("data"), fingerprint),
                                   ("parameters", saved.get("parameters"), parameters)):
                diff = _first_difference(old, new, what)
                if diff:
                    raise ValueError(
                        f"checkpoint={str(folder)!r} holds a fit of other {what} ({diff}): "
                        "resume with the data and parameters it was made with, or give "
                        "another folder (or remove this one) to start afresh.")
        else:
            self._write(path, json.dumps({"format": FORMAT, "data": fingerprint,
                                          "parameters": parameters}, indent=1))

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ the statistics pass
    @property
    def spill_directory(self) -> str:
        """Where the statistics pass writes its spill files (kept after the fit)."""
        return str(self.folder)

    # ------------------------------------------------------------------ states
    def load(self, name: str) -> tuple[dict, dict] | None:
        """The arrays and the JSON scalars of the state ``name`` (None: none saved yet)."""
        path = self.folder / f"{name}.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return arrays, json.loads(str(arrays.pop("meta")))

    def save(self, name: str, arrays: dict, meta: dict) -> None:
        """A state: its arrays and JSON scalars, written to a temporary file, synced, then
        renamed (a kill leaves the last whole state)."""
        tmp = self.folder / f"{name}.tmp.npz"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / f"{name}.npz")

    def fista_state(self, key: str) -> dict | None:
        """FISTA's state saved for round ``key`` (None: none yet)."""
        got = self.load("fista")
        if got is None or got[1].get("key") != key:
            return None
        return {**got[1], **got[0]}

    def rounds(self) -> dict | None:
        """The outer loop's state: ``{"round", "n_iter", "inner_tol"}`` of the round the last
        FISTA state belongs to (None: none yet)."""
        got = self.load("fista")
        return None if got is None else {k: got[1][k] for k in ("round", "n_iter",
                                                                "inner_tol")}

    def save_fista(self, key: str, outer: dict, V: np.ndarray, V_prev: np.ndarray,
                   scalars: dict) -> None:
        """FISTA's state at a certificate."""
        self.save("fista", {"V": V, "V_prev": V_prev}, {"key": key, **outer, **scalars})
