"""Reports: headings, text, tables, figures and code gathered into one HTML or Markdown file.

The HTML is a single self-contained file (inline CSS, figures as base64 PNG), the Markdown a
text file with the figures as PNG files beside it. Output depends only on what was added and on
the creation date, which ``created=`` fixes.

Examples
--------
>>> import pandas as pd
>>> from regmtl.report import Report
>>> r = Report("School data", created="2024-01-01")
>>> _ = r.add_text("Scores over **10** splits.").add_table(pd.DataFrame({"ev": [0.2512]}))
>>> "<td class=\\"num\\">0.2512</td>" in r.to_html()
True
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from joblib import delayed

from ._options import check_option

__all__ = ["Report", "comparison_report", "relatedness_report", "training_report"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.5; }
h1 { margin-bottom: 0.2rem; }
.subtitle { color: #555; margin-top: 0; font-size: 1.1rem; }
table.regmtl-table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
table.regmtl-table caption { caption-side: top; text-align: left; font-weight: 600;
                             padding-bottom: 0.3rem; }
table.regmtl-table th, table.regmtl-table td { border-bottom: 1px solid #ddd;
                                               padding: 0.25rem 0.7rem; }
table.regmtl-table thead th { border-bottom: 2px solid #888; text-align: left; }
table.regmtl-table td.num, table.regmtl-table th.num { text-align: right;
                                                       font-variant-numeric: tabular-nums; }
table.regmtl-table tbody tr:nth-child(even) { background: #f6f6f6; }
table.regmtl-table td:first-child, table.regmtl-table td.num { white-space: nowrap; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9rem; }
.table-wrap { max-width: 100%; overflow-x: auto; }
details { margin: 0.5rem 0 1.2rem; }
details > summary { cursor: pointer; color: #333; font-weight: 600; }
details[open] > summary { margin-bottom: 0.3rem; }
pre { background: #f4f4f4; padding: 0.8rem; overflow-x: auto; border-radius: 4px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
footer { margin-top: 3rem; border-top: 1px solid #ddd; color: #777; font-size: 0.8rem; }
""".strip()


@dataclass
class _Block:
    kind: str  # "heading", "text", "table", "figure", "code"
    content: Any  # a figure's PNG bytes, or while deferred the job that draws them
    caption: str | None = None
    level: int = 2
    details: str | None = None  # a table folded under this summary line
    deferred: bool = False


def _plot_png(plot: str, *args: Any, **kwargs: Any) -> bytes:
    """PNG bytes of ``regmtl.plotting.<plot>(*args, **kwargs)``; the figure is closed."""
    import matplotlib.pyplot as plt

    from . import plotting

    fig = plotting._root_figure(getattr(plotting, plot)(*args, **kwargs))
    try:
        return plotting.figure_to_png(fig)
    finally:
        plt.close(fig)


def _path_png(X: Any, y: Any, penalty: Any, loss: str, alphas: np.ndarray, tol: float,
              feature_names: list) -> bytes:
    """PNG bytes of the regularization path of ``(X, y)`` along ``alphas``."""
    import warnings

    from .selection import regularization_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = regularization_path(X, y, penalty=penalty, loss=loss, alphas=alphas, tol=tol)
    return _plot_png("plot_path", path, feature_names=feature_names)


# ---------------------------------------------------------------------------------------------
# inline text


def _split_code(text: str) -> list[tuple[bool, str]]:
    """``text`` as (is_code, piece) pairs, code being the inside of single backticks."""
    parts = re.split(r"`([^`\n]+)`", text)
    return [(i % 2 == 1, part) for i, part in enumerate(parts)]


def _inline_html(text: str) -> str:
    """Escaped ``text`` with ``code``, **bold** and *italic* marked up."""
    out = []
    for is_code, piece in _split_code(text):
        piece = html.escape(piece, quote=False)
        if is_code:
            out.append(f"<code>{piece}</code>")
            continue
        piece = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", piece)
        piece = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", piece)
        out.append(piece)
    return "".join(out)


def _inline_markdown(text: str) -> str:
    """``text`` with raw HTML outside code spans escaped, so it shows as written."""
    return "".join(f"`{piece}`" if is_code else html.escape(piece, quote=False)
                   for is_code, piece in _split_code(text))


_BULLET = re.compile(r"^\s*[-*]\s+")


