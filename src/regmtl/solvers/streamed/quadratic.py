r"""The squared loss of a data set read chunk by chunk, in Gram form kept on disk.

One pass over the rows (``source.chunks``: consecutive runs of whole tasks, each an in-memory
:class:`~regmtl.TaskData` whose ``c`` are the global problem's row weights) forms, per task,
the quantities of :meth:`TaskQuadratic.from_data
<regmtl.solvers.parts.quadratic.TaskQuadratic.from_data>`::

    xm_t = sum c x / sum c,  zm_t = sum c z / sum c            (0 without intercepts)
    H_t = sum c (x - xm_t)(x - xm_t)',  g_t = sum c (x - xm_t)(z - zm_t),
    e_t = sum c (z - zm_t)^2,

the centered moments summed around the task's means (two passes over the task's rows, in
float64), a column constant within a task (its centered sum of squares at most ``1e-10``
times ``xm^2 sum c``, as :func:`~regmtl.solvers.parts.moments.feature_moments`) exactly out of the
task's quadratic. ``H_t`` is written as its packed upper triangle (``p (p + 1) / 2`` numbers,
float32 by default: 840 bytes per task at p = 20) to a spill file, chunk by chunk, and so are
the centers ``xm`` (only the intercepts read them); ``g`` (p x T), ``e`` and ``zm`` stay in
memory. Every product ``H_t w_t`` then reads the spill file in task chunks into one reused
buffer (``readinto``; no memory map, whose pages would count as resident) and runs a compiled
packed-symmetric kernel on it.

The curvature bound ``L = max_t lambda_max(H_t)`` (of the stored, rounded Grams) is exact: the
pass keeps ``u_t = (tr H_t^4)^{1/4} >= lambda_max(H_t)`` per task (p^3 operations), and the
tasks are taken by decreasing ``u_t`` for an eigendecomposition until ``u_t`` falls below the
largest eigenvalue found (the tasks whose bound could still exceed it: a small tail).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..._jit import njit
from ...penalties.kernels import FAST
from ..parts.quadratic import TaskQuadratic
from .checkpoint import cut_log, log_chunk, logged_tasks

__all__ = ["GramPass", "StreamedQuadratic", "kept_tasks", "prefetched", "streamed_quadratic",
           "CHUNK_BYTES"]

#: Bytes of packed Grams read per chunk of a pass over the spill file (one of two reused
#: buffers): small, so that the first read of a pass, which nothing overlaps, is short (a
#: pass over 10^5 tasks' Grams, 84 MB: 54 ms with 64 MB chunks, 44 ms with 4 MB ones).
CHUNK_BYTES = 1 << 22


@njit(cache=True, fastmath=FAST, nogil=True)
def task_rows_copy(X, a, b, out):
    """Rows ``a..b-1`` of X into ``out[:b - a]`` (C order): a task's rows read column by
    column (contiguous in a Fortran-ordered design), then used row by row."""
    for j in range(X.shape[1]):
        for r in range(a, b):
            out[r - a, j] = X[r, j]


@njit(cache=True, fastmath=FAST, nogil=True)
def task_moments_packed(X, z, c, rows, indptr, center, Hp, g, e, xm, zm):
    """Per task of a chunk: the centered moments of the module docstring over the rows
    ``rows[indptr[t]:indptr[t + 1]]`` of ``X``, ``z`` and ``c`` (all of them, in order, or
    some: those fitted, those held out), ``Hp[t]`` the packed upper triangle (row-major) of
    ``H_t``, ``g`` (p x nt), ``e``, ``xm`` (nt x p), ``zm`` (nt). The task's rows are copied
    centered and transposed (p x n_t, each column of the design read contiguously), so that
    every entry is one dot product."""
    nt, p = Hp.shape[0], X.shape[1]
    m = np.empty(p)
    keep = np.empty(p, dtype=np.bool_)
    most = 0
    for t in range(nt):
        most = max(most, indptr[t + 1] - indptr[t])
    R = np.empty((p, most))  # centered rows, transposed
    Rw = np.empty((p, most))  # the same times the row weights
    zc = np.empty(most)
    for t in range(nt):
        a, b = indptr[t], indptr[t + 1]
        n = b - a
        cs = 0.0
        mz = 0.0
        for r in range(a, b):
            q = rows[r]
            cs += c[q]
            mz += c[q] * z[q]
        mz = mz / cs if center and cs > 0.0 else 0.0
        ee = 0.0
        for r in range(a, b):
            q = rows[r]
            v = z[q] - mz
            zc[r - a] = v
            ee += c[q] * v * v
        for j in range(p):
            s = 0.0
            if center and cs > 0.0:
                for r in range(a, b):
                    q = rows[r]
                    s += c[q] * X[q, j]
                s /= cs
            m[j] = s
            Rj, Wj = R[j], Rw[j]
            for r in range(a, b):
                q = rows[r]
                v = X[q, j] - s
                Rj[r - a] = v
                Wj[r - a] = c[q] * v
        k = 0
        for i in range(p):
            Wi = Rw[i]
            gi = 0.0
            for r in range(n):
                gi += Wi[r] * zc[r]
            g[i, t] = gi
            for j in range(i, p):
                Rj = R[j]
                s = 0.0
                for r in range(n):
                    s += Wi[r] * Rj[r]
                Hp[t, k] = s
                if j == i:  # (the diagonal, in float64)
                    keep[i] = s > 1e-10 * m[i] * m[i] * cs and s > 0.0
                k += 1
        k = 0
        for i in range(p):
            if not keep[i]:
                g[i, t] = 0.0
            for j in range(i, p):
                if not (keep[i] and keep[j]):
                    Hp[t, k] = 0.0
                k += 1
        e[t] = ee
        zm[t] = mz
        for j in range(p):
            xm[t, j] = m[j]


@njit(cache=True, fastmath=FAST, nogil=True)
def packed_bounds(Hp, p, out):
    """``out[t] = (tr H_t^4)^{1/4} = ||H_t^2||_F^{1/2}``, an upper bound of ``lambda_max(H_t)``
    for a symmetric ``H_t`` (packed upper triangles, rows of ``Hp``)."""
    H = np.empty((p, p))
    for t in range(Hp.shape[0]):
        k = 0
        for i in range(p):
            for j in range(i, p):
                H[i, j] = Hp[t, k]
                H[j, i] = Hp[t, k]
                k += 1
        s = 0.0
        for i in range(p):
            for j in range(i, p):
                acc = 0.0
                for m in range(p):
                    acc += H[i, m] * H[m, j]
                s += acc * acc if i == j else 2.0 * acc * acc
        out[t] = np.sqrt(np.sqrt(s))


@njit(cache=True, fastmath=FAST, nogil=True, inline="always")
def packed_product(Hp, t, x, y):
    """``y = H_t x`` from row t of ``Hp`` (the packed upper triangle of the symmetric
    ``H_t``, row by row)."""
    p = x.shape[0]
    for i in range(p):
        y[i] = 0.0
    k = 0
    for i in range(p):
        xi = x[i]
        acc = Hp[t, k] * xi
        k += 1
        for j in range(i + 1, p):
            h = Hp[t, k]
            acc += h * x[j]
            y[j] += h * xi
            k += 1
        y[i] += acc


@njit(cache=True, fastmath=FAST, nogil=True)
def packed_matvec(Hp, a, W, out):
    """``out[:, a + t] = H_t W[:, a + t]`` for the tasks of a chunk (rows of ``Hp``, the
    packed upper triangles; ``W``, ``out``: p x T, the chunk's columns from ``a``)."""
    p = W.shape[0]
    x = np.empty(p)
    y = np.empty(p)
    for t in range(Hp.shape[0]):
        for i in range(p):
            x[i] = W[i, a + t]
        packed_product(Hp, t, x, y)
        for i in range(p):
            out[i, a + t] = y[i]


@njit(cache=True, fastmath=FAST, nogil=True)
def packed_step(Hp, a, V, Vp, mom, g, step, U, HV, want, gw, whw):
    """One proximal-gradient step's product for the tasks of a chunk (rows of ``Hp``; the
    p x T arrays' columns from ``a``): ``z = V + mom (V - Vp)``, ``U = z + step (g - H z)``;
    with ``want`` also ``HV = H V``, ``gw = g . v`` and ``whw = v . H v`` per task (the
    certificate of V, from the Grams read once for both products)."""
    p = V.shape[0]
    z = np.empty(p)
    hz = np.empty(p)
    v = np.empty(p)
    hv = np.empty(p)
    for t in range(Hp.shape[0]):
        c = a + t
        for i in range(p):
            vi = V[i, c]
            v[i] = vi
            z[i] = vi + mom * (vi - Vp[i, c])
        packed_product(Hp, t, z, hz)
        for i in range(p):
            U[i, c] = z[i] + step * (g[i, c] - hz[i])
        if want:
            packed_product(Hp, t, v, hv)
            s1 = 0.0
            s2 = 0.0
            for i in range(p):
                HV[i, c] = hv[i]
                s1 += g[i, c] * v[i]
                s2 += v[i] * hv[i]
            gw[c] = s1
            whw[c] = s2


def prefetched(items: Iterable[Any]) -> Iterator[Any]:
    """The items of ``items``, the next one produced in a thread while the caller works on
    the current one (a source's chunk read from disk while the kernels run on the last)."""
    it = iter(items)
    done = object()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, it, done)
        while True:
            item = pending.result()
            if item is done:
                return
            pending = pool.submit(next, it, done)
            yield item


