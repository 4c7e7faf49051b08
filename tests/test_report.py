import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import datetime as dt  # noqa: E402
import re  # noqa: E402
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


# --------------------------------------------------------------------- the comparison table
class TableCollector(HTMLParser):
    """Every table: its header cells, body rows, caption, and the <details> it sits in."""

    def __init__(self):
        super().__init__()
        self.tables, self.details, self._cell = [], [], None
        self._summary = None

    def handle_starttag(self, tag, attrs):
        if tag == "details":
            self.details.append({"open": "open" in dict(attrs), "summary": ""})
        elif tag == "summary":
            self._summary = []
        elif tag == "table":
            inside = self.details[-1] if self._open_details() else None
            self.tables.append({"th": [], "rows": [], "caption": "", "details": inside,
                                "num": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td", "caption"):
            self._cell = [tag, "", "num" in (dict(attrs).get("class") or "")]

    def _open_details(self):
        return bool(self.details) and self.details[-1].get("closed") is None

    def handle_endtag(self, tag):
        if tag == "details":
            self.details[-1]["closed"] = True
        elif tag == "summary":
            self.details[-1]["summary"] = "".join(self._summary).strip()
            self._summary = None
        elif tag in ("th", "td", "caption") and self._cell:
            kind, text, num = self._cell
            table = self.tables[-1]
            if kind == "caption":
                table["caption"] = text.strip()
            elif kind == "th":
                table["th"].append(text.strip())
                table["num"].append(num)
            else:
                table["rows"][-1].append(text.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._summary is not None:
            self._summary.append(data)


def _tables(html_text):
    parser = TableCollector()
    parser.feed(html_text)
    parser.close()
    for t in parser.tables:
        t["rows"] = [r for r in t["rows"] if r]  # the header row has no <td>
    return parser


@pytest.fixture(scope="module")
def small_comparison():
    from regmtl.datasets import make_multitask_regression

    d = make_multitask_regression(4, 40, 6, n_informative=3, relatedness=0.9, random_state=0)
    return regmtl.compare(d, models=["ridge", "pooled", "l21"], splits=2, n_alphas=4, cv=2,
                          n_jobs=1, progress=False)


SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")


def test_comparison_report_key_columns_first_rest_folded(small_comparison):
    comp = small_comparison
    html_text = regmtl.report.comparison_report(comp, created="2024-01-01").to_html()
    parsed = _tables(html_text)
    key = parsed.tables[0]
    # the first table: the four key columns, readable, one row per model in order
    assert key["th"] == ["model", "EV", "sd", "tasks better than ridge"]
    assert key["num"] == [False, True, True, True]  # "7/10"-like counts right-aligned
    assert key["details"] is None
    s = comp.summary
    assert [r[0] for r in key["rows"]] == s["model"].tolist()
    assert [r[1] for r in key["rows"]] == [f"{v:.4f}" for v in s["explained_variance_mean"]]
    assert [r[2] for r in key["rows"]] == [f"{v:.4f}" for v in s["explained_variance_sd"]]
    assert [r[3] for r in key["rows"]] == s["wins"].tolist()
    assert key["rows"][0][3] == "baseline" and re.fullmatch(r"\d/4", key["rows"][2][3])
    # the rest: right below, folded in a closed <details>
    rest = parsed.tables[1]
    assert rest["details"] is not None and not rest["details"]["open"]
    assert rest["details"]["summary"].startswith("More columns")
    assert rest["th"][:4] == ["model", "EV task avg", "nMSE", "RMSE"]
    assert {"fit s / split", "fit s, all splits", "alpha (median)"} <= set(rest["th"])
    assert all(rest["num"][1:])
    nmse = rest["th"].index("nMSE")
    for row, m, sd in zip(rest["rows"], s["nmse_mean"], s["nmse_sd"], strict=True):
        mean_text, sd_text = row[nmse].split(" ± ")
        half = 0.5 * 10.0 ** -len(mean_text.split(".")[1])  # rounding of the shown digits
        assert abs(float(mean_text) - m) <= half and abs(float(sd_text) - sd) <= half
    t = comp.timings if {"fit_seconds"} <= set(getattr(comp, "timings", pd.DataFrame())) \
        else None
    if t is not None:
        col = rest["th"].index("fit s, all splits")
        got = [float(r[col]) for r in rest["rows"]]
        np.testing.assert_allclose(got, t["fit_seconds"].reindex(s["model"]), atol=0.051)
    # the chosen parameters are folded too; no table anywhere has a raw snake_case header
    folded = [tb for tb in parsed.tables if tb["details"] is not None]
    assert len(folded) == 2 and folded[1]["th"][:2] == ["model", "split"]
    headers = [h for tb in parsed.tables for h in tb["th"]]
    assert not [h for h in headers if SNAKE.match(h)], headers
    assert "explained_variance" not in html_text.split("<body>", 1)[1].split("<img")[0]
    # one line says who won, before the table
    body = html_text.split('<h2>Results</h2>', 1)[1].split("<table", 1)[0]
    best = s.loc[s["explained_variance_mean"].idxmax(), "model"]
    assert f"<strong>Best: {best}, EV " in body


def test_summary_tables_fall_back_to_the_summary_fit_time():
    from types import SimpleNamespace

    from regmtl.report import _summary_tables

    summary = pd.DataFrame({"model": ["ridge (independent)", "MTL L2,1"],
                            "auc_mean": [0.8, 0.85], "auc_sd": [0.01, 0.02],
                            "accuracy_mean": [0.7, 0.75], "accuracy_sd": [0.03, 0.04],
                            "wins": ["baseline", "3/5"], "fit_time": [1.5, 2.25],
                            "alpha": [0.1, 1.0], "new_column": [1, 2]})
    comp = SimpleNamespace(summary=summary, metric="auc", baseline="ridge (independent)",
                           n_splits=4)
    key, rest = _summary_tables(comp)
    assert key.columns.tolist() == ["model", "AUC", "sd", "tasks better than ridge"]
    assert rest.columns.tolist() == ["model", "accuracy", "fit s / split", "fit s, all splits",
                                     "alpha (median)", "new column"]
    assert rest["accuracy"].tolist() == ["0.7000 ± 0.0300", "0.7500 ± 0.0400"]
    assert rest["fit s / split"].tolist() == ["1.50", "2.25"]
    assert rest["fit s, all splits"].tolist() == ["6.0", "9.0"]  # 4 splits
    # Comparison.timings, when there, is what the table shows
    comp.timings = pd.DataFrame({"fit_seconds": [10.0, 20.0], "seconds_per_split": [2.5, 5.0]},
                                index=pd.Index(["MTL L2,1", "ridge (independent)"]))
    _, rest = _summary_tables(comp)
    assert rest["fit s, all splits"].tolist() == ["20.0", "10.0"]


def test_details_table_in_markdown_and_numeric_text_alignment(tmp_path):
    df = pd.DataFrame({"model": ["a", "b"], "score": ["0.50 ± 0.01", "0.60 ± 0.02"],
                       "wins": ["baseline", "3/4"], "note": ["x1", "y"]})
    r = Report("t", created="d").add_table(df, caption="c", details="More")
    p = _tables(r.to_html())
    (table,) = p.tables
    assert table["details"]["summary"] == "More" and table["num"] == [False, True, True, False]
    md = r.to_markdown(tmp_path)
    assert "<details>\n<summary>More</summary>\n\n**c**\n\n| model | score |" in md
    assert md.count("</details>") == 1


def _chromium():
    import shutil

    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


MEASURE = """<script>
document.querySelectorAll("details").forEach(d => { d.open = true; });
const wraps = [...document.querySelectorAll(".table-wrap")];
document.body.dataset.pageWidth = document.documentElement.scrollWidth;
document.body.dataset.tablesScrolling = wraps.filter(w => w.scrollWidth > w.clientWidth).length;
document.body.dataset.tables = wraps.length;
</script>"""


CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1366,900"]


def _measured_in_chromium(path):
    """The page at ``path`` opened in headless Chromium at 1366 px with every folded table
    open: its width, its tables and those scrolling sideways (``MEASURE``)."""
    import subprocess

    measured = path.with_name("measured.html")
    measured.write_text(path.read_text().replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([_chromium(), *CHROMIUM, "--dump-dom", measured.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = dict(re.findall(r'data-([a-z-]+)="(\d+)"', dom))
    assert found, dom[:500]
    return found


@pytest.mark.skipif(_chromium() is None, reason="no Chromium to render the report")
def test_report_fits_a_1366_px_screen_in_chromium(small_comparison, tmp_path):
    import subprocess

    page = regmtl.report.comparison_report(small_comparison, created="2024-01-01")
    path = page.write(tmp_path / "report.html")
    found = _measured_in_chromium(path)
    # every table open (the folded ones too): nothing wider than the screen, and no table
    # scrolling sideways inside its own box
    assert int(found["page-width"]) <= 1366
    assert int(found["tables"]) >= 4 and int(found["tables-scrolling"]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *CHROMIUM, f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    head = shot.read_bytes()[:24]
    assert head.startswith(PNG) and int.from_bytes(head[16:20], "big") == 1366


@pytest.mark.skipif(_chromium() is None, reason="no Chromium to render the report")
def test_coefficient_report_fits_a_1366_px_screen_in_chromium(tmp_path):
    """The intervals of a debiased L2,1 fit and a stability selection: every table open,
    nothing wider than the screen, no table scrolling sideways, both figures drawn."""
    from regmtl.coefficients_report import coefficient_report

    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((120, 30)) for _ in range(3)]
    W = np.zeros((30, 3))
    W[:4] = 1.0
    ys = [x @ W[:, t] + rng.standard_normal(120) for t, x in enumerate(Xs)]
    model = regmtl.MultiTaskRegressor("l21", alpha=0.1).fit(Xs, ys)
    stable = regmtl.stability_selection(regmtl.MultiTaskRegressor("l21"), Xs, ys, n_pairs=4,
                                        random_state=0)
    page = coefficient_report(model, Xs, ys, stability=stable, created="2024-01-01")
    path = page.write(tmp_path / "coefficients.html")
    html = path.read_text()
    assert html.count("<img") == 2 and "debiased" in html and "Stability selection" in html
    found = _measured_in_chromium(path)
    assert int(found["page-width"]) <= 1366
    assert int(found["tables"]) == 2 and int(found["tables-scrolling"]) == 0


# --------------------------------------------------------------------- deep training
def _history(dominated: bool, epochs: int = 5) -> pd.DataFrame:
    share = 0.95 if dominated else 0.6
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({
        "epoch": e, "loss": 2.0 - 0.1 * e,
        "loss/t0": 1.0 - 0.05 * e, "weight/t0": np.ones(epochs),
        "loss/t1": 1.0 - 0.1 * e, "weight/t1": np.ones(epochs),
        "grad_share/t0": np.full(epochs, share), "grad_share/t1": np.full(epochs, 1 - share),
        "grad_cos/t0/t1": np.full(epochs, -0.2),
        "val_loss/t0": 1.0 - 0.04 * e, "val_loss/t1": 1.0 - 0.08 * e,
        "val/t0/r2": 0.04 * e, "val/t1/auc": 0.5 + 0.05 * e, "val_loss": 2.0 - 0.12 * e})


def test_training_report_says_which_task_dominated_and_tabulates_each():
    bad = regmtl.report.training_report(_history(True), created="2024-01-01").to_html()
    parsed = _parse(bad)
    strong = " ".join(parsed.text.get("strong", []))
    assert "Task t0 dominated the shared layers" in strong
    assert "95%" in bad
    assert [t for t, _ in parsed.tags].count("img") == 3  # balance, losses, weights
    cells = parsed.text.get("td", [])
    assert "t0" in cells and "t1" in cells
    good = regmtl.report.training_report(_history(False), created="2024-01-01").to_html()
    assert "No task dominated the shared layers" in good and "t0, 60%" in good
    with pytest.raises(ValueError, match="training history"):
        regmtl.report.training_report(object())


def test_training_report_of_a_wrapper_names_its_tasks_and_loss_scales():
    pytest.importorskip("torch")
    from regmtl.deep import DeepMultiTaskModel

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    y = {"price": 1000 * X[:, 0], "click": X[:, 1] > 0}
    m = DeepMultiTaskModel(hidden=(8,), max_epochs=3, early_stopping=False).fit(
        {k: X for k in y}, y)
    page = regmtl.report.training_report(m, created="2024-01-01").to_html()
    cells = _parse(page).text.get("td", [])
    assert "price" in cells and "click" in cells and "t0" not in cells
    assert "constant predictor" in page  # the losses are the trainer's normalized ones
    assert "0.5" in cells  # the squared loss of the constant on standardized prices


@pytest.mark.skipif(_chromium() is None, reason="no Chromium to render the report")
def test_training_report_fits_a_1366_px_screen_in_chromium(tmp_path):
    path = regmtl.report.training_report(_history(True), created="2024-01-01").write(
        tmp_path / "training.html")
    found = _measured_in_chromium(path)
    assert int(found["page-width"]) <= 1366
    assert int(found["tables"]) == 1 and int(found["tables-scrolling"]) == 0


def test_training_report_refuses_what_is_not_a_training():
    with pytest.raises(ValueError, match="no loss/TASK and weight/TASK columns"):
        regmtl.report.training_report(pd.DataFrame({"epoch": [1, 2], "score": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"dominance must be in \(0, 1\]"):
        regmtl.report.training_report(_history(True), dominance=1.5)
