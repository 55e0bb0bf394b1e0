"""`genbench report DIR`: one self-contained HTML page (images as data URIs) of a run, drawn
from the current results every time: findings first, then plots, tables, comparison, context."""
from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path

from bench.errors import InputError
from bench.report.browser import PAGE_CHECK, find_browser, screenshot
from bench.report.findings import findings_html
from bench.report.sections import comparison_html, context_html, notes_html, run_name
from bench.results.loading import ResultsDir, load_results_dir

REPORT_FILE = "report.html"
DEPLOYMENT = "Deployment"  # the section of runtimes: its plot kind (bench.plots) and tables
HISTORY_PREFIX = "history_"  # `genbench history` draws these into DIR/plots; shown when present
_STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 1400px; overflow-wrap: break-word; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td { white-space: nowrap; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; white-space: normal; }
table.definitions th, table.definitions td, table.notes th, table.notes td,
table.findings th, table.findings td { text-align: left; white-space: normal; }
table.findings td:first-child, table.findings td:nth-child(3) { white-space: nowrap; }
caption { font-weight: bold; text-align: left; padding: 4px 0; }
.scroll { max-width: 100%; overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
pre { max-width: 100%; overflow-x: auto; white-space: pre-wrap; }
.note { font-size: 0.85em; color: #555; } .regression { color: #b00; }
</style>"""


def image_tag(path: Path) -> str:
    """<img> with the PNG embedded as a base64 data URI: the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _images(paths: list[Path]) -> str:
    return "\n".join(image_tag(p) for p in paths if p.suffix == ".png" and p.is_file())


def _tables(run: ResultsDir) -> tuple[str, list[Path]]:
    """Every table as HTML (families in their one order) and the table files rewritten."""
    from bench.tables.build import family_tables, write_tables
    from bench.tables.render import to_html

    written = write_tables(run.path)  # also removes table files of families no longer there
    tables = family_tables(run)
    parts = [f"<div class='scroll'>{to_html(table)}</div>" for table in tables.values()]
    return "\n".join(parts), written


def _deployment(run: ResultsDir, plots: list[Path]) -> str:
    """The latency-against-MACs plot and the deployment tables (tables/deployment.md); empty
    when the run measured no runtime besides eager."""
    from bench.tables.deployment import deployment_tables
    from bench.tables.render import to_html

    tables = [f"<div class='scroll'>{to_html(t)}</div>" for t in deployment_tables(run)]
    return "\n".join([_images(plots)] + tables) if tables or plots else ""


def _comparison(run: ResultsDir, baseline: Path) -> str:
    from bench.compare.cli import compare_runs, to_json  # compare's public output only

    payload = json.loads(to_json(compare_runs(load_results_dir(baseline), run)))
    return comparison_html(payload, baseline)


def report_sections(run: ResultsDir, baseline: Path | None = None) -> list[tuple[str, str]]:
    """(title, HTML) of every section, in reading order; plots and tables are redrawn."""
    from bench.plots import draw_plots  # matplotlib only when plots must be drawn

    sections = [("Findings", findings_html(run))]
    drawn = draw_plots(run)
    for title, paths in drawn.items():
        if title != DEPLOYMENT and any(p.suffix == ".png" for p in paths):
            sections.append((title, _images(paths)))
    history = sorted((run.path / "plots").glob(f"{HISTORY_PREFIX}*.png"))
    if history:
        sections.append(("History", _images(history)))
    tables, _ = _tables(run)
    sections.append(("Tables", tables))
    deployment = _deployment(run, drawn.get(DEPLOYMENT, []))
    if deployment:
        sections.append((DEPLOYMENT, deployment))
    notes = notes_html(run)
    if notes:
        sections.append(("Cell notes", notes))
    if baseline is not None:
        sections.append(("Comparison", _comparison(run, Path(baseline))))
    sections.append(("Run and environment", context_html(run)))
    return sections


def build_report(directory: str | Path, baseline: str | Path | None = None) -> Path:
    """Write DIR/report.html from the current results: plots and tables are redrawn every time
    (stale plot and table files of the same kinds removed), never reused."""
    run = load_results_dir(directory)
    if baseline is not None:
        load_results_dir(baseline)  # a bad baseline fails before anything is written
    sections = report_sections(run, Path(baseline) if baseline is not None else None)
    title = f"genbench report: {run_name(run)}"
    anchors = [(name, "s-" + name.lower().replace(" ", "-")) for name, _ in sections]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{html.escape(n)}</a>" for n, a in anchors) + "</nav>"
    body = "\n".join(f"<section id='{anchor}'><h2>{html.escape(name)}</h2>\n{content}</section>"
                     for (name, anchor), (_, content) in zip(anchors, sections, strict=True))
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title>{_STYLE}</head>\n<body><h1>"
            f"{html.escape(title)}</h1>\n{nav}\n{body}\n{PAGE_CHECK}\n</body></html>\n")
    out = run.path / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def _run_cli(args: argparse.Namespace) -> int:
    browser = None
    if args.screenshot_height is not None and args.screenshot_height < 200:
        raise InputError(f"--screenshot-height {args.screenshot_height}: give at least 200 px")
    if args.screenshot:
        browser = find_browser()
        if browser is None:  # before drawing anything: nothing half-done
            raise InputError("--screenshot needs Chromium or Chrome: install it (apt-get install "
                             "chromium) or set GENBENCH_CHROMIUM to its binary")
    page = build_report(args.dir, args.baseline)
    print(page)
    if browser is None:
        return 0
    check = screenshot(page, Path(args.screenshot), browser, max_height=args.screenshot_height)
    print(f"{args.screenshot}: {check.images_ok}/{check.images} images loaded, page "
          f"{check.scroll_width}x{check.scroll_height} px in a {check.inner_width} px window")
    for problem in check.problems:
        print(f"report check failed: {problem}")
    return 1 if check.problems else 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write DIR/report.html: findings, plots, tables (and a comparison), "
                       "redrawn from the current results")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.add_argument("--baseline", help="reference results directory to compare against")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="also write a full-page PNG of the report rendered by headless "
                             "Chromium at 1280 px, and check every image loads and the page "
                             "fits the window (exit 1 if not)")
    parser.add_argument("--screenshot-height", type=int, metavar="PX",
                        help="cut the screenshot to the top PX pixels of the page (default: "
                             "the whole page)")
    parser.set_defaults(func=_run_cli)
