import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import datetime as dt  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import regmtl  # noqa: E402
from regmtl.report import Report  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class TagCollector(HTMLParser):
    """Start tags with attributes, text per tag, and whether open/close tags nest."""

    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.errors = [], [], []
        self.text = {}  # tag -> list of its texts

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        if self.stack and data.strip():
            self.text.setdefault(self.stack[-1], []).append(data)


def _parse(text):
    parser = TagCollector()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


def _figure(caption_seed):
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot(np.arange(3), np.arange(3) * caption_seed)
    return fig


TABLE = pd.DataFrame({"model": ["single", "l21 <b>"], "ev_mean": [0.123456, np.nan],
                      "n": [139, 20]})


def _report():
    r = Report("School <results>", subtitle="10 splits", created=dt.date(2024, 5, 6))
    r.add_heading("Scores", level=2)
    r.add_text("First paragraph with **bold** and `x < 1`.\n\n<script>alert(1)</script>\n\n"
               "- item one\n- item two")
    r.add_table(TABLE, caption="Mean scores")
    r.add_figure(_figure(1), caption="Path")
    r.add_figure(_figure(2).axes[0])
    r.add_code("regmtl compare school.csv --splits 10\n")
    return r


def test_html_structure_tables_images_and_escaping():
    text = _report().to_html()
    p = _parse(text)
    tags = [t for t, _ in p.tags]
    assert text.startswith("<!DOCTYPE html>") and "style" in tags and "script" not in tags
    assert p.text["title"] == ["School <results>"] and p.text["h1"] == ["School <results>"]
    assert p.text["h2"] == ["Scores"]
    assert "<script>alert(1)</script>" in "".join(p.text["p"])  # shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert p.text["strong"] == ["bold"] and p.text["code"][0] == "x < 1"
    assert p.text["li"] == ["item one", "item two"]

    (table,) = [a for t, a in p.tags if t == "table"]
    assert table["class"] == "regmtl-table"
    assert p.text["caption"] == ["Mean scores"]
    assert p.text["th"] == ["model", "ev_mean", "n"]
    assert p.text["td"] == ["single", "0.1235", "139", "l21 <b>", "20"]  # NaN left blank
    assert text.count("<td") == 6

    imgs = [a for t, a in p.tags if t == "img"]
    assert len(imgs) == 2
    assert [a["alt"] for a in imgs] == ["Path", "Figure 2"]
    for a in imgs:
        prefix = "data:image/png;base64,"
        assert a["src"].startswith(prefix)
        assert base64.b64decode(a["src"][len(prefix):], validate=True).startswith(PNG)
    assert p.text["figcaption"] == ["Path"]
    assert p.text["code"][-1] == "regmtl compare school.csv --splits 10"
    assert [t for t, _ in p.tags][-2:] == ["footer", "p"]
    assert p.text["p"][-1] == f"Generated 2024-05-06 with regmtl {regmtl.__version__}"


def test_html_deterministic_and_default_date():
    assert _report().to_html() == _report().to_html()
    r = Report("t")
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert f"Generated {today}" in r.to_html()
    assert "Generated 2024-01-02 03:04 " in Report(
        "t", created=dt.datetime(2024, 1, 2, 3, 4)).to_html()


def test_table_index_and_float_format():
    df = pd.DataFrame({"a": [1.0, 2.5]}, index=pd.Index(["x", "y"], name="task"))
    p = _parse(Report("t", created="d").add_table(df, float_format=lambda v: f"{v:.2f}")
               .to_html())
    assert p.text["th"] == ["task", "a"]
    assert p.text["td"] == ["x", "1.00", "y", "2.50"]
    r = Report("t", created="d").add_table(pd.Series([0.5], name="s"), float_format="{:.1%}")
    assert _parse(r.to_html()).text["td"] == ["50.0%"]


def test_write_html_creates_dirs(tmp_path):
    r = _report()
    out = r.write(tmp_path / "a" / "b" / "report.html")
    assert out == tmp_path / "a" / "b" / "report.html"
    assert out.read_text(encoding="utf-8") == r.to_html()


