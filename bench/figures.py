"""Draw the Benchmarks page's figures from the recorded runs (not part of regmtl).

Reads the records of bench/results/ (bench/_record.py; ``make bench-record`` writes them) and
writes into docs/benchmarks/ one PNG per figure and ``figures.inc``, the reStructuredText that
docs/benchmarks.rst includes: the images that were drawn, a short table beside each, and a line
for each figure left out because its record is missing or holds nothing to draw (said, never an
exception). The figures are committed with the records, so the docs build draws nothing and
needs neither the benches nor their data.

=========================  ============================================================
record                     figure
=========================  ============================================================
structured_long.json,      peer time / regmtl time per penalty, loss and alpha, against
structured_wide.json       the restart FISTA and APG-bt (bench_structured.py)
l21.json                   the same against scikit-learn, skglm and FISTA on L2,1, and
                           regmtl's time against n, p and T (bench_l21.py, scaling)
first_call.json            import and first fit beside scikit-learn (bench_first_call.py)
passes.json                time over the memory-bandwidth floor per solver
                           (bench_passes.py)
cells.json                 every loss x penalty cell against Clarabel and scikit-learn
                           (bench_cells.py)
=========================  ============================================================

Run:  .venv/bin/python bench/figures.py [--results bench/results] [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _record  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
OUT = os.path.join(os.path.dirname(HERE), "docs", "benchmarks")
#: the figures this script owns in the output folder (stale ones are removed)
FIGURES = ("ratios_structured", "ratios_l21", "scaling", "first_call", "passes", "cells")
PEER_COLORS = {"FISTA": "#1f77b4", "APG-bt": "#ff7f0e", "sklearn": "#2ca02c",
               "skglm": "#9467bd"}


# ----------------------------------------------------------------------------- helpers
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "svg.hashsalt": "regmtl",
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _save(fig, out: str, name: str) -> str:
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _where(rec) -> str:
    """One line: when, where and how the record was measured."""
    m = rec.get("meta", {})
    bits = [m.get("date", "")[:10], f"regmtl {m.get('regmtl')} ({m.get('commit')})"
            if m.get("regmtl") else "", f"{m.get('cpus')} cores" if m.get("cpus") else "",
            f"BLAS threads {m.get('blas_threads')}" if m.get("blas_threads") else "",
            f"load {m['load'][0]:g}" if m.get("load") else "",
            "``" + " ".join(m["argv"]) + "``" if m.get("argv") else ""]
    return ", ".join(b for b in bits if b)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A reStructuredText simple table."""
    cols = list(zip(header, *rows, strict=True)) if rows else [[h] for h in header]
    widths = [max(len(str(c)) for c in col) for col in cols]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(f"{c!s:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()

    return ["", rule, line(header), rule, *[line(r) for r in rows], rule, ""]


def _fmt_ratio(value, lower) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{'>' if lower else ''}{value:.2f}"


def _median(values) -> float:
    v = sorted(values)
    return float("nan") if not v else (v[len(v) // 2] if len(v) % 2 else
                                       0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2]))


# ----------------------------------------------------------------------------- figures
def _ratio_panel(ax, entries, peers, title):
    """Horizontal grouped bars from 1, log scale (left of 1: regmtl slower): one group per
    entry, one bar per peer; a lower bound (the peer was stopped at its cap) hatched."""
    labels = [e["label"] for e in entries]
    height = 0.8 / max(len(peers), 1)
    for k, peer in enumerate(peers):
        for i, e in enumerate(entries):
            if peer not in e["ratios"]:
                continue
            value, lower = e["ratios"][peer]
            ax.barh(i + (k - (len(peers) - 1) / 2) * height, value - 1.0, height, left=1.0,
                    color=PEER_COLORS.get(peer, "grey"), hatch="//" if lower else None,
                    edgecolor="white" if lower else None,
                    label=peer if i == next(j for j, x in enumerate(entries)
                                            if peer in x["ratios"]) else None)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("peer time / regmtl time (> 1: regmtl faster; hatched: a lower bound)")
    ax.xaxis.set_tick_params(labelbottom=True)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def fig_structured(results, out, plt):
    recs = []
    for name in ("structured_long", "structured_wide"):
        rec, why = _record.load(os.path.join(results, name + ".json"))
        if rec is None:
            yield None, why, []
        elif rec["data"].get("entries"):
            recs.append(rec)
    if not recs:
        return
    height = sum(len(r["data"]["entries"]) for r in recs) * 0.32 + 1.2 * len(recs)
    fig, axes = plt.subplots(len(recs), 1, figsize=(7.5, height), squeeze=False, sharex=True,
                             height_ratios=[len(r["data"]["entries"]) + 3 for r in recs])
    lines, tables = [], []
    for ax, rec in zip(axes[:, 0], recs, strict=True):
        d = rec["data"]
        shape = f"T = {d['T']}, p = {d['p']}, n_t {d['n_min']}..{d['n_max']}"
        _ratio_panel(ax, d["entries"], ["FISTA", "APG-bt"],
                     f"structured penalties, {shape}, relative certificate {d['eps']:g}")
        rows = [[e["label"], f"{e['time']:.3f}" if e.get("time") else "-",
                 *[_fmt_ratio(*e["ratios"].get(p, (None, False))) for p in ("FISTA", "APG-bt")]]
                for e in d["entries"]]
        tables += _table([shape, "regmtl (s)", "FISTA", "APG-bt"], rows)
        meds = {p: _median([e["ratios"][p][0] for e in d["entries"] if p in e["ratios"]])
                for p in ("FISTA", "APG-bt")}
        lines.append(f"{shape}: median ratio {meds['FISTA']:.2f} against the restart FISTA, "
                     f"{meds['APG-bt']:.2f} against APG-bt; measured {_where(rec)}.")
    fig.tight_layout()
    yield _save(fig, out, "ratios_structured"), "", [
        "Structured penalties against the two NumPy accelerated proximal gradients "
        "(``bench/bench_structured.py``): " + " ".join(lines),
        *tables]