def _paragraphs(text: str) -> list[tuple[str, list[str]]]:
    """Blank-line separated blocks as ("list", items) or ("p", lines)."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.strip("\n")):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if all(_BULLET.match(line) for line in lines):
            blocks.append(("list", [_BULLET.sub("", line) for line in lines]))
        else:
            blocks.append(("p", [line.strip() for line in lines]))
    return blocks


# ---------------------------------------------------------------------------------------------
# tables


def _is_float(value: Any) -> bool:
    return isinstance(value, (float, np.floating))


def _cell(value: Any, fmt: Callable[[float], str]) -> str:
    if value is None:
        return ""
    if _is_float(value):
        return "" if np.isnan(value) else fmt(float(value))
    return str(value)


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?%?"
_NUMBER_LIKE = re.compile(rf"^{_NUMBER}(?:\s*(?:±|/|of)\s*{_NUMBER})?$", re.IGNORECASE)
_PLACEHOLDERS = {"baseline", "-", "\u2014", "n/a"}


def _looks_numeric(cells: list[str]) -> bool:
    """Whether a text column reads as numbers ("0.34 ± 0.01", "97/139", "12%"), so that it
    is right-aligned; a placeholder such as "baseline" may stand in a cell."""
    full = [c for c in cells if c]
    return (any(_NUMBER_LIKE.match(c) for c in full)
            and all(_NUMBER_LIKE.match(c) or c in _PLACEHOLDERS for c in full))


def _label(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value if str(v) != "")
    return str(value)


def _table_rows(df: Any, float_format: str | Callable[[float], str]):
    """Header labels, rows of cell strings and per-column "is numeric" flags."""
    import pandas as pd

    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    fmt = float_format.format if isinstance(float_format, str) else float_format
    show_index = not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
                      and df.index.step == 1 and df.index.name is None)
    header = [_label(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns]
    rows = [[_cell(v, fmt) for v in row] for row in df.itertuples(index=False, name=None)]
    numeric = [num or _looks_numeric([row[j] for row in rows]) for j, num in enumerate(numeric)]
    if show_index:
        name = df.index.names
        header = [_label(tuple(n or "" for n in name))] + header
        numeric = [False] + numeric
        rows = [[_label(i)] + row for i, row in zip(df.index, rows, strict=True)]
    return header, rows, numeric


# ---------------------------------------------------------------------------------------------


class Report:
    """A document built block by block and written as HTML or Markdown.

    Blocks (headings, text, tables, figures, code) are kept in the order they are added.
    Every ``add_*`` method returns the report, so calls chain. :meth:`to_html` gives one
    self-contained HTML page, :meth:`to_markdown` a Markdown text with the figures as PNG
    files, and :meth:`write` picks one from the file name.

    Parameters
    ----------
    title : str
        The top heading and the HTML page title.
    subtitle : str, default=None
        A line under the title.
    created : datetime, date or str, default=None
        The date in the footer; default the time of writing (UTC). Fix it to get the same
        output on every run.

    Attributes
    ----------
    title : str
        The title.
    subtitle : str or None
        The subtitle.
    created : datetime, date, str or None
        The footer date as given.

    See Also
    --------
    comparison_report : The report of a :func:`~regmtl.compare` result.
    relatedness_report : The report of a :func:`~regmtl.task_relatedness` result.
    training_report : The report of a deep training.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_coefficients
    >>> from regmtl.report import Report
    >>> r = Report("Results", "two tasks", created="2024-01-01")
    >>> r = r.add_heading("Scores").add_text("Mean over **10** splits.")
    >>> r = r.add_table(pd.DataFrame({"task": ["a", "b"], "mse": [0.12345, 0.5]}),
    ...                 caption="Test MSE")
    >>> r = r.add_figure(plot_coefficients(np.eye(2)), caption="Coefficients")
    >>> r
    Report('Results', 4 blocks)
    >>> print(r.to_markdown("."))  # also writes figure-1.png here
    # Results
    <BLANKLINE>
    *two tasks*
    <BLANKLINE>
    ## Scores
    <BLANKLINE>
    Mean over **10** splits.
    <BLANKLINE>
    **Test MSE**
    <BLANKLINE>
    | task | mse |
    |:---|---:|
    | a | 0.1235 |
    | b | 0.5 |
    <BLANKLINE>
    ![Coefficients](figure-1.png)
    <BLANKLINE>
    *Coefficients*
    <BLANKLINE>
    ---
    <BLANKLINE>
    *Generated 2024-01-01 with regmtl ...*
    <BLANKLINE>
    >>> r.write("results.html").name
    'results.html'
    """

    def __init__(self, title: str, subtitle: str | None = None, *,
                 created: dt.datetime | dt.date | str | None = None) -> None:
        _check_created(created)
        self.title = str(title)
        self.subtitle = subtitle
        self.created = created
        self._blocks: list[_Block] = []

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"Report({self.title!r}, {len(self)} blocks)"

    # ------------------------------------------------------------------ building

    def add_heading(self, text: str, level: int = 2) -> Report:
        """Add a section heading.

        Parameters
        ----------
        text : str
            The heading.
        level : int, default=2
            2 to 6 (the title is level 1; 1 is accepted).

        Returns
        -------
        Report
            The report itself.

        Raises
        ------
        ValueError
            If ``level`` is outside 1..6.
        """
        if not 1 <= int(level) <= 6:
            raise ValueError(f"level={level!r} must be between 1 and 6.")
        self._blocks.append(_Block("heading", str(text), level=int(level)))
        return self

    def add_text(self, text: str) -> Report:
        """Add paragraphs separated by blank lines; lines starting with ``-`` make a list.

        HTML in ``text`` is shown literally; ``**bold**``, ``*italic*`` and ```code``` are
        marked up.

        Parameters
        ----------
        text : str
            The text.

        Returns
        -------
        Report
            The report itself.
        """
        self._blocks.append(_Block("text", str(text)))
        return self

    def add_table(self, df: Any, caption: str | None = None,
                  float_format: str | Callable[[float], str] = "{:.4g}", *,
                  details: str | None = None) -> Report:
        """Add a table from a DataFrame (or Series).

        The index is shown unless it is the default ``0..n-1``. The table is formatted now, so
        later changes to ``df`` do not show. Numeric columns, and text columns of numbers
        such as ``"0.34 ± 0.01"`` or ``"97/139"``, are right-aligned. A table wider than the
        page scrolls sideways inside its own box; the page does not.

        Parameters
        ----------
        df : pandas.DataFrame, pandas.Series or anything ``pandas.DataFrame`` accepts
            The table.
        caption : str, default=None
            A caption above the table.
        float_format : str or callable, default="{:.4g}"
            Formats every float cell (a ``str.format`` pattern or a function of the float);
            NaN cells are blank.
        details : str, default=None
            Fold the table away under this one-line summary, closed until clicked (HTML
            ``<details>``, also in the Markdown): for the columns a reader does not need at
            first glance.

        Returns
        -------
        Report
            The report itself.
        """
        header, rows, numeric = _table_rows(df, float_format)
        self._blocks.append(_Block("table", (header, rows, numeric), caption=caption,
                                   details=details))
        return self

    def add_figure(self, fig_or_ax: Any, caption: str | None = None, dpi: int = 100) -> Report:
        """Add a figure: a matplotlib Figure or Axes (stored as PNG now), or PNG bytes.

        Parameters
        ----------
        fig_or_ax : matplotlib Figure or Axes, or bytes
            The figure (e.g. what a ``regmtl.plotting`` function returned), or a PNG
            image.
        caption : str, default=None
            A caption under the figure (also its alternative text).
        dpi : int, default=100
            Resolution of the PNG made from a figure.

        Returns
        -------
        Report
            The report itself.

        Raises
        ------
        ValueError
            If bytes are given that are not a PNG image.
        """
        if isinstance(fig_or_ax, (bytes, bytearray)):
            png = bytes(fig_or_ax)
            if not png.startswith(_PNG_SIGNATURE):
                raise ValueError("bytes given to add_figure are not a PNG image.")
        else:
            from .plotting import figure_to_png

            png = figure_to_png(fig_or_ax, dpi=dpi)
        self._blocks.append(_Block("figure", png, caption=caption))
        return self

    def _defer_figure(self, job: tuple, caption: str | None = None) -> Report:
        """Add a figure that ``job`` (a ``joblib.delayed`` call returning PNG bytes) draws
        when :meth:`_draw` runs: the figures of a report are drawn together, over several
        processes."""
        self._blocks.append(_Block("figure", job, caption=caption, deferred=True))
        return self

    def _draw(self, n_jobs: int | None = None) -> Report:
        """Draw the deferred figures, over ``n_jobs`` processes (the calling one included)."""
        _check_n_jobs(n_jobs)
        from ._parallel import run_jobs

        pending = [b for b in self._blocks if b.deferred]
        for k, png in run_jobs([b.content for b in pending], n_jobs):
            pending[k].content, pending[k].deferred = png, False
        return self

    def add_code(self, text: str) -> Report:
        """Add preformatted text (code, a log, a command line).

        Parameters
        ----------
        text : str
            The text, shown as written.

        Returns
        -------
        Report
            The report itself.
        """
        self._blocks.append(_Block("code", str(text).strip("\n")))
        return self

    # ------------------------------------------------------------------ rendering

    def _footer(self) -> str:
        from ._version import __version__

        created = self.created
        if created is None:
            created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        elif isinstance(created, dt.datetime):
            created = created.strftime("%Y-%m-%d %H:%M")
        elif isinstance(created, dt.date):
            created = created.isoformat()
        return f"Generated {created} with regmtl {__version__}"

    def to_html(self) -> str:
        """The report as one self-contained HTML document.

        Returns
        -------
        str
            The HTML page: inline CSS, figures as base64 PNG.
        """
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        if self.subtitle:
            body.append(f'<p class="subtitle">{esc(self.subtitle)}</p>')
        n_fig = 0
        self._draw()
        for block in self._blocks:
            if block.kind == "heading":
                body.append(f"<h{block.level}>{esc(block.content)}</h{block.level}>")
            elif block.kind == "text":
                for kind, lines in _paragraphs(block.content):
                    if kind == "list":
                        items = "".join(f"<li>{_inline_html(item)}</li>" for item in lines)
                        body.append(f"<ul>{items}</ul>")
                    else:
                        body.append(f"<p>{_inline_html(' '.join(lines))}</p>")
            elif block.kind == "table":
                table = self._html_table(*block.content, caption=block.caption)
                if block.details:
                    table = (f"<details><summary>{esc(block.details)}</summary>\n{table}\n"
                             "</details>")
                body.append(table)
            elif block.kind == "figure":
                n_fig += 1
                alt = block.caption or f"Figure {n_fig}"
                data = base64.b64encode(block.content).decode("ascii")
                fig = f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
                if block.caption:
                    fig += f"<figcaption>{esc(block.caption)}</figcaption>"
                body.append(fig + "</figure>")
            else:
                body.append(f"<pre><code>{esc(block.content, quote=False)}</code></pre>")
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(self.title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
            + "\n".join(body)
            + f"\n<footer><p>{esc(self._footer())}</p></footer>\n</body>\n</html>\n"
        )

    @staticmethod
    def _html_table(header, rows, numeric, caption=None) -> str:
        esc = html.escape

        def cls(j):
            return ' class="num"' if numeric[j] else ""

        out = ['<div class="table-wrap"><table class="regmtl-table">']
        if caption:
            out.append(f"<caption>{esc(caption)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th{cls(j)}>{esc(h)}</th>"
                                           for j, h in enumerate(header)) + "</tr></thead>")
        out.append("<tbody>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td{cls(j)}>{esc(v)}</td>"
                                        for j, v in enumerate(row)) + "</tr>")
        out.append("</tbody></table></div>")
        return "\n".join(out)

    def to_markdown(self, asset_dir: str | Path, *, stem: str = "figure") -> str:
        """The report as Markdown; figures are written to ``asset_dir`` as ``<stem>-<k>.png``.

        Images are linked by file name, so the Markdown belongs in ``asset_dir`` too (as
        :meth:`write` does).

        Parameters
        ----------
        asset_dir : str or path-like
            Folder for the figures' PNG files (created when there is a figure).
        stem : str, default="figure"
            Start of the figure file names.

        Returns
        -------
        str
            The Markdown text.
        """
        asset_dir = Path(asset_dir)
        out = [f"# {_inline_markdown(self.title)}"]
        if self.subtitle:
            out.append(f"*{_inline_markdown(self.subtitle)}*")
        n_fig = 0
        self._draw()
        for block in self._blocks:
            if block.kind == "heading":
                out.append("#" * block.level + " " + _inline_markdown(block.content))
            elif block.kind == "text":
                for kind, lines in _paragraphs(block.content):
                    if kind == "list":
                        out.append("\n".join(f"- {_inline_markdown(item)}" for item in lines))
                    else:
                        out.append("\n".join(_inline_markdown(line) for line in lines))
            elif block.kind == "table":
                table = self._markdown_table(*block.content, caption=block.caption)
                if block.details:
                    table = (f"<details>\n<summary>{html.escape(block.details)}</summary>\n\n"
                             f"{table}\n\n</details>")
                out.append(table)
            elif block.kind == "figure":
                n_fig += 1
                name = f"{stem}-{n_fig}.png"
                asset_dir.mkdir(parents=True, exist_ok=True)
                (asset_dir / name).write_bytes(block.content)
                alt = block.caption or f"Figure {n_fig}"
                out.append(f"![{_md_cell(alt)}]({name})")
                if block.caption:
                    out[-1] += f"\n\n*{_inline_markdown(block.caption)}*"
            else:
                fence = "```"
                while fence in block.content:
                    fence += "`"
                out.append(f"{fence}\n{block.content}\n{fence}")
        out.append(f"---\n\n*{self._footer()}*")
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _markdown_table(header, rows, numeric, caption=None) -> str:
        lines = []
        if caption:
            lines += [f"**{_inline_markdown(caption)}**", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
        lines.append("|" + "|".join("---:" if num else ":---" for num in numeric) + "|")
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write to ``path``: HTML for ``.html``/``.htm``, Markdown for ``.md``/``.markdown``.

        Parent directories are created; Markdown figures go beside the file as
        ``<name>-<k>.png``.

        Parameters
        ----------
        path : str or path-like
            The file to write.

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        ValueError
            If the file name has another suffix.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            text = self.to_html()
        elif suffix in (".md", ".markdown"):
            text = self.to_markdown(path.parent, stem=path.stem)
        else:
            raise ValueError(f"{path}: give a .html, .htm, .md or .markdown file name.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def _md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell or image alt text."""
    return (html.escape(str(text), quote=False).replace("|", r"\|").replace("[", r"\[")
            .replace("]", r"\]").replace("\n", " "))


