"""The closing summary of bench_l21.py: every ratio peer time / regmtl time, and their medians.

A ratio whose peer was killed at its time limit is a lower bound. The median of such values is a
lower bound of the true median (the median only grows when one value does); it is exact when
setting every lower bound to +infinity leaves it unchanged, else printed as ">=".
"""

from __future__ import annotations

import numpy as np
from _harness import ratio


def median_bound(values) -> tuple[float, bool]:
    """``values``: (ratio, is_lower_bound) pairs -> (median, whether it is only a lower bound)."""
    v = np.array([r for r, _ in values], dtype=float)
    hi = np.where([low for _, low in values], np.inf, v)
    med = float(np.median(v))
    return med, float(np.median(hi)) != med


def fmt(value: float, lower: bool) -> str:
    return f"{'>=' if lower else ''}{value:.2f}"


class Summary:
    """Entries ``(group, label, {peer: (ratio, lower)})`` and free lines, printed at the end."""

    def __init__(self):
        self.entries: list[tuple[str, str, dict]] = []
        self.lines: list[str] = []
        self.times: dict[str, float] = {}  # label -> regmtl's median time (s), for the record
        self.series: list[dict] = []  # free points (e.g. the scaling table), for the record

    def add(self, group: str, label: str, ref, peers: dict) -> None:
        """``peers``: {peer name: Row or None}; ``ref`` the regmtl Row."""
        self.entries.append((group, label, {k: ratio(r, ref) for k, r in peers.items()
                                            if r is not None}))
        self.times[label] = float(np.median(ref.times))

    def median(self, peer: str, groups=None, label_has: str = "") -> tuple[float, bool, int]:
        vals = [e[peer] for g, lab, e in self.entries
                if peer in e and (groups is None or g in groups) and label_has in lab]
        if not vals:
            return float("nan"), False, 0
        return (*median_bound(vals), len(vals))

    def print_table(self, groups, peers, title: str) -> None:
        print()
        print(title)
        print(f"  {'entry':<36}" + "".join(f" {p:>14}" for p in peers))
        for g, label, e in self.entries:
            if g in groups:
                print(f"  {label:<36}" + "".join(
                    f" {fmt(*e[p]) if p in e else '-':>14}" for p in peers))

    def target(self, text: str, peer: str, goal: float, groups=None, label_has="") -> None:
        """One 'median ratio vs target' line (kept for the end)."""
        med, low, k = self.median(peer, groups, label_has)
        ok = "met" if med >= goal else ("NOT met" if not low else "not shown (lower bound)")
        self.lines.append(f"  {text}: median {fmt(med, low)} over {k} entries "
                          f"(target >= {goal:g}: {ok})")

    def note(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def record(self) -> dict:
        """The entries, regmtl's times, the free points and lines as JSON-ready data (see
        bench/_record.py): ``entries`` is a list of ``{group, label, time, ratios: {peer:
        [ratio, is_lower_bound]}}``."""
        return dict(
            entries=[dict(group=g, label=lab, time=self.times.get(lab),
                          ratios={k: [float(v), bool(low)] for k, (v, low) in e.items()})
                     for g, lab, e in self.entries],
            series=self.series, lines=[line.strip() for line in self.lines])

    def print_lines(self) -> None:
        for line in self.lines:
            print(line)