def fig_l21(results, out, plt):
    rec, why = _record.load(os.path.join(results, "l21.json"))
    if rec is None:
        yield None, why, []
        return
    entries = rec["data"].get("entries", [])
    if entries:
        peers = [p for p in ("sklearn", "skglm", "FISTA")
                 if any(p in e["ratios"] for e in entries)]
        fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(entries) * max(len(peers), 1) / 2 + 1.5))
        _ratio_panel(ax, entries, peers, "L2,1 (multi-task lasso) at the same duality gap")
        fig.tight_layout()
        rows = [[e["label"], f"{e['time']:.3f}" if e.get("time") else "-",
                 *[_fmt_ratio(*e["ratios"].get(p, (None, False))) for p in peers]]
                for e in entries]
        yield _save(fig, out, "ratios_l21"), "", [
            "L2,1 against scikit-learn, skglm and a NumPy FISTA (``bench/bench_l21.py``); "
            f"measured {_where(rec)}.",
            *_table(["entry", "regmtl (s)", *peers], rows)]
    else:
        yield None, f"record {os.path.join(results, 'l21.json')} holds no ratio entry", []
    points = [s for s in rec["data"].get("series", []) if s.get("kind") == "scaling"]
    if not points:
        yield None, "no scaling points in l21.json (run bench_l21.py with the scaling scenario)", []
        return
    from matplotlib.ticker import FuncFormatter, NullLocator

    dims = [d for d in "npT" if any(s["dim"] == d for s in points)]
    fig, axes = plt.subplots(1, len(dims), figsize=(2.6 * len(dims), 2.4), squeeze=False)
    rows = []
    for ax, dim in zip(axes[0], dims, strict=True):
        pts = [s for s in points if s["dim"] == dim]
        x, t = [s[dim] for s in pts], [s["time"] for s in pts]
        ax.loglog(x, t, "o-", color="#1f77b4")
        ax.set_xticks(x, [str(v) for v in x])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        slope = _slope(x, t)
        ax.set_xlabel(dim)
        ax.set_ylabel("regmtl time (s)")
        ax.set_title(f"time against {dim}: exponent {slope:.2f}")
        base = {k: pts[0][k] for k in "npT" if k != dim}
        rows.append([dim, ", ".join(f"{k} = {v}" for k, v in base.items()),
                     ", ".join(str(v) for v in x), ", ".join(f"{v:.3f}" for v in t),
                     f"{slope:.2f}"])
    fig.tight_layout()
    yield _save(fig, out, "scaling"), "", [
        "regmtl's time at :math:`\\alpha_{\\max}/10` (shared design, squared L2,1) as one of "
        "n, p, T doubles with the others fixed; the exponent is the slope of log time against "
        f"log size (``bench/bench_l21.py``, scaling scenario); measured {_where(rec)}.",
        *_table(["size", "others", "sizes", "time (s)", "exponent"], rows)]


def _positive(value) -> float:
    """``value``, or NaN (nothing drawn) where it is missing or not positive (a loose fit
    that took longer than the certified one, under load)."""
    return float(value) if value is not None and value > 0 else float("nan")