# --------------------------------------------------------------------- comparison report
#: Readable names of the result columns of a comparison.
_METRIC_NAMES = {"explained_variance": "EV", "explained_variance_task": "EV task avg",
                 "nmse": "nMSE", "rmse": "RMSE", "mse": "MSE", "auc": "AUC",
                 "accuracy": "accuracy", "log_loss": "log loss", "fit_time": "fit s / split",
                 "seconds_per_split": "fit s / split", "fit_seconds": "fit s, all splits",
                 "task_a": "task a", "task_b": "task b"}


_METRIC_WORDS = {"explained_variance": "explained variance (1 − SSE/SST over all test rows, as "
                                        "the multi-task literature reports it)",
                 "auc": "area under the ROC curve, averaged over tasks",
                 "accuracy": "accuracy, averaged over tasks"}


def _readable(column: Any) -> str:
    """A header for ``column``: its readable name, else the name with spaces for ``_``."""
    name = str(column)
    return _METRIC_NAMES.get(name, name.replace("_", " "))


def _short_model(name: Any) -> str:
    """A model's name without its parenthesized role: "ridge (independent)" -> "ridge"."""
    return str(name).split(" (")[0]


def _timings(comparison: Any) -> Any:
    """Fit seconds per model: ``comparison.timings`` (columns ``fit_seconds``,
    ``seconds_per_split``, indexed by model) when it has them, else from the summary's mean
    ``fit_time`` per split; None when neither is there."""
    import pandas as pd

    timings = getattr(comparison, "timings", None)
    if isinstance(timings, pd.DataFrame) and {"fit_seconds", "seconds_per_split"} <= set(
            timings.columns):
        return timings[["fit_seconds", "seconds_per_split"]]
    summary = comparison.summary
    if "fit_time" not in summary.columns:
        return None
    per_split = summary.set_index("model")["fit_time"].astype(float)
    return pd.DataFrame({"fit_seconds": per_split * comparison.n_splits,
                         "seconds_per_split": per_split})