def test_markdown_writes_pngs(tmp_path):
    r = _report()
    path = r.write(tmp_path / "sub" / "res.md")
    text = path.read_text(encoding="utf-8")
    for k in (1, 2):
        png = tmp_path / "sub" / f"res-{k}.png"
        assert png.read_bytes().startswith(PNG)
    assert "![Path](res-1.png)" in text and "![Figure 2](res-2.png)" in text
    assert text.startswith("# School &lt;results&gt;\n")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "`x < 1`" in text and "- item two" in text
    assert "| model | ev_mean | n |" in text and "|:---|---:|---:|" in text
    assert "| single | 0.1235 | 139 |" in text and "| l21 &lt;b&gt; |  | 20 |" in text
    assert "```\nregmtl compare school.csv --splits 10\n```" in text
    assert f"Generated 2024-05-06 with regmtl {regmtl.__version__}" in text
    # to_markdown itself: files in the given folder
    md = r.to_markdown(tmp_path / "assets", stem="fig")
    assert "![Path](fig-1.png)" in md and (tmp_path / "assets" / "fig-2.png").is_file()


def test_errors(tmp_path):
    r = Report("t")
    with pytest.raises(ValueError, match=r"\.html"):
        r.write(tmp_path / "report.pdf")
    with pytest.raises(ValueError, match="level"):
        r.add_heading("x", level=7)
    with pytest.raises(ValueError, match="not a PNG"):
        r.add_figure(b"GIF89a")
    assert len(r.add_heading("ok").add_code("x")) == 2


def test_comparison_report_has_relatedness_section_from_the_ridge_baseline():
    from regmtl.datasets import make_multitask_regression

    d = make_multitask_regression(5, 40, 6, n_informative=3, relatedness=0.9, random_state=0)
    comp = regmtl.compare(d, models=["ridge", "l21"], splits=1, n_alphas=4, cv=2)
    rep = regmtl.report.comparison_report(comp, created="2024-01-01")
    kinds = [(b.kind, b.content) for b in rep._blocks]
    k = kinds.index(("heading", "Task relatedness"))
    section = [kind for kind, _ in kinds[k + 1:]]
    section = section[:section.index("heading")]
    assert section.count("figure") == 1 and "table" in section
    ridge = comp.models["ridge (independent)"]
    rel = regmtl.task_relatedness(model=ridge, task_names=comp.task_names)
    assert ("text", f"**{rel.verdict}**") in kinds
    assert "per-task ridge coefficients" in rel.verdict and "Caution" not in rel.verdict
    U = ridge.coef_ / np.linalg.norm(ridge.coef_, axis=1, keepdims=True)
    np.testing.assert_allclose(rel.matrix.to_numpy(), U @ U.T, atol=1e-12)
    assert list(rel.matrix.index) == comp.task_names
    # without the independent ridge baseline the section is left out
    no_ridge = regmtl.compare(d, models=["l21"], splits=1, n_alphas=4, cv=2)
    rep2 = regmtl.report.comparison_report(no_ridge, created="2024-01-01")
    assert "Task relatedness" not in [b.content for b in rep2._blocks if b.kind == "heading"]


def test_relatedness_report_renders(tmp_path):
    W = np.array([[1.0, 2.0, 0.5], [1.0, 1.8, 0.4], [-2.0, 0.1, 1.0]])
    from types import SimpleNamespace

    rel = regmtl.task_relatedness(model=SimpleNamespace(coef_=W, penalty="l2"),
                                  n_permutations=20, task_names=["a", "b", "<c>"])
    page = regmtl.report.relatedness_report(rel, data_name="toy", created="2024-01-01")
    parser = _parse(page.to_html())
    assert parser.text["h1"] == ["regmtl task relatedness: toy"]
    assert any(t.startswith("Some evidence") or t.startswith("No evidence")
               or t.startswith("Strong") for t in parser.text["strong"])
    assert "&lt;c&gt;" in page.to_html()
    md = page.write(tmp_path / "rel.md")
    assert (tmp_path / "rel-1.png").read_bytes().startswith(PNG) and md.exists()