def _slope(x, t) -> float:
    lx, lt = [math.log(v) for v in x], [math.log(max(v, 1e-300)) for v in t]
    mx, mt = sum(lx) / len(lx), sum(lt) / len(lt)
    den = sum((a - mx) ** 2 for a in lx)
    if not den:
        return float("nan")
    return sum((a - mx) * (b - mt) for a, b in zip(lx, lt, strict=True)) / den


def _content(results, name, pick):
    """``(record, pick(its data), "")``, or ``(record or None, None, why)`` where the record
    is missing, unreadable or holds nothing to draw."""
    path = os.path.join(results, name + ".json")
    rec, why = _record.load(path)
    if rec is None:
        return None, None, why
    items = pick(rec["data"])
    return rec, items, "" if items else f"record {path} holds nothing to draw"


def _numbers(data, prefix="") -> list[tuple[str, float]]:
    """Every number of a nested dict, named by its path (``a.b``)."""
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append((name, float(value)))
        elif isinstance(value, dict):
            out += _numbers(value, name + ".")
    return out


def fig_first_call(results, out, plt):
    rec, numbers, why = _content(results, "first_call", _numbers)
    if why:
        yield None, why, []
        return
    # "<case>.<what>_s" are seconds: one panel per <what> (import, fit, process), one bar per
    # case; any other number (ratios, counts) goes to the table only
    seconds: dict[str, list[tuple[str, float]]] = {}
    for name, value in numbers:
        case, _, what = name.rpartition(".")
        if case and what.endswith("_s"):
            seconds.setdefault(what[:-2], []).append((case, value))
    panels = list(seconds.items()) or [("value", numbers)]
    size = max(len(v) for _, v in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1.5, 0.3 * size + 1.2),
                             squeeze=False, sharey=True)
    for ax, (what, pairs) in zip(axes[0], panels, strict=True):
        names = [n for n, _ in pairs]
        ax.barh(range(len(pairs)), [v for _, v in pairs],
                color=["#2ca02c" if "sklearn" in n or "scikit" in n else "#1f77b4"
                       for n in names])
        ax.set_yticks(range(len(pairs)), names)
        ax.invert_yaxis()
        ax.set_xlabel(f"{what} (s)" if seconds else "as recorded")
    fig.suptitle("import and first fit in fresh processes (green: scikit-learn)")
    fig.tight_layout()
    yield _save(fig, out, "first_call"), "", [
        "Import and first fit in fresh processes beside scikit-learn "
        f"(``bench/bench_first_call.py``); measured {_where(rec) or 'see the record'}.",
        *_table(["number", "value"], [[n, f"{v:.4g}"] for n, v in numbers])]