def _headline(comparison: Any) -> str | None:
    """One sentence: the best model by the headline score, against the baseline."""
    comp = comparison
    summary = comp.summary.set_index("model")
    col = f"{comp.metric}_mean"
    if col not in summary.columns or summary[col].isna().all():
        return None
    best = summary[col].idxmax()
    score, base = _readable(comp.metric), summary.loc[comp.baseline, col]
    text = f"Best: {best}, {score} {summary.loc[best, col]:.4f}"
    if best == comp.baseline:
        return text + " (the baseline)."
    text += f" against {base:.4f} for {comp.baseline}"
    wins = str(summary.loc[best, "wins"]) if "wins" in summary.columns else ""
    if "/" in wins:
        won, total = wins.split("/", 1)
        text += f"; better on {won} of {total} tasks"
    return text + "."


def _wins_header(comparison: Any) -> str:
    return f"tasks better than {_short_model(comparison.baseline)}"


def _mean_sd(means: Any, sds: Any) -> list[str]:
    """"mean ± sd" cells, all with the decimals that give the largest mean 4 digits."""
    means, sds = np.asarray(means, dtype=np.float64), np.asarray(sds, dtype=np.float64)
    top = np.nanmax(np.abs(means)) if np.isfinite(means).any() else 0.0
    d = int(np.clip(3 - np.floor(np.log10(top)), 0, 6)) if top > 0 else 4
    return ["" if m != m else f"{m:.{d}f} ± {v:.{d}f}" for m, v in zip(means, sds, strict=True)]