class _Spill:
    """A file of fixed-size records, one per task (``width`` numbers of ``dtype``), written in
    task order and read back in task chunks into one reused buffer."""

    def __init__(self, path: str, width: int, dtype: Any, n_tasks: int):
        self.path, self.width, self.dtype, self.n_tasks = path, width, np.dtype(dtype), n_tasks
        self.record = self.width * self.dtype.itemsize
        self.chunk = max(1, CHUNK_BYTES // max(self.record, 1))
        self._bufs = None

    def writer(self):
        return open(self.path, "wb")  # noqa: SIM115 - closed by the caller's with

    def chunks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(a, b, block)``: records ``a..b-1`` as a ``(b - a, width)`` view of one of two
        reused buffers, valid until the next chunk; the next chunk is read in a thread
        meanwhile (the disk and the kernels overlap)."""
        T = self.n_tasks
        if self._bufs is None:
            n = min(self.chunk, max(T, 1))
            self._bufs = [np.empty((n, self.width), dtype=self.dtype) for _ in range(2)]
        starts = list(range(0, T, self.chunk))
        if not starts:
            return
        with open(self.path, "rb", buffering=0) as f, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._read, f, 0, min(self.chunk, T), self._bufs[0])
            for k, a in enumerate(starts):
                b = min(a + self.chunk, T)
                view = pending.result()
                if k + 1 < len(starts):
                    nxt = starts[k + 1]
                    pending = pool.submit(self._read, f, nxt, min(nxt + self.chunk, T),
                                          self._bufs[(k + 1) % 2])
                yield a, b, view

    def _read(self, f, a: int, b: int, buf: np.ndarray) -> np.ndarray:
        view = buf[: b - a]
        mv = memoryview(view.reshape(-1).view(np.uint8))
        f.seek(a * self.record)
        got = 0
        while got < mv.nbytes:  # (a raw read may return less than asked)
            n = f.readinto(mv[got:])
            if not n:
                raise OSError(f"{self.path}: the spill file ends at record "
                              f"{a + got // self.record}; it was changed or truncated.")
            got += n
        return view

    def records(self, index: np.ndarray) -> np.ndarray:
        """The records of the given tasks (few: one read each)."""
        out = np.empty((len(index), self.width), dtype=self.dtype)
        with open(self.path, "rb") as f:
            for k, t in enumerate(index):
                f.seek(int(t) * self.record)
                f.readinto(memoryview(out[k].view(np.uint8)))
        return out


class StreamedQuadratic(TaskQuadratic):
    """``q(W) = sum_t (w_t' H_t w_t / 2 - g_t' w_t + e_t / 2)`` with the ``H_t`` on disk (see
    the module docstring): :class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`'s formulas, each
    product a pass over the spill file. Built by :func:`streamed_quadratic`.

    Attributes
    ----------
    g : ndarray of shape (p, T)
        Minus the gradient at W = 0 (with intercepts: of the centered problem).
    e, zm : ndarray of shape (T,)
    bounds : ndarray of shape (T,)
        ``(tr H_t^4)^{1/4}``, an upper bound of each task's top eigenvalue.
    directory : str
        Where the spill files are (removed with this object when it made it itself).
    """

    def __init__(self, grams: _Spill, centers: _Spill, g, e, zm, bounds, center: bool,
                 directory: str, owned: bool):
        super().__init__(None, g, e, None, zm, None, center)
        self.grams, self.centers, self.bounds = grams, centers, bounds
        self.directory = directory
        self.n_features = g.shape[0]
        if owned:
            self._cleanup = weakref.finalize(self, shutil.rmtree, directory, True)

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + self.g.nbytes + 3 * self.e.nbytes

    # ------------------------------------------------------------------ products
    def matvec(self, W: np.ndarray) -> np.ndarray:
        """``H_t w_t`` for every task (p x T), one pass over the spill file."""
        out = np.empty((W.shape[0], W.shape[1]))
        W = np.ascontiguousarray(W, dtype=np.float64)
        for a, _, Hp in self.grams.chunks():
            packed_matvec(Hp, a, W, out)
        return out

    def step(self, V: np.ndarray, V_prev: np.ndarray, mom: float, step: float, U: np.ndarray,
             HV: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """``U = Z + step (g - H Z)`` at ``Z = V + mom (V - V_prev)`` (Z never formed whole),
        one pass over the spill file; with ``HV`` also ``H V`` written there, and returned
        ``(g . v_t, v_t . H v_t)`` per task (the sums of V's certificate)."""
        want = HV is not None
        T = V.shape[1]
        gw, whw = np.empty(T if want else 0), np.empty(T if want else 0)
        HV = HV if want else U  # (not written without want)
        for a, _, Hp in self.grams.chunks():
            packed_step(Hp, a, V, V_prev, mom, self.g, step, U, HV, want, gw, whw)
        return (gw, whw) if want else None

    def diagonal(self) -> np.ndarray:
        p = self.n_features
        idx = np.concatenate(([0], np.cumsum(np.arange(p, 1, -1)))).astype(np.int64)
        out = np.empty((p, self.g.shape[1]))
        for a, b, Hp in self.grams.chunks():
            out[:, a:b] = Hp[:, idx].T
        return out

    def lipschitz(self) -> float:
        """``max_t lambda_max(H_t)`` of the stored Grams, exact: the tasks by decreasing
        bound (:attr:`bounds`), an eigendecomposition each, until the bound falls below the
        largest eigenvalue found."""
        if self._L is None:
            top, order = 0.0, np.argsort(self.bounds)[::-1]
            p = self.n_features
            iu = np.triu_indices(p)
            for a in range(0, len(order), 1024):
                batch = order[a:a + 1024]
                batch = batch[self.bounds[batch] > top]
                if not batch.size:
                    break
                rec = self.grams.records(np.sort(batch)).astype(np.float64)
                H = np.zeros((len(batch), p, p))
                H[:, iu[0], iu[1]] = rec
                H[:, iu[1], iu[0]] = rec
                top = max(top, float(np.linalg.eigvalsh(H)[:, -1].max()))
            self._L = max(top, 1e-300)
        return self._L

    def curvature_estimate(self) -> float:
        return self.lipschitz()

    def intercepts(self, W: np.ndarray) -> np.ndarray:
        """``zm_t - xm_t . w_t``, one pass over the centers' spill file."""
        b = self.zm.copy()
        if not self.center:
            return b
        for a, c, xm in self.centers.chunks():
            b[a:c] -= np.einsum("tj,jt->t", xm, W[:, a:c])
        return b

    def eigen(self):
        raise NotImplementedError(
            "the out-of-core quadratic keeps no per-task eigendecomposition: its fits run "
            "accelerated proximal gradient (regmtl.solvers.streamed.fista).")


def kept_tasks(directory: str, n_features: int, dtype: Any) -> int:
    """The tasks whose three records (Gram, centers, moments) are whole in a kept statistics
    folder (:func:`streamed_quadratic` with ``keep``) and match their digests in its
    ``pass.log``: where its pass resumes (a :class:`~regmtl.solvers.streamed.checkpoint.
    DamagedCheckpoint` naming the file whose records do not match)."""
    p = n_features
    return logged_tasks(directory, [("grams.bin", (p * (p + 1) // 2) * np.dtype(dtype).itemsize),
                                    ("centers.bin", p * 8), ("moments.bin", (p + 3) * 8)])


def streamed_quadratic(chunks: Iterable[tuple[int, int, Any]], n_tasks: int, n_features: int,
                       center: bool, spill_dir: str | None = None,
                       dtype: Any = np.float32, keep: str | None = None,
                       whole: int | None = None) -> StreamedQuadratic:
    """The statistics pass: :class:`StreamedQuadratic` of the squared loss of the rows that
    ``chunks`` yields (``(lo, hi, block)``, consecutive runs of whole tasks ``lo..hi-1``
    covering all ``n_tasks``; ``block.y`` the targets, ``block.c`` the global row weights),
    intercepts minimized out with ``center``. The spill files go in a new directory under
    ``spill_dir`` (default: the system's temporary directory), removed with the result.
    ``dtype``: of the stored Grams (float32, or float64 for twice the disk and no
    rounding).

    ``keep``: a folder (a checkpoint's) where the spill files are written and kept, with each
    task's other moments (``moments.bin``), every chunk synced to disk: a pass killed midway
    resumes at the first task whose records are not all whole and checked (:func:`kept_tasks`,
    or ``whole`` where the caller has read it; the files and their log are cut back there,
    ``chunks`` may start at any chunk at or before it), and a finished one is read back
    without a pass."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"gram_dtype must be float32 or float64; got {dtype}.")
    p, T = n_features, n_tasks
    if keep is not None:
        return _kept_pass(chunks, T, p, center, dtype, keep, whole)
    pass_ = GramPass(T, p, center, spill_dir, dtype)
    try:
        for lo, hi, block in prefetched(chunks):
            pass_.add(lo, hi, block)
        return pass_.finish()
    except BaseException:
        pass_.discard()
        raise


class GramPass:
    """The statistics of :func:`streamed_quadratic` gathered chunk by chunk (``add``), the
    Grams spilled to a new directory under ``spill_dir``; ``finish`` gives the
    :class:`StreamedQuadratic` (which removes the directory with itself), ``discard`` removes
    it after a failure. Several run side by side on one pass over a source where the rows
    of each chunk are split (the rows fitted, the rows held out: one read for both)."""

    def __init__(self, n_tasks: int, n_features: int, center: bool,
                 spill_dir: str | None = None, dtype: Any = np.float32,
                 with_bounds: bool = True):
        self.T, self.p, self.center, self.dtype = n_tasks, n_features, bool(center), \
            np.dtype(dtype)
        if spill_dir is not None:
            os.makedirs(spill_dir, exist_ok=True)
        self.directory = tempfile.mkdtemp(prefix="regmtl-grams-", dir=spill_dir)
        P = n_features * (n_features + 1) // 2
        self.grams = _Spill(os.path.join(self.directory, "grams.bin"), P, self.dtype, n_tasks)
        self.centers = _Spill(os.path.join(self.directory, "centers.bin"), n_features,
                              np.float64, n_tasks)
        self.g, self.e = np.zeros((n_features, n_tasks)), np.zeros(n_tasks)
        self.zm, self.bounds = np.zeros(n_tasks), np.zeros(n_tasks)
        self.done = 0
        self.with_bounds = with_bounds  # (False: statistics never iterated on, no L needed)
        self._files = (self.grams.writer(), self.centers.writer())

    def add(self, lo: int, hi: int, block: Any,
            part: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """The moments of tasks ``lo..hi-1`` (the next ones: runs of whole tasks in order),
        over ``part`` of the chunk's rows (``(rows, indptr, c)``: some rows, ``indptr`` over
        them, and the weights of every row of the chunk) or all of them."""
        if lo != self.done or hi <= lo or hi > self.T:
            raise ValueError(f"source.chunks: tasks {lo}..{hi - 1} after {self.done} tasks; "
                             f"the chunks must be consecutive runs of whole tasks covering "
                             f"all {self.T}.")
        Hp, xm = _chunk_moments(block, lo, hi, self.p, self.center, self.dtype, self.g,
                                self.e, self.zm, self.bounds if self.with_bounds else None,
                                part)
        fh, fx = self._files
        fh.write(memoryview(Hp.reshape(-1).view(np.uint8)))
        fx.write(memoryview(xm.reshape(-1).view(np.uint8)))
        self.done = hi

    def finish(self) -> StreamedQuadratic:
        for f in self._files:
            f.close()
        if self.done != self.T:
            raise ValueError(f"source.chunks covered {self.done} of {self.T} tasks.")
        return StreamedQuadratic(self.grams, self.centers, self.g, self.e, self.zm,
                                 self.bounds, self.center, self.directory, True)

    def discard(self) -> None:
        for f in self._files:
            f.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _chunk_moments(block: Any, lo: int, hi: int, p: int, center: bool, dtype: np.dtype,
                   g: np.ndarray, e: np.ndarray, zm: np.ndarray, bounds: np.ndarray | None,
                   part: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's packed Grams and centers (its ``g``, ``e``, ``zm`` and bounds written in
    place; no bounds where None). ``part``: ``(rows, indptr, c)``, some of the chunk's rows
    (``indptr`` over ``rows``) with their weights (one per row of the chunk), else all of
    them with the chunk's own."""
    X = np.asarray(block.X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != p:
        raise ValueError(f"source.chunks: a block of {X.shape} rows, not {p} features.")
    if part is None:
        part = (np.arange(X.shape[0], dtype=np.int64),
                np.asarray(block.indptr, dtype=np.int64),
                np.asarray(block.c, dtype=np.float64))
    rows, indptr, c = part
    Hp = np.empty((hi - lo, p * (p + 1) // 2), dtype=dtype)
    xm = np.empty((hi - lo, p))
    task_moments_packed(X, np.asarray(block.y, dtype=np.float64), c, rows, indptr,
                        bool(center), Hp, g[:, lo:hi], e[lo:hi], xm, zm[lo:hi])
    if bounds is not None:
        packed_bounds(Hp, p, bounds[lo:hi])
    return Hp, xm


def _kept_pass(chunks: Iterable[tuple[int, int, Any]], T: int, p: int, center: bool,
               dtype: np.dtype, directory: str, whole: int | None) -> StreamedQuadratic:
    """The statistics pass into the kept folder ``directory`` (see ``keep`` of
    :func:`streamed_quadratic`)."""
    os.makedirs(directory, exist_ok=True)
    P = p * (p + 1) // 2
    grams = _Spill(os.path.join(directory, "grams.bin"), P, dtype, T)
    centers = _Spill(os.path.join(directory, "centers.bin"), p, np.float64, T)
    moments = _Spill(os.path.join(directory, "moments.bin"), p + 3, np.float64, T)
    files = (grams, centers, moments)
    done = kept_tasks(directory, p, dtype) if whole is None else whole
    g, e, zm, bounds = np.zeros((p, T)), np.zeros(T), np.zeros(T), np.zeros(T)
    if done:  # (one read of the whole tasks' records, not one per task)
        rec = np.fromfile(moments.path, dtype=np.float64, count=done * (p + 3)).reshape(
            done, p + 3)
        g[:, :done], e[:done], zm[:done], bounds[:done] = rec[:, :p].T, rec[:, p], \
            rec[:, p + 1], rec[:, p + 2]
    if done < T:
        handles = []
        try:
            for f in files:
                mode = "r+b" if os.path.exists(f.path) else "w+b"
                handles.append(open(f.path, mode))  # noqa: SIM115 - closed below
            cut = None
            for lo, hi, block in prefetched(chunks):
                if hi <= done:  # (whole on disk)
                    continue
                if lo > done or hi > T:
                    raise ValueError(f"source.chunks: tasks {lo}..{hi - 1} after {done} "
                                     "tasks; the chunks must be consecutive runs of whole "
                                     f"tasks covering all {T}.")
                if cut is None or lo < done:  # the files cut back to the chunk's start
                    for f, h in zip(files, handles, strict=True):
                        h.truncate(lo * f.record)
                        h.seek(lo * f.record)
                    cut_log(directory, lo)
                    cut = done = lo
                Hp, xm = _chunk_moments(block, lo, hi, p, center, dtype, g, e, zm, bounds)
                mom = np.column_stack([g[:, lo:hi].T, e[lo:hi], zm[lo:hi], bounds[lo:hi]])
                records = (Hp, xm, np.ascontiguousarray(mom))
                for h, arr in zip(handles, records, strict=True):
                    h.write(memoryview(arr.reshape(-1).view(np.uint8)))
                for h in handles:
                    h.flush()
                    os.fsync(h.fileno())
                log_chunk(directory, lo, hi, list(records))  # (after the records are synced)
                done = hi
        finally:
            for h in handles:
                h.close()
        if done != T:
            raise ValueError(f"source.chunks covered {done} of {T} tasks.")
    return StreamedQuadratic(grams, centers, g, e, zm, bounds, bool(center), directory, False)