def fig_passes(results, out, plt):
    rec, cases, why = _content(results, "passes", lambda d: d.get("cases", []))
    if why:
        yield None, why, []
        return
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(cases) + 1.2))
    bars = [("ratio", "whole fit / bandwidth floor", "#1f77b4"),
            ("product_ratio", "whole fit / passes x one BLAS product", "#2ca02c"),
            ("marginal_ratio", "beyond the tol-0.9 fit / its bandwidth floor", "#ff7f0e")]
    for k, (key, label, color) in enumerate(bars):
        ax.barh([i + (k - 1) * 0.27 for i in range(len(cases))],
                [_positive(c.get(key)) for c in cases], 0.27, color=color, label=label)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(cases)), [c["name"] for c in cases])
    ax.invert_yaxis()
    ax.set_xlabel("time / floor (1 = at the floor)")
    ax.set_title("how close to the limit: certified fits against the floors of their passes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, ncol=1)
    fig.tight_layout()

    def num(v, f):
        return "-" if v is None or math.isnan(v) else format(v, f)

    rows = [[c["name"], f"{c['n']}x{c['p']}", str(c["T"]), ",".join(c["rows"]),
             f"{c['time']:.3f}", str(c["n_iter"]), f"{c['passes']:.1f}",
             f"{max(c['bandwidth'].values()) / 1e9:.0f}", f"{1e3 * c['time_per_pass']:.2f}",
             f"{1e3 * c['floor_per_pass']:.2f}", num(1e3 * c.get("product_per_pass", math.nan),
                                                     ".2f"),
             f"{c['ratio']:.0f}", num(c.get("product_ratio", math.nan), ".1f"),
             f"{c['time_loose']:.3f}", num(_positive(c["marginal_ratio"]), ".0f")]
            for c in cases]
    yield _save(fig, out, "passes"), "", [
        "Passes over the data of a certified fit (relative gap "
        f"{rec['data'].get('eps', 1e-6):g}, :math:`\\alpha_{{\\max}}/10`) against the "
        f"memory-bandwidth floor (``bench/bench_passes.py``); measured {_where(rec)}.",
        *_table(["case", "N x p", "T", "solver row", "time (s)", "iters", "passes", "GB/s",
                 "ms/pass", "stream ms", "product ms", "x floor", "x product", "tol 0.9 (s)",
                 "beyond"], rows)]


def fig_cells(results, out, plt):
    """Every loss x penalty cell on each set: the fastest outside route's time over regmtl's
    (a heat map, log scale; '-' where no route reached the best objective but regmtl's)."""
    rec, cells, why = _content(results, "cells", lambda d: d.get("cells", []))
    if why:
        yield None, why, []
        return
    import numpy as np

    sets = list(dict.fromkeys(c["set"] for c in cells))
    losses = list(dict.fromkeys(c["loss"] for c in cells))
    pens = list(dict.fromkeys(c["penalty"] for c in cells))
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets) + 1.2, 0.42 * len(losses)
                                                    + 1.4), squeeze=False)
    image = None
    for ax, name in zip(axes[0], sets, strict=True):
        grid = np.full((len(losses), len(pens)), np.nan)
        for c in cells:
            if c["set"] == name and c.get("ratio"):
                grid[losses.index(c["loss"]), pens.index(c["penalty"])] = math.log10(c["ratio"])
        image = ax.imshow(grid, cmap="RdYlGn", vmin=-2, vmax=2, aspect="auto")
        for c in cells:
            if c["set"] != name:
                continue
            i, j = losses.index(c["loss"]), pens.index(c["penalty"])
            r = c.get("ratio")
            ax.text(j, i, "-" if not r else (f"{r:.0f}" if r >= 9.95 else f"{r:.1f}"),
                    ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(pens)), pens)
        ax.set_yticks(range(len(losses)), losses if ax is axes[0][0] else [])
        ax.set_title(name)
        ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=axes[0].tolist(), label="log10(peer time / regmtl time)",
                 shrink=0.8)
    fig.suptitle("each cell: the fastest outside route's time over regmtl's (> 1: regmtl "
                 "faster)")

    def t(v):
        return "-" if not v or v.get("time") is None else (
            f"{v['time']:.3f}" + (" (off)" if v.get("off") else ""))
    rows = [[c["set"], c["loss"], c["penalty"], t(c["routes"].get("regmtl")),
             t(c["routes"].get("Clarabel")), t(c["routes"].get("sklearn")),
             f"{c['ratio']:.2f}" if c.get("ratio") else "-"] for c in cells]
    yield _save(fig, out, "cells"), "", [
        "Every loss under every convex penalty family, at the same accuracy (relative "
        f"excess over the best objective within 10 x {rec['data'].get('eps', 1e-6):g}), "
        "regmtl beside cvxpy/Clarabel and, where one exists, scikit-learn's per-task "
        f"estimator (``bench/bench_cells.py``); measured {_where(rec)}. Seconds; '(off)': "
        "the route ended off the best objective, its ratio not drawn.",
        *_table(["set", "loss", "penalty", "regmtl", "Clarabel", "sklearn", "ratio"], rows)]


# ----------------------------------------------------------------------------- main
def draw(results: str = RESULTS, out: str = OUT) -> tuple[list[str], list[str]]:
    """Draw every figure whose record is present; returns ``(paths drawn, reasons for the
    figures left out)`` and writes ``figures.inc`` into ``out``."""
    plt = _pyplot()
    os.makedirs(out, exist_ok=True)
    for name in FIGURES:
        stale = os.path.join(out, name + ".png")
        if os.path.exists(stale):
            os.remove(stale)
    drawn, missing, rst = [], [], []
    for make in (fig_structured, fig_l21, fig_first_call, fig_passes, fig_cells):
        for path, why, text in make(results, out, plt):
            if path is None:
                missing.append(why)
                continue
            drawn.append(path)
            rst += [f".. image:: /{os.path.basename(out)}/{os.path.basename(path)}",
                    f"   :alt: {os.path.splitext(os.path.basename(path))[0]}", "", *text, ""]
    if missing:
        rst += ["Not drawn (no record): " + "; ".join(m.replace(os.path.dirname(HERE) + "/", "")
                                                      for m in missing) + ".", ""]
    with open(os.path.join(out, "figures.inc"), "w") as fh:
        fh.write(".. generated by bench/figures.py from bench/results/; do not edit\n\n")
        fh.write("\n".join(rst).rstrip() + "\n")
    return drawn, missing


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=RESULTS, help="folder of the records (JSON)")
    ap.add_argument("--out", default=OUT, help="folder of the figures and figures.inc")
    args = ap.parse_args(argv)
    drawn, missing = draw(args.results, args.out)
    for path in drawn:
        print(f"drew {path}")
    for why in missing:
        print(f"left out: {why}")


if __name__ == "__main__":
    main()
