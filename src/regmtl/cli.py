"""The ``regmtl`` command.

Each subcommand is a ``(add_arguments, run)`` pair registered in :data:`COMMANDS`; ``run`` takes
the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["main"]


# ---------------------------------------------------------------------------------------- demo
def _int_at_least_2(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text}")
    return value


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-alphas", type=_int_at_least_2, default=12,
                   help="values in each regularization grid (default 12)")
    p.add_argument("--random-state", type=int, default=0,
                   help="seed of the train/test split and the CV folds (default 0)")


def _kfold_per_task(ys: Sequence[np.ndarray], n_splits: int, seed: int) -> list[list]:
    """``folds[k][t]`` = (train rows, validation rows) of task t in fold k."""
    from sklearn.model_selection import KFold

    per_task = [list(KFold(n_splits, shuffle=True, random_state=seed + t).split(y))
                for t, y in enumerate(ys)]
    return [[pt[k] for pt in per_task] for k in range(n_splits)]


def _mse_per_task(ys: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([np.mean((y - f) ** 2) for y, f in zip(ys, preds, strict=True)])


def _cv_ridge(Xs, ys, alphas, folds) -> tuple[float, np.ndarray]:
    """One Ridge alpha for all tasks, by the task-averaged validation MSE."""
    from sklearn.linear_model import Ridge

    err = np.zeros(len(alphas))
    for fold in folds:
        for t, (tr, va) in enumerate(fold):
            for i, a in enumerate(alphas):
                m = Ridge(alpha=a).fit(Xs[t][tr], ys[t][tr])
                err[i] += np.mean((ys[t][va] - m.predict(Xs[t][va])) ** 2)
    err /= len(folds) * len(Xs)
    return float(alphas[int(np.argmin(err))]), err


def _cv_mtl(Xs, ys, alphas, folds, penalty: str) -> tuple[float, np.ndarray]:
    """MultiTaskRegressor alpha by the task-averaged validation MSE, warm-started down the grid."""
    from .estimators import MultiTaskRegressor

    err = np.zeros(len(alphas))
    for fold in folds:
        Xf = [X[tr] for X, (tr, _) in zip(Xs, fold, strict=True)]
        yf = [y[tr] for y, (tr, _) in zip(ys, fold, strict=True)]
        Xv = [X[va] for X, (_, va) in zip(Xs, fold, strict=True)]
        yv = [y[va] for y, (_, va) in zip(ys, fold, strict=True)]
        m = MultiTaskRegressor(penalty=penalty, warm_start=True)
        for i, a in enumerate(alphas):  # alphas decrease
            m.set_params(alpha=a).fit(Xf, yf)
            err[i] += _mse_per_task(yv, m.predict(Xv)).mean()
    err /= len(folds)
    return float(alphas[int(np.argmin(err))]), err


def _scores(ys: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> dict[str, float]:
    y, f = np.concatenate(ys), np.concatenate(preds)
    ev_pooled = 1.0 - np.sum((y - f) ** 2) / np.sum((y - y.mean()) ** 2)
    ev_task = np.mean([1.0 - np.sum((yt - ft) ** 2) / np.sum((yt - yt.mean()) ** 2)
                       for yt, ft in zip(ys, preds, strict=True)])
    rmse = np.mean(np.sqrt(_mse_per_task(ys, preds)))
    return {"ev_pooled": float(ev_pooled), "ev_task": float(ev_task), "rmse": float(rmse)}


def _print_table(rows: list[dict]) -> None:
    cols = [("model", "model", "{}"), ("alpha", "alpha", "{:.4g}"),
            ("ev_pooled", "EV pooled", "{:.4f}"), ("ev_task", "EV task avg", "{:.4f}"),
            ("rmse", "RMSE task avg", "{:.3f}"), ("fit_s", "fit s", "{:.2f}"),
            ("cv_s", "CV s", "{:.2f}")]
    cells = [[h for _, h, _ in cols]] + [[f.format(r[k]) for k, _, f in cols] for r in rows]
    widths = [max(len(row[j]) for row in cells) for j in range(len(cols))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _run_demo(args: argparse.Namespace) -> int:
    """School: single-task ridge vs L2,1 multi-task regression, alphas by 3-fold CV."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from .datasets import load_school, train_test_split_per_task
    from .estimators import MultiTaskRegressor
    from .problem import alpha_max

    t_start = time.perf_counter()
    n_grid = args.n_alphas
    seed = args.random_state
    data = load_school()
    Xs = [X[:, :-1] for X in data.X]  # drop the constant bias column; intercepts are fitted
    Xtr, Xte, ytr, yte = train_test_split_per_task(Xs, data.y, test_size=0.25,
                                                   random_state=seed)
    scaler = StandardScaler().fit(np.vstack(Xtr))  # pooled training rows only
    Xtr = [scaler.transform(X) for X in Xtr]
    Xte = [scaler.transform(X) for X in Xte]
    n_tr, n_te = sum(len(y) for y in ytr), sum(len(y) for y in yte)
    print(f"School (ILEA): {len(Xs)} tasks, {Xs[0].shape[1]} features, "
          f"{n_tr} train / {n_te} test rows (75/25 per school, random_state={seed})")
    print(f"alphas by 3-fold CV within each school's training rows, {n_grid}-value grids, "
          "task-averaged MSE")
    folds = _kfold_per_task(ytr, 3, seed)
    rows = []

    # (a) one ridge per school, one alpha shared by all schools
    grid = np.logspace(-2, 4, n_grid)
    t0 = time.perf_counter()
    a_ridge, _ = _cv_ridge(Xtr, ytr, grid, folds)
    t1 = time.perf_counter()
    models = [Ridge(alpha=a_ridge).fit(X, y) for X, y in zip(Xtr, ytr, strict=True)]
    t2 = time.perf_counter()
    preds = [m.predict(X) for m, X in zip(models, Xte, strict=True)]
    rows.append({"model": "ridge (per school)", "alpha": a_ridge, **_scores(yte, preds),
                 "fit_s": t2 - t1, "cv_s": t1 - t0})

    # (b) L2,1 multi-task regression (joint feature selection)
    amax = alpha_max(Xtr, ytr, penalty="l21")
    grid = amax * np.geomspace(1.0, 1e-3, n_grid)
    t0 = time.perf_counter()
    a_l21, _ = _cv_mtl(Xtr, ytr, grid, folds, "l21")
    t1 = time.perf_counter()
    mtl = MultiTaskRegressor(penalty="l21", alpha=a_l21, tol=1e-4).fit(Xtr, ytr)
    t2 = time.perf_counter()
    rows.append({"model": "MTL L2,1", "alpha": a_l21, **_scores(yte, mtl.predict(Xte)),
                 "fit_s": t2 - t1, "cv_s": t1 - t0})

    print()
    _print_table(rows)
    print()
    selected = np.flatnonzero(np.linalg.norm(mtl.coef_, axis=0) > 0)
    n_school = sum(all(np.ptp(X[:, j]) == 0 for X in Xtr) for j in range(Xtr[0].shape[1]))
    print(f"L2,1: {len(selected)} of {mtl.coef_.shape[1]} features selected "
          f"(alpha_max = {amax:.4g}, duality gap {mtl.dual_gap_:.2e}); {n_school} school-level "
          "features are constant within each school, so the intercepts absorb them")
    print("EV = 1 - SSE / SST on the test rows (pooled: around the overall test mean; "
          "task avg: per school, then averaged)")
    print(f"total time {time.perf_counter() - t_start:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------- main
Command = tuple[str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "demo": ("fit single-task ridge and L2,1 multi-task regression on School",
             _demo_arguments, _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regmtl`` with one subparser per entry of :data:`COMMANDS`."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="regmtl",
                                     description="Regularized multi-task learning.")
    parser.add_argument("--version", action="version", version=f"regmtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regmtl`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args._run(args)


if __name__ == "__main__":
    raise SystemExit(main())