def _summary_tables(comparison: Any) -> tuple[Any, Any]:
    """The summary as two tables with readable headers: the key columns (model, the headline
    score and its sd, tasks better than the baseline) and every other column (scores as
    "mean ± sd", fit seconds, the median alpha)."""
    import pandas as pd

    comp = comparison
    summary = comp.summary.reset_index(drop=True)
    metric = comp.metric
    key = pd.DataFrame({"model": summary["model"].astype(str),
                        _readable(metric): summary[f"{metric}_mean"],
                        "sd": summary[f"{metric}_sd"]})
    if "wins" in summary.columns:
        key[_wins_header(comp)] = summary["wins"].astype(str)
    rest = pd.DataFrame({"model": key["model"]})
    used = {"model", "wins", f"{metric}_mean", f"{metric}_sd"}
    for col in summary.columns:
        if col.endswith("_mean") and f"{col[:-5]}_sd" in summary.columns and col not in used:
            name = col[:-5]
            rest[_readable(name)] = _mean_sd(summary[col], summary[f"{name}_sd"])
            used |= {col, f"{name}_sd"}
    timings = _timings(comp)
    if timings is not None:
        for col, fmt in (("seconds_per_split", "{:.2f}"), ("fit_seconds", "{:.1f}")):
            values = timings[col].reindex(summary["model"]).to_numpy(dtype=np.float64)
            rest[_readable(col)] = ["" if v != v else fmt.format(v) for v in values]
        used.add("fit_time")
    for col in summary.columns:
        if col not in used:
            name = "alpha (median)" if col == "alpha" else _readable(col)
            rest[name] = summary[col].to_numpy()
    return key, rest


def _readable_frame(df: Any) -> Any:
    """``df`` with readable column headers."""
    return df.rename(columns={c: _readable(c) for c in df.columns})

def _best_shared(comparison: Any) -> str | None:
    """The multi-task model with the best mean score (None if there is none)."""
    summary = comparison.summary
    roles = comparison.scores.drop_duplicates("model").set_index("model")["role"]
    mtl = [m for m in summary["model"] if roles.get(m) in ("multi-task", "user")]
    if not mtl:
        return None
    col = f"{comparison.metric}_mean"
    part = summary.set_index("model").loc[mtl, col]
    return str(part.idxmax())


def comparison_report(comparison: Any, *, title: str | None = None,
                      data_name: str = "data", created: Any = None,
                      n_jobs: int | None = None) -> Report:
    """A report of a :func:`regmtl.compare` result.

    The report explains the protocol, then shows the key columns of the summary (model, the
    headline score and its sd, the tasks better than the baseline; readable headers, narrow
    enough for a laptop screen) with the other columns folded below it, the per-model scores
    (:func:`~regmtl.plotting.plot_comparison`), the per-task scores of the best multi-task
    model against the baseline (:func:`~regmtl.plotting.plot_task_scores`), that model's
    coefficients, regularization path and inner CV curve on the first split, the task
    relatedness measured from the independent baseline (when it was fitted), and the chosen
    parameters of every model and split (folded).

    Parameters
    ----------
    comparison : Comparison
        What :func:`regmtl.compare` returned.
    title : str, default=None
        The title; default ``"regmtl comparison: <data_name>"``.
    data_name : str, default="data"
        Name of the data set in the default title.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).
    n_jobs : int, default=None
        Processes that draw the figures (the calling one included; -1: one per core).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`, or add more blocks first.

    See Also
    --------
    regmtl.compare : Runs the comparison.
    relatedness_report : The report of a task relatedness analysis.

    Examples
    --------
    >>> from regmtl import compare
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.report import comparison_report
    >>> data = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    >>> result = compare(data, models=["pooled", "l21"], splits=2, n_alphas=4)
    >>> report = comparison_report(result, data_name="synthetic", created="2024-01-01")
    >>> report.title
    'regmtl comparison: synthetic'
    >>> report.write("comparison.html").name
    'comparison.html'
    """

    _check_n_jobs(n_jobs)
    comp = comparison
    metric = comp.metric
    T, p = len(comp.task_names), len(comp.feature_names)
    rep = Report(title or f"regmtl comparison: {data_name}",
                 f"{T} tasks, {p} features, {comp.n_splits} {comp.split_kind} train/test "
                 f"split(s), {comp.kind}", created=created)
    key, rest = _summary_tables(comp)
    score = _readable(metric)
    rep.add_text(
        "Every model is fitted on the training rows of each split, its regularization chosen "
        "by cross-validation inside every task of the training part only, and scored on the "
        "test rows. *Independent* models learn each task alone (one alpha for all), *pooled* "
        "fits one slope vector to all tasks' rows with a level (intercept) per task, the *MTL* "
        "models share through their penalty. "
        f"*{score}*: {_METRIC_WORDS.get(metric, metric)}; mean and standard deviation (*sd*) "
        f"over splits; *{_wins_header(comp)}*: tasks whose {score} (averaged over splits) beats "
        f"{comp.baseline}'s. Whole job: {comp.elapsed:.1f} s."
    )
    rep.add_heading("Results")
    headline = _headline(comp)
    if headline:
        rep.add_text(f"**{headline}**")
    rep.add_table(key, caption=f"Test {score} over {comp.n_splits} split(s)",
                  float_format="{:.4f}")
    rep.add_table(rest, caption="Other scores (mean ± sd over splits), fit seconds and the "
                  "median alpha chosen", details="More columns: other scores, time, alpha")
    rep._defer_figure(delayed(_plot_png)("plot_comparison", comp.summary, metric=metric),
                      caption=f"{score}: mean ± sd over splits")
    best = _best_shared(comp)
    task_metric = metric if metric in comp.scores else "accuracy"
    if best is not None and best != comp.baseline:
        rep._defer_figure(delayed(_plot_png)("plot_task_scores", comp.scores,
                                             baseline=comp.baseline, model=best,
                                             metric=task_metric),
                          caption=f"Per-task {_readable(task_metric)}: {best} against "
                                  f"{comp.baseline}")
    model = comp.models.get(best) if best is not None else None
    if model is not None and hasattr(model, "coef_"):
        rep.add_heading(f"{best}, first split")
        rep._defer_figure(delayed(_plot_png)("plot_coefficients", model.coef_,
                                             feature_names=comp.feature_names,
                                             task_names=comp.task_names),
                          caption="Coefficients (tasks x features)")
        if hasattr(model, "penalty_") and comp.data_first_split:
            Xtr, _, ytr, _ = comp.data_first_split
            loss = "logistic" if comp.kind == "binary" else "squared"
            rep._defer_figure(delayed(_path_png)(Xtr, ytr, model.penalty_, loss, model.alphas_,
                                                 model.tol, comp.feature_names),
                              caption="Regularization path on the training rows")
        if hasattr(model, "cv_results_") and "mean_test_score" in model.cv_results_:
            rep._defer_figure(delayed(_plot_png)("plot_cv_curve", model.cv_results_,
                                                 best=model.alpha_, n_splits=model.n_splits_),
                              caption="Inner cross-validation curve (±1 standard error)")
    _comparison_relatedness(rep, comp)
    rep.add_heading("Chosen parameters")
    rep.add_table(_readable_frame(comp.choices), caption="Per model and split",
                  details=f"The parameters every model chose on each of the {comp.n_splits} "
                          "split(s)")
    return rep._draw(n_jobs)


