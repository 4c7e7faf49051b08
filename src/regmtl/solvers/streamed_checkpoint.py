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
  its iteration, and the round of the outer loop (its iterations so far and inner tolerance).

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

__all__ = ["StreamedCheckpoint", "source_fingerprint"]

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


def source_fingerprint(source: Any) -> dict:
    """What identifies the rows a source yields: its files (name, size, modification time in
    ns, rows), columns, chunking and standardization where it has them (a ``ParquetTasks``),
    and for any source its shape and a digest of its task ids and row counts."""
    out: dict[str, Any] = {"n_tasks": int(source.n_tasks), "n_features": int(source.n_features),
                           "tasks": _digest(np.asarray(source.tasks, dtype=object),
                                            np.asarray(source.task_rows, dtype=np.int64))}
    files = getattr(source, "files", None)
    if files is not None:
        rows = np.zeros(len(files), dtype=np.int64)
        for i, _, _, n in getattr(source, "_groups", ()):
            rows[i] += n
        out["files"] = [{"name": Path(f).name, "size": os.stat(f).st_size,
                         "mtime_ns": os.stat(f).st_mtime_ns, "rows": int(r)}
                        for f, r in zip(files, rows, strict=True)]
    for attr in ("target", "task", "chunk_rows"):
        if hasattr(source, attr):
            out[attr] = getattr(source, attr)
    names = getattr(source, "feature_names", None)
    if names is not None:
        out["features"] = [str(n) for n in names]
    scaling = getattr(source, "_scaling", None)
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

    # ------------------------------------------------------------------ FISTA's state
    def fista_state(self, key: str) -> dict | None:
        """The state saved for round ``key`` (None: none yet)."""
        path = self.folder / "fista.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
        meta = json.loads(str(state.pop("meta")))
        if meta.get("key") != key:
            return None
        return {**meta, **state}

    def rounds(self) -> dict | None:
        """The outer loop's state: ``{"round", "n_iter", "inner_tol"}`` of the round the last
        FISTA state belongs to (None: none yet)."""
        path = self.folder / "fista.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        return {k: meta[k] for k in ("round", "n_iter", "inner_tol")}

    def save_fista(self, key: str, outer: dict, V: np.ndarray, V_prev: np.ndarray,
                   scalars: dict) -> None:
        """FISTA's state at a certificate (written to a temporary file, then renamed)."""
        meta = json.dumps({"key": key, **outer, **scalars})
        tmp = self.folder / "fista.tmp.npz"
        with open(tmp, "wb") as f:
            np.savez(f, V=V, V_prev=V_prev, meta=np.array(meta))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / "fista.npz")
