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

Every file is covered by a SHA-256 digest written with it, and checked before anything in it
is read: ``checkpoint.json`` carries its own; each state carries the digest of its arrays in
its scalars; the spill files' chunks are listed in ``pass.log``, a line per chunk (its first and
last task and the digest of its records in each of the three files), appended after the chunk
is synced. A file that does not match (flipped bytes, a truncated or unreadable state, a chunk
changed after it was written) is refused naming the folder and the file
(:class:`DamagedCheckpoint`), or, with ``Checkpoint(folder, if_damaged="restart")``, the folder
is emptied with a warning naming the file and the fit starts over. Records past the last
line of ``pass.log`` (a kill between a chunk's records and its line) are cut back, as a chunk
cut short.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "DamagedCheckpoint", "StreamedCheckpoint", "array_digest",
           "fit_identity", "log_chunk", "logged_tasks", "source_fingerprint", "weight_digest"]

#: the folder's format (2: every file under a digest)
FORMAT = 2
#: the spill files' chunk log
PASS_LOG = "pass.log"
#: what a damaged checkpoint does: refused, or emptied and the fit started over
IF_DAMAGED = ("raise", "restart")


@dataclass(frozen=True)
class Checkpoint:
    """An out-of-core fit's checkpoint folder and what a damaged file in it does.

    Parameters
    ----------
    folder : str or path-like
        The folder (made if absent), as ``checkpoint=`` takes it.
    if_damaged : {"raise", "restart"}, default="raise"
        A file whose digest does not match: refused (``DamagedCheckpoint``, naming the
        folder and the file, nothing in it read), or the folder emptied with a warning naming
        the file and the fit started over.

    Examples
    --------
    >>> import regmtl as rm
    >>> rm.Checkpoint("fit-state", if_damaged="restart")
    Checkpoint(folder='fit-state', if_damaged='restart')
    >>> rm.Checkpoint("fit-state", if_damaged="skip")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: if_damaged='skip': give 'raise' (a damaged file refused) or 'restart' ...
    """

    folder: str | os.PathLike
    if_damaged: str = "raise"

    def __post_init__(self) -> None:
        if not isinstance(self.folder, (str, os.PathLike)):
            raise ValueError(f"folder={self.folder!r:.60}: give a folder's path (a str or "
                             "path-like, made if absent).")
        if self.if_damaged not in IF_DAMAGED:
            raise ValueError(f"if_damaged={self.if_damaged!r}: give 'raise' (a damaged file "
                             "refused) or 'restart' (the folder emptied and the fit started "
                             "over).")


class DamagedCheckpoint(ValueError):
    """A file of a checkpoint that does not match the digest written with it (nothing in it
    was read)."""

    def __init__(self, folder: Any, name: str, detail: str):
        self.folder, self.name, self.detail = str(folder), name, detail
        super().__init__(
            f"checkpoint={self.folder!r}: its file {name} is damaged ({detail}); nothing in it "
            "was read. Remove the folder to start afresh, or fit with checkpoint="
            f"regmtl.Checkpoint({self.folder!r}, if_damaged='restart') to start over "
            "automatically.")


def _sha(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


def log_chunk(directory: str | os.PathLike, lo: int, hi: int, records: list) -> None:
    """Append the line of the chunk of tasks ``lo..hi-1`` to the folder's ``pass.log``: the
    digest of its records in each spill file (``records``: their arrays, in the files'
    order), synced (after the records themselves)."""
    line = " ".join([str(int(lo)), str(int(hi))]
                    + [_sha(np.ascontiguousarray(r).reshape(-1).view(np.uint8))
                       for r in records])
    with open(Path(directory) / PASS_LOG, "a", encoding="ascii") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _chunk_line(line: str, n_files: int | None = None) -> tuple[int, int, list[str]] | None:
    """A line of ``pass.log``, ``(lo, hi, digests)`` (``n_files`` of them where given), or
    None where it is not one."""
    parts = line.split()
    if len(parts) < 2 or (n_files is not None and len(parts) != 2 + n_files) \
            or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1]), parts[2:]


def _records(handle: Any, lo: int, hi: int, record: int) -> bytes:
    """Records ``lo..hi-1`` of a spill file (fewer bytes where it ends before them)."""
    if handle is None:
        return b""
    handle.seek(lo * record)
    return handle.read((hi - lo) * record)


def logged_tasks(directory: str | os.PathLike, files: list[tuple[str, int]]) -> int:
    """The tasks whose records are whole and match ``pass.log`` in every spill file
    (``files``: each file's name and record size in bytes): the lines are read in order, each
    chunk's records hashed and compared (a last line cut short by a kill is not counted).
    Raises :class:`DamagedCheckpoint` naming the first file whose records differ from their
    line, or a log that is not a sequence of chunks."""
    folder = Path(directory)
    log = folder / PASS_LOG
    if not log.exists():
        return 0
    text = log.read_bytes().decode("ascii", errors="replace")
    lines = text.split("\n")
    if not text.endswith("\n"):  # (a kill mid-line: that chunk is done again)
        lines = lines[:-1]
    done = 0
    handles = [open(folder / name, "rb") if (folder / name).exists() else None  # noqa: SIM115
               for name, _ in files]
    try:
        for k, line in enumerate(ln for ln in lines if ln):
            chunk = _chunk_line(line, len(files))
            if chunk is None or chunk[0] != done or chunk[1] <= done:
                raise DamagedCheckpoint(folder, PASS_LOG, f"line {k + 1} is not the next "
                                        "chunk's")
            lo, hi, digests = chunk
            whole = True
            for (name, record), h, want in zip(files, handles, digests, strict=True):
                data = _records(h, lo, hi, record)
                if len(data) < (hi - lo) * record:
                    whole = False  # (cut short by a kill: written again from its chunk)
                    break
                if _sha(data) != want:
                    raise DamagedCheckpoint(folder, name, f"the records of tasks {lo}..{hi - 1} "
                                            "do not match their digest in pass.log")
            if not whole:
                break
            done = hi
    finally:
        for h in handles:
            if h is not None:
                h.close()
    return done


