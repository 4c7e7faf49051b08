"""A synthetic multi-task data set written as Parquet in chunks, with its planted truth.

The set of :func:`make_parquet_tasks` can be larger than memory (ten million tasks are about
23 GB): it is drawn and written a row group at a time. Every draw comes from a random stream of
its own, keyed by ``random_state`` and a fixed block of tasks (:data:`GEN_TASKS`), so the values
do not depend on how the set is cut into files and row groups, and the held-out rows of the same
tasks (``held_out=True``) share the training rows' true weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._checks import check_int, check_real

__all__ = ["make_parquet_tasks", "parquet_tasks_truth"]

#: Tasks drawn from one random stream: the unit of the draws, whatever the file layout.
GEN_TASKS = 4096
#: Schema metadata key naming the feature columns (read by ``regmtl.ParquetTasks``).
FEATURES_KEY = b"regmtl.features"
#: The side file of the truth, skipped by Parquet readers (a leading underscore).
TRUTH_FILE = "_truth.json"
_TRUTH = 0
_STREAMS = {False: 2, True: 3}  # the rows of the training set and of the held-out set


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def make_parquet_tasks(
    path: str | os.PathLike,
    n_tasks: int,
    *,
    n_rows: int = 25,
    n_features: int = 20,
    n_informative: int = 5,
    relatedness: float = 0.8,
    noise: float = 1.0,
    bias: float = 0.0,
    held_out: bool = False,
    tasks_per_file: int = 100_000,
    row_group_tasks: int = 20_000,
    random_state: int = 0,
) -> Bunch:
    r"""Write a synthetic multi-task data set as Parquet, chunk by chunk, with a planted truth.

    Task :math:`t` (id ``t``, ``0 <= t < n_tasks``) has ``n_rows`` rows with features
    :math:`x \sim N(0, I_p)` and

    .. math::

        y = x^\top w_t + b + \varepsilon, \quad \varepsilon \sim N(0, \sigma^2), \qquad
        P(\mathrm{label} = 1) = \frac{1}{1 + e^{-(x^\top w_t + b)}},

    :math:`\sigma` = ``noise``, :math:`b` = ``bias``. The true weights share one sparse support
    :math:`S` (``n_informative`` features) and deviate from a shared vector per task, as in
    :func:`make_multitask_regression` with ``structure="shared_support"``:

    .. math::

        w_{t,S} = \rho\, c + \sqrt{1 - \rho^2}\; e_t, \qquad w_{t,j} = 0 \ (j \notin S),

    :math:`\rho` = ``relatedness``, :math:`c` and :math:`e_t` of iid :math:`N(0, 1)` entries.
    Every task has both labels (where the draw gives one, the row of the most extreme score
    takes the other, as :func:`make_multitask_classification` does).

    The set is a directory of files ``part-00000.parquet``, ... of ``tasks_per_file`` tasks,
    in row groups of ``row_group_tasks`` tasks, rows sorted by task; columns ``x0`` ..
    ``x{p-1}`` (float32), ``y`` (float32), ``label`` (int8, 0/1) and ``task`` (int64); the
    schema metadata names the features (so that :class:`~regmtl.ParquetTasks` reads ``x*`` as
    features by default). Memory: one row group at a time. The truth goes to the side file
    ``_truth.json`` (the support, :math:`c`, the arguments), from which
    :func:`parquet_tasks_truth` draws any task's true weights again.

    Parameters
    ----------
    path : str or path
        The directory to write (created; files of a previous set there are replaced).
    n_tasks : int
        T, >= 1.
    n_rows : int, default=25
        Rows per task, >= 2.
    n_features : int, default=20
        p, >= 1.
    n_informative : int, default=5
        The size of the shared support, in [1, n_features].
    relatedness : float, default=0.8
        :math:`\rho` in [0, 1]: 1 gives every task the same weights.
    noise : float, default=1.0
        The standard deviation of the targets' noise, >= 0.
    bias : float, default=0.0
        The intercept of every task.
    held_out : bool, default=False
        Draw new rows of the same tasks (same true weights, other random streams): the test
        set of a training set written with the same arguments (``n_rows`` may differ).
    tasks_per_file : int, default=100_000
        Tasks per file.
    row_group_tasks : int, default=20_000
        Tasks per row group (at most ``tasks_per_file``).
    random_state : int, default=0
        The seed, >= 0. The same arguments write the same bytes, and the same values whatever
        ``tasks_per_file`` and ``row_group_tasks``.

    Returns
    -------
    Bunch
        ``path``, ``files``, ``n_tasks``, ``n_obs``, ``feature_names``, ``support``,
        ``shared_coef`` (:math:`c`), ``intercept`` (:math:`b`), ``noise``, ``coef_of`` (a
        function: the true weights of tasks ``lo..hi-1``, ``coef_of(lo, hi)`` of shape
        (hi - lo, p)) and ``coef`` (all T x p true weights, for T <= 100,000; else None).

    See Also
    --------
    regmtl.ParquetTasks : Read the set chunk by chunk (fit, predict and score out of core).
    parquet_tasks_truth : The truth of a set written before.

    Examples
    --------
    >>> from regmtl import ParquetTasks
    >>> from regmtl.datasets import make_parquet_tasks
    >>> data = make_parquet_tasks("tasks", 50, n_rows=10, n_features=6, n_informative=2)
    >>> source = ParquetTasks(data.path)
    >>> source.n_tasks, source.n_obs, source.feature_names.tolist()
    (50, 500, ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'])
    >>> data.coef.shape, int((data.coef != 0).any(axis=0).sum())  # the shared support
    ((50, 6), 2)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_int("n_tasks", n_tasks, 1)
    check_int("n_rows", n_rows, 2, None, "both labels in every task")
    check_int("n_features", n_features, 1)
    check_int("n_informative", n_informative, 1, n_features, "at most n_features")
    check_real("relatedness", relatedness, 0.0, 1.0)
    check_real("noise", noise, 0.0)
    check_real("bias", bias, -np.inf)
    check_int("tasks_per_file", tasks_per_file, 1)
    check_int("row_group_tasks", row_group_tasks, 1, tasks_per_file, "at most tasks_per_file")
    check_int("random_state", random_state, 0)
    truth = _Truth(int(n_tasks), int(n_features), int(n_informative), float(relatedness),
                   float(noise), float(bias), int(random_state))
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    names = [f"x{j}" for j in range(n_features)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names),
                        pa.field("y", pa.float32()), pa.field("label", pa.int8()),
                        pa.field("task", pa.int64())],
                       metadata={FEATURES_KEY: json.dumps(names).encode()})
    files = []
    width = max(5, len(str((n_tasks - 1) // tasks_per_file)))
    for k, lo in enumerate(range(0, n_tasks, tasks_per_file)):
        hi = min(lo + tasks_per_file, n_tasks)
        name = out / f"part-{k:0{width}d}.parquet"
        with pq.ParquetWriter(name, schema, use_dictionary=["task"], write_page_checksum=True,
                              write_statistics=["task"]) as writer:
            for a in range(lo, hi, row_group_tasks):
                b = min(a + row_group_tasks, hi)
                X, y, label, task = truth.rows(a, b, int(n_rows), held_out)
                cols = [*(pa.array(X[:, j]) for j in range(n_features)), pa.array(y),
                        pa.array(label), pa.array(task)]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema),
                                   row_group_size=len(task))
        files.append(name)
    (out / TRUTH_FILE).write_text(json.dumps(truth.facts(), indent=1))
    return truth.bunch(out, files, int(n_tasks) * int(n_rows), names)


def parquet_tasks_truth(path: str | os.PathLike) -> Bunch:
    """The planted truth of a set written by
    :func:`~regmtl.datasets.make_parquet_tasks` (from its ``_truth.json``).

    Parameters
    ----------
    path : str or path
        The set's directory.

    Returns
    -------
    Bunch
        As :func:`make_parquet_tasks` returns (``files`` and ``n_obs`` of the directory).

    Examples
    --------
    >>> from regmtl.datasets import make_parquet_tasks, parquet_tasks_truth
    >>> data = make_parquet_tasks("small", 20, n_features=4, n_informative=1)
    >>> truth = parquet_tasks_truth("small")
    >>> bool((truth.coef_of(3, 7) == data.coef[3:7]).all())
    True
    """
    out = Path(path)
    facts = json.loads((out / TRUTH_FILE).read_text())
    truth = _Truth(facts["n_tasks"], facts["n_features"], facts["n_informative"],
                   facts["relatedness"], facts["noise"], facts["bias"],
                   facts["random_state"])
    files = sorted(out.glob("part-*.parquet"))
    n_obs = 0
    if files:
        import pyarrow.parquet as pq

        n_obs = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return truth.bunch(out, files, n_obs, [f"x{j}" for j in range(truth.p)])


class _Truth:
    """The true weights of a set: the shared support and vector drawn once, each block of
    :data:`GEN_TASKS` tasks' deviations from its own stream."""

    def __init__(self, T, p, k, rho, noise, bias, seed):
        self.T, self.p, self.k, self.rho = T, p, k, rho
        self.noise, self.bias, self.seed = noise, bias, seed
        rng = _stream(seed, _TRUTH)
        self.support = np.sort(rng.choice(p, k, replace=False))
        self.shared = rng.standard_normal(k)

    def deviations(self, block: int) -> np.ndarray:
        """The true weights on the support of the tasks of one generation block."""
        n = min(GEN_TASKS, self.T - block * GEN_TASKS)
        e = _stream(self.seed, 1, block).standard_normal((n, self.k))
        return self.rho * self.shared + np.sqrt(max(0.0, 1.0 - self.rho ** 2)) * e

    def coef_of(self, lo: int, hi: int) -> np.ndarray:
        """The true weights of tasks ``lo..hi-1`` ((hi - lo) x p)."""
        if not (0 <= lo <= hi <= self.T):
            raise ValueError(f"lo, hi must satisfy 0 <= lo <= hi <= {self.T}; got {lo}, {hi}.")
        W = np.zeros((hi - lo, self.p))
        for block in range(lo // GEN_TASKS, -(-hi // GEN_TASKS)):
            a = block * GEN_TASKS
            s, e = max(lo, a) - a, min(hi, a + GEN_TASKS) - a
            W[a + s - lo:a + e - lo, self.support] = self.deviations(block)[s:e]
        return W

    def rows(self, lo: int, hi: int, n: int, held_out: bool):
        """The columns of tasks ``lo..hi-1``, ``n`` rows each, drawn block by block."""
        parts = []
        for block in range(lo // GEN_TASKS, -(-hi // GEN_TASKS)):
            a = block * GEN_TASKS
            s, e = max(lo, a) - a, min(hi, a + GEN_TASKS) - a
            X, y, label = self._block_rows(block, n, held_out)
            parts.append((X[s * n:e * n], y[s * n:e * n], label[s * n:e * n]))
        X = np.concatenate([q[0] for q in parts])
        task = np.repeat(np.arange(lo, hi, dtype=np.int64), n)
        return X, np.concatenate([q[1] for q in parts]), np.concatenate(
            [q[2] for q in parts]), task

    def _block_rows(self, block: int, n: int, held_out: bool):
        W = self.deviations(block)
        m = W.shape[0]
        rng = _stream(self.seed, _STREAMS[held_out], block)
        X = rng.standard_normal((m * n, self.p), dtype=np.float32)
        Xs = X[:, self.support].astype(np.float64).reshape(m, n, self.k)
        f = np.einsum("tnk,tk->tn", Xs, W) + self.bias  # (m, n) scores
        y = (f + self.noise * rng.standard_normal((m, n))).astype(np.float32).ravel()
        label = (rng.random((m, n)) < 0.5 * (1.0 + np.tanh(0.5 * f))).astype(np.int8)
        one = np.flatnonzero(label.min(axis=1) == label.max(axis=1))  # a task of one label
        if len(one):
            top = np.where(label[one, 0] == 0, np.argmax(f[one], axis=1),
                           np.argmin(f[one], axis=1))
            label[one, top] = 1 - label[one, top]
        return X, y, label.ravel()

    def facts(self) -> dict:
        return {"n_tasks": self.T, "n_features": self.p, "n_informative": self.k,
                "relatedness": self.rho, "noise": self.noise, "bias": self.bias,
                "random_state": self.seed, "support": self.support.tolist(),
                "shared_coef": self.shared.tolist()}

    def bunch(self, out: Path, files: list, n_obs: int, names: list) -> Bunch:
        return Bunch(path=out, files=files, n_tasks=self.T, n_obs=n_obs, feature_names=names,
                     support=self.support, shared_coef=self.shared, intercept=self.bias,
                     noise=self.noise, coef_of=self.coef_of,
                     coef=self.coef_of(0, self.T) if self.T <= 100_000 else None)