# --------------------------------------------------------------------- relatedness
def _relatedness_numbers(rel: Any) -> Any:
    import pandas as pd

    rows = [("method", rel.method), ("similarity", rel.similarity),
            ("tasks", rel.n_tasks),
            ("statistic: mean |similarity| off the diagonal", rel.statistic),
            ("unrelated tasks: mean of the statistic", rel.null_mean),
            ("unrelated tasks: 95% quantile of the statistic", rel.null_quantile),
            ("p-value", rel.p_value), ("permutations", rel.n_permutations),
            ("single unrelated pairs: 95% quantile of |similarity|", rel.pair_threshold),
            ("groups of related tasks", len(rel.groups))]
    if rel.alpha is not None:
        rows.append(("L2 alpha (cross-validated)", rel.alpha))
    if rel.features is not None and rel.n_features is not None:
        rows.append(("features compared", f"{len(rel.features)} of {rel.n_features}"))
    return pd.DataFrame({"quantity": [r[0] for r in rows],
                         "value": [r[1] if isinstance(r[1], str) else f"{r[1]:.4g}"
                                   for r in rows]})


def _add_relatedness(rep: Report, rel: Any, *, level: int = 2, top: int = 15) -> Report:
    """The verdict, the numbers, the matrix and the groups of a :class:`Relatedness`."""
    import pandas as pd

    rep.add_text(f"**{rel.verdict}**")
    rep.add_table(_relatedness_numbers(rel), caption="Relatedness against unrelated tasks")
    rep._defer_figure(delayed(_plot_png)("plot_relatedness", rel),
                      caption=f"Pairwise {rel.similarity}, tasks in dendrogram order; boxes: "
                              "groups of related tasks")
    groups = rel.groups
    if groups:
        shown = 30
        table = pd.DataFrame({
            "group": np.arange(1, len(groups) + 1), "tasks": [len(g) for g in groups],
            "members": [", ".join(map(str, g[:shown])) + (f" (+{len(g) - shown} more)"
                                                         if len(g) > shown else "")
                        for g in groups]})
        rep.add_table(table, caption="Groups of related tasks")
    pairs = rel.to_frame().head(top)
    rep.add_table(_readable_frame(pairs), caption=f"The {len(pairs)} most similar pairs")
    return rep