def cut_log(directory: str | os.PathLike, lo: int) -> None:
    """``pass.log`` without the lines of chunks past task ``lo`` (their records cut back)."""
    log = Path(directory) / PASS_LOG
    if not log.exists():
        return
    lines = log.read_text(encoding="ascii", errors="replace").split("\n")
    keep = [ln for ln in lines
            if (chunk := _chunk_line(ln)) is not None and chunk[1] <= lo]
    tmp = log.with_name(PASS_LOG + ".tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write("".join(ln + "\n" for ln in keep))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, log)


def _arrays_digest(arrays: dict) -> str:
    """The digest of named arrays: each name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _json_digest(record: dict) -> str:
    return _sha(json.dumps(record, sort_keys=True).encode("utf-8"))


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

    def __init__(self, folder: Any, source: Any, parameters: dict):
        self.if_damaged = "raise"
        if isinstance(folder, Checkpoint):
            folder, self.if_damaged = folder.folder, folder.if_damaged
        if not isinstance(folder, (str, os.PathLike)):
            raise ValueError(f"checkpoint={folder!r:.60}: give a folder's path (a str or "
                             "path-like, made if absent) or a regmtl.Checkpoint.")
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
            digest = saved.pop("digest", None)
            if digest != _json_digest(saved):
                self.damaged(DamagedCheckpoint(self.folder, "checkpoint.json",
                                               "its content does not match its digest"))
                saved = {"data": fingerprint, "parameters": parameters}
                self._write_identity(path, fingerprint, parameters)
            for what, old, new in (("data", saved.get("data"), fingerprint),
                                   ("parameters", saved.get("parameters"), parameters)):
                diff = _first_difference(old, new, what)
                if diff:
                    raise ValueError(
                        f"checkpoint={str(folder)!r} holds a fit of other {what} ({diff}): "
                        "resume with the data and parameters it was made with, or give "
                        "another folder (or remove this one) to start afresh.")
        else:
            self._write_identity(path, fingerprint, parameters)
        # the states checked before anything else is read, and kept for their first read
        # (a state of p x T numbers is read once)
        self._checked: dict[str, tuple[dict, dict] | None] = {}
        for name in ("fista", "newton"):
            try:
                self._checked[name] = self.load(name)
            except DamagedCheckpoint as exc:
                self.damaged(exc)

    def _write_identity(self, path: Path, fingerprint: dict, parameters: dict) -> None:
        record = {"format": FORMAT, "data": fingerprint, "parameters": parameters}
        self._write(path, json.dumps({**record, "digest": _json_digest(record)}, indent=1))

    def damaged(self, exc: DamagedCheckpoint) -> None:
        """A damaged file found: refused (``if_damaged="raise"``), or every file but the
        fit's identity removed with a warning naming it (``"restart"``)."""
        if self.if_damaged == "raise":
            raise exc
        self._checked = {}
        warnings.warn(f"checkpoint={str(self.folder)!r}: its file {exc.name} is damaged "
                      f"({exc.detail}); the folder's states and statistics are removed and "
                      "the fit starts over.", RuntimeWarning, stacklevel=4)
        for entry in self.folder.iterdir():
            if entry.is_file() and entry.name != "checkpoint.json":
                entry.unlink()

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
        """The arrays and the JSON scalars of the state ``name`` (None: none saved yet),
        checked against the digest saved with them (:class:`DamagedCheckpoint` where the
        file is unreadable or does not match)."""
        checked = getattr(self, "_checked", {})
        if name in checked:  # (read and checked when the folder was opened)
            return checked.pop(name)
        path = self.folder / f"{name}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(str(arrays.pop("meta")))
            digest = meta.pop("digest")
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
            raise DamagedCheckpoint(self.folder, path.name,
                                    f"unreadable: {type(exc).__name__}: {exc}") from None
        if digest != _arrays_digest(arrays) + _json_digest(meta):
            raise DamagedCheckpoint(self.folder, path.name, "its arrays do not match their "
                                    "digest")
        return arrays, meta

    def save(self, name: str, arrays: dict, meta: dict) -> None:
        """A state: its arrays and JSON scalars with their digest, written to a temporary
        file, synced, then renamed (a kill leaves the last whole state)."""
        getattr(self, "_checked", {}).pop(name, None)  # (a read kept from the opening is stale)
        tmp = self.folder / f"{name}.tmp.npz"
        meta = json.loads(json.dumps(meta))
        digest = _arrays_digest(arrays) + _json_digest(meta)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, meta=np.array(json.dumps({**meta, "digest": digest})))
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
