"""The report document: headings, text, tables, figures and code gathered into one HTML or
Markdown file.

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

__all__ = ["Report"]

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
    regmtl.report.comparison_report : The report of a :func:`~regmtl.compare` result.
    regmtl.report.relatedness_report : The report of a :func:`~regmtl.task_relatedness` result.
    regmtl.report.training_report : The report of a deep training.

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
        check_created(created)
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
        check_n_jobs(n_jobs)
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


def check_n_jobs(n_jobs: Any) -> None:
    """``n_jobs`` of a report: None or a nonzero int (joblib's meaning; -1: one per core)."""
    if n_jobs is not None and (isinstance(n_jobs, (bool, np.bool_))
                               or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a nonzero int (the processes that draw the "
                         f"figures; -1: one per core), got {n_jobs!r}.")


def check_created(created: Any) -> None:
    """``created`` of a report: None, a datetime, a date or a string."""
    if created is not None and not isinstance(created, (dt.date, str)):
        raise ValueError(f"created must be None, a datetime, a date or a string, got "
                         f"{created!r}.")