def relatedness_report(rel: Any, *, title: str | None = None, data_name: str = "data",
                       created: Any = None) -> Report:
    """A report of a :func:`regmtl.task_relatedness` result.

    The report explains the method, then shows the verdict, the test's numbers (statistic,
    its distribution for unrelated tasks, p-value), the similarity matrix
    (:func:`~regmtl.plotting.plot_relatedness`), the groups of related tasks and the most
    similar pairs.

    Parameters
    ----------
    rel : Relatedness
        What :func:`regmtl.task_relatedness` returned.
    title : str, default=None
        The title; default ``"regmtl task relatedness: <data_name>"``.
    data_name : str, default="data"
        Name of the data set in the default title.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`, or add more blocks first.

    See Also
    --------
    regmtl.task_relatedness : Measures the relatedness.
    comparison_report : The report of a model comparison.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor, task_relatedness
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.report import relatedness_report
    >>> data = make_multitask_regression(4, 30, 5, n_informative=3, random_state=0)
    >>> model = MultiTaskRegressor(penalty="l2", alpha=0.01).fit(data.X, data.y)
    >>> rel = task_relatedness(model=model, n_permutations=50)
    >>> report = relatedness_report(rel, data_name="synthetic", created="2024-01-01")
    >>> report
    Report('regmtl task relatedness: synthetic', 7 blocks)
    """
    rep = Report(title or f"regmtl task relatedness: {data_name}",
                 f"{rel.n_tasks} tasks, {rel.similarity} of "
                 f"{'residuals' if rel.method == 'residual' else 'coefficients'} "
                 f"({rel.method}), {rel.n_permutations} permutations", created=created)
    rep.add_text(
        "Every task gets a vector (its ridge coefficients fitted alone, a model's "
        "coefficients, or its out-of-fold residuals) and every pair of tasks a similarity. "
        "The statistic, the mean absolute similarity off the diagonal, is compared with its "
        "distribution over draws of *unrelated* tasks: each task's coefficients permuted "
        "across features with random signs (or its residuals permuted across rows). Groups "
        "come from average-linkage clustering on 1 - similarity, cut where tasks stop being "
        "more alike than 95% of unrelated pairs."
    )
    rep.add_heading("Verdict")
    return _add_relatedness(rep, rel)._draw()


def _comparison_relatedness(rep: Report, comp: Any) -> None:
    """A "Task relatedness" section from the independent ridge (logistic) baseline of the
    first split, when the comparison fitted it."""
    from .relatedness import _is_independent, task_relatedness

    roles = comp.scores.drop_duplicates("model").set_index("model")["role"]
    base = next((m for name, m in comp.models.items()
                 if roles.get(name) == "independent" and hasattr(m, "coef_")
                 and _is_independent(m)), None)
    if base is None or len(comp.task_names) < 2:
        return
    est = "logistic regression" if comp.kind == "binary" else "ridge"
    rep.add_heading("Task relatedness")
    try:
        rel = task_relatedness(model=base, task_names=comp.task_names)
    except ValueError as exc:  # say why rather than lose the whole report
        rep.add_text(f"Not computed from the independent {est} fits: {exc}")
        return
    rep.add_text(f"From the coefficients of the independent {est} fits of the first split "
                 "(each task fitted alone on the standardized training rows), compared with "
                 f"unrelated tasks ({rel.n_permutations} permutations). See `regmtl "
                 "relatedness` for the same on all rows.")
    _add_relatedness(rep, rel, top=10)


def _check_n_jobs(n_jobs: Any) -> None:
    """``n_jobs`` of a report: None or a nonzero int (joblib's meaning; -1: one per core)."""
    if n_jobs is not None and (isinstance(n_jobs, (bool, np.bool_))
                               or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a nonzero int (the processes that draw the "
                         f"figures; -1: one per core), got {n_jobs!r}.")


def _check_created(created: Any) -> None:
    """``created`` of a report: None, a datetime, a date or a string."""
    if created is not None and not isinstance(created, (dt.date, str)):
        raise ValueError(f"created must be None, a datetime, a date or a string, got "
                         f"{created!r}.")


# --------------------------------------------------------------------- deep training
def _training_record(model: Any) -> tuple[Any, dict | None, int | None]:
    """(history with readable task names, loss scales, best epoch)."""
    import pandas as pd

    if isinstance(model, pd.DataFrame):
        return model, None, None
    history = getattr(model, "history_", None)
    if history is None:
        raise ValueError("training_report: pass a fitted regmtl.deep Trainer, a deep "
                         "estimator or a training history (DataFrame).")
    trainer = model if hasattr(model, "net") and hasattr(model, "weighting") else \
        getattr(model, "trainer_", None)
    names: dict[str, str] = {}
    if hasattr(model, "tasks_"):  # a wrapper: its net names task k "t{k}"
        names = {f"t{k}": str(label) for k, label in enumerate(model.tasks_)}
    scales = getattr(trainer, "loss_scale_", None) if trainer is not None else None
    if scales is not None and not getattr(trainer, "normalize_losses", True):
        scales = None

    def rename(col: str) -> str:
        parts = str(col).split("/")
        return "/".join(names.get(p, p) if i else p for i, p in enumerate(parts))

    history = history.rename(columns=rename) if names else history
    if scales is not None and names:
        scales = {names.get(k, k): v for k, v in scales.items()}
    return history, scales, getattr(model, "best_epoch_", None)


def _task_table(history: Any, tasks: list[str], scales: dict | None,
                best: int | None) -> Any:
    """One row per task: losses, validation metrics at the best epoch, weight, share."""
    import pandas as pd

    row_best = history.iloc[(best or len(history)) - 1]
    last = history.iloc[-1]
    tail = history.iloc[-3:]
    rows = []
    for t in tasks:
        row = {"task": t, "training loss (last)": last[f"loss/{t}"]}
        if f"val_loss/{t}" in history.columns:
            row["validation loss (best)"] = row_best[f"val_loss/{t}"]
            for c in history.columns:
                if str(c).startswith(f"val/{t}/"):
                    row[f"{str(c).rsplit('/', 1)[1]} (best)"] = row_best[c]
        row["weight (last)"] = last[f"weight/{t}"]
        if f"grad_share/{t}" in history.columns:
            row["gradient share (last 3)"] = tail[f"grad_share/{t}"].mean()
        if scales is not None:
            row["constant's loss"] = scales.get(t, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def training_report(model: Any, *, title: str | None = None, created: Any = None,
                    dominance: float = 0.9, n_jobs: int | None = None) -> Report:
    """A report of a deep multi-task training: per-task losses, weights, gradient balance.

    It states whether one task dominated the shared layers (its share of their gradient norm
    above ``dominance`` over the last three epochs), tabulates each task (training loss,
    validation loss and metrics at the best epoch, weight, gradient share, the constant
    predictor's loss the trainer divides by), and plots the losses against the constant
    predictor's (:func:`~regmtl.plotting.plot_training_history`), the weights, and the
    gradient shares and cosines (:func:`~regmtl.plotting.plot_gradient_balance`).

    Parameters
    ----------
    model : Trainer, deep estimator or DataFrame
        A fitted :class:`~regmtl.deep.Trainer`, a fitted
        :class:`~regmtl.deep.DeepMultiTaskRegressor` (classifier, mixed model), or a
        training history.
    title : str, default=None
        The title; default ``"regmtl deep training"``.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).
    dominance : float, default=0.9
        The gradient share above which a task is said to dominate.
    n_jobs : int, default=None
        Processes that draw the figures (the calling one included; -1: one per core).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`.

    Raises
    ------
    ValueError
        If ``model`` holds no training history (or one without ``loss/TASK`` and
        ``weight/TASK`` columns), or ``dominance`` is not in (0, 1].

    See Also
    --------
    regmtl.deep.Trainer : Logs the history.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import HardSharing, TaskSpec, Trainer, set_seed
    >>> from regmtl.report import training_report
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 3))
    >>> y = {"price": 1000 * X[:, 0], "click": (X[:, 1] > 0).astype(float)}
    >>> set_seed(0)
    >>> net = HardSharing(3, [TaskSpec("price"), TaskSpec("click", kind="binary")], (8,))
    >>> trainer = Trainer(net, max_epochs=3, batch_size=16).fit((X, y), val=(X, y))
    >>> report = training_report(trainer, created="2024-01-01")
    >>> report.write("training.html").name
    'training.html'
    """
    from .deep.diagnostics import dominant_task

    title = check_option("title", title, "str", none=True)
    dominance = check_option("dominance", dominance, "real", low=0, low_open=True, high=1)
    _check_n_jobs(n_jobs)
    _check_created(created)
    history, scales, best = _training_record(model)
    tasks = [str(c).split("/", 1)[1] for c in history.columns if str(c).startswith("loss/")]
    if not tasks or any(f"weight/{t}" not in history.columns for t in tasks):
        raise ValueError("training_report: the history has no loss/TASK and weight/TASK "
                         "columns; pass a deep Trainer's history (Trainer.history).")
    if len(history) == 0:
        raise ValueError("training_report: the history holds no epoch (n_iter_ = 0), so "
                         "there is nothing to report; pass a model trained for at least one "
                         "epoch.")
    if best is not None and not 0 <= best <= len(history):
        raise ValueError(f"training_report: best_epoch_ = {best} is not one of the "
                         f"history's {len(history)} epochs; the model's record is "
                         "inconsistent (refit it).")
    rep = Report(title or "regmtl deep training",
                 f"{len(tasks)} tasks, {len(history)} epochs"
                 + (f", best epoch {best}" if best else ""), created=created)
    normalized = ("Losses are divided by each task's constant predictor's loss (the training "
                  "mean, base rate or class frequencies): 1 is the constant predictor, below 1 "
                  "the task has learned something. " if scales is not None else "")
    rep.add_text(normalized + "The *gradient share* of a task is its part of the shared "
                 "layers' gradient norm; a share near 1 means one task writes them alone, a "
                 "negative *cosine* that two tasks pull them apart.")
    rep.add_heading("Balance")
    if any(str(c).startswith("grad_share/") for c in history.columns):
        found = dominant_task(history, dominance, 3)
        if found is not None:
            rep.add_text(f"**Task {found[0]} dominated the shared layers**: it wrote "
                         f"{found[1]:.0%} of their gradient norm over the last three epochs; "
                         "the other tasks are suppressed.")
        else:
            shares = history[[c for c in history.columns
                              if str(c).startswith("grad_share/")]].iloc[-3:].mean()
            if shares.notna().any():
                top = shares.idxmax().split("/", 1)[1]
                rep.add_text(f"**No task dominated the shared layers** (largest share over "
                             f"the last three epochs: {top}, {shares.max():.0%}).")
            else:  # logged, but no measurement landed in the last epochs
                rep.add_text("**The gradient shares were not measured in the last three "
                             "epochs** (the history holds NaN there), so the balance of the "
                             "shared layers is unknown.")
        rep._defer_figure(delayed(_plot_png)("plot_gradient_balance", history,
                                             dominance=dominance),
                          caption="Gradient shares (solid) and pairwise cosines (dashed)")
    else:
        rep.add_text("The gradient balance was not logged (one task, grad_balance=0, or a "
                     "distributed run).")
    rep.add_table(_task_table(history, tasks, scales, best), caption="Per task",
                  float_format="{:.4g}")
    rep.add_heading("Over the epochs")
    rep._defer_figure(delayed(_plot_png)("plot_training_history", history, what="loss",
                                         normalized=scales is not None),
                      caption="Training (solid) and validation (dashed) losses")
    rep._defer_figure(delayed(_plot_png)("plot_training_history", history, what="weight"),
                      caption="Mean effective weight of each epoch")
    return rep._draw(n_jobs)
