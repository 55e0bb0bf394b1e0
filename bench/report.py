"""`genbench report DIR`: one self-contained HTML page (images as data URIs) of a run."""
from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path

from bench import schema
from bench.annotations import (
    cell_remarks,
    floor_summary,
    n_samples,
    speedup_noise,
    unstable_latency_rows,
)
from bench.compare import CompareReport, compare_runs
from bench.loading import ResultsDir, cell_label, load_results_dir
from bench.tables import PLUS_MINUS, family_tables, to_html, write_tables

REPORT_FILE = "report.html"
# Marks every <img> that decoded (complete and naturalWidth > 0) into body[data-images-ok]:
# the browser test reads "loaded/total" from the dumped DOM.
_IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const ok = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.imagesOk = ok + "/" + images.length;
});
</script>"""
_STYLE = """<style>
body { font-family: sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
caption { font-weight: bold; text-align: left; padding: 4px 0; }
img { max-width: 100%; display: block; margin: 1em 0; }
.note { font-size: 0.85em; color: #555; } .regression { color: #b00; }
table.notes td { text-align: left; }
</style>"""


def image_tag(path: Path) -> str:
    """<img> with the PNG embedded as a base64 data URI: the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _definition_table(items: dict[str, object], caption: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in items.items())
    return f"<table><caption>{html.escape(caption)}</caption>{rows}</table>"


def metadata_html(run: ResultsDir) -> str:
    info = run.run
    summary = {key: info.get(key) for key in ("preset", "git_commit", "git_dirty",
                                              "genbench_version", "started_at", "finished_at")}
    status = run.results["status"].value_counts().to_dict()
    summary["cells"] = ", ".join(f"{count} {name}" for name, count in status.items())
    latency = run.latency["status"].value_counts().to_dict()
    summary["latency rows"] = ", ".join(f"{count} {name}" for name, count in latency.items())
    summary["unstable latency rows"] = (
        f"{unstable_latency_rows(run)} (relative IQR above the threshold after every "
        "re-measurement: figures kept in latency.csv, no p50 or speedup taken from them)")
    for family in run.results["family"].unique():
        batch, speedups = speedup_noise(run, family)
        if speedups:
            summary[f"speedup noise, {family}"] = (
                f"{min(speedups):.3f} to {max(speedups):.3f} (baseline timed against itself, "
                f"CPU, batch {batch}, {len(speedups)} measurement(s))")
    floors = {metric: f"{mean:.4g} {PLUS_MINUS} {spread:.2g}" if spread == spread
              else f"{mean:.4g}" for metric, (mean, spread) in floor_summary(run).items()}
    n = n_samples(run)
    at = f" at n={n}" if n else ""
    parts = [_definition_table(summary, "Run"),
             _definition_table(info.get("environment") or {}, "Environment"),
             _definition_table(info.get("feature_net") or {}, "Feature net (FID-proxy)"),
             _definition_table(floors, f"Real-vs-real floors{at} (what real data scores; mean "
                                       f"{PLUS_MINUS} std over resamples)"),
             "<details><summary>Resolved configuration</summary><pre>"
             + html.escape(json.dumps(info.get("config"), indent=1)) + "</pre></details>"]
    return "\n".join(parts)


def notes_html(run: ResultsDir) -> str:
    """The cells with something to say (collapsed output, simulated layers, layers pruned to
    100%, ...), one line each; empty when no cell has notes."""
    ok = run.results[run.results["status"] == schema.STATUS_OK]
    items = [(cell_label(r), r["seed"], cell_remarks(r)) for _, r in ok.iterrows()]
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(str(seed))}</td>"
                   f"<td>{html.escape(text)}</td></tr>" for label, seed, text in items if text)
    if not rows:
        return ""
    head = "<thead><tr><th>cell</th><th>seed</th><th>notes</th></tr></thead>"
    return f"<table class='notes'>{head}<tbody>{rows}</tbody></table>"


def comparison_html(report: CompareReport, baseline: Path) -> str:
    verdict = "REGRESSION" if report.exit_code else "clean"
    parts = [f"<p>Against <code>{html.escape(str(baseline))}</code>: <b>{verdict}</b>, "
             f"{len(report.comparisons)} metric comparisons, {len(report.regressions)} "
             f"regression(s).</p>"]
    flagged = [c for c in report.comparisons if c.verdict != "unchanged"]
    if flagged:
        head = "".join(f"<th>{h}</th>" for h in ("cell", "metric", "device/batch", "baseline",
                                                 "current", "change", "verdict"))
        body = "".join(
            f"<tr class='{c.verdict}'><td>{html.escape(c.cell)}</td><td>{c.metric}</td>"
            f"<td>{c.device or '-'}/{c.batch_size or '-'}</td><td>{c.baseline:.4g}</td>"
            f"<td>{c.current:.4g}</td><td>{c.change:+.1%}</td><td>{c.verdict}</td></tr>"
            for c in flagged)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    lists = (("Status changes", [f"{s['cell']} seed {s['seed']}: {s['baseline']} -> "
                                 f"{s['current']}" for s in report.status_changes]),
             ("Only in baseline", report.only_baseline), ("Only in current", report.only_current))
    for title, items in lists:
        if items:
            parts.append(f"<h3>{title}</h3><ul>"
                         + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    return "\n".join(parts)


def build_report(directory: str | Path, baseline: str | Path | None = None) -> Path:
    """Write DIR/report.html, making plots and tables first where they are missing."""
    from bench.plots import make_plots  # matplotlib only when plots must be drawn

    run = load_results_dir(directory)
    compared = compare_runs(load_results_dir(baseline), run) if baseline is not None else None
    plots = run.path / "plots"
    if not any(plots.glob("tradeoff_*.png")):  # history plots alone do not count
        make_plots(run)
    if not any((run.path / "tables").glob("*.md")):
        write_tables(run.path)
    sections = [("Run", metadata_html(run))]
    if compared is not None:
        sections.append(("Comparison", comparison_html(compared, Path(baseline))))
    for title, prefix in (("Trade-offs", "tradeoff_"), ("Sample grids", "samples_"),
                          ("History", "history_")):
        images = sorted(plots.glob(f"{prefix}*.png"))
        if images:
            sections.append((title, "\n".join(image_tag(p) for p in images)))
    others = sorted(p for p in plots.glob("*.png")
                    if not p.name.startswith(("tradeoff_", "samples_", "history_")))
    if others:
        sections.append(("Other plots", "\n".join(image_tag(p) for p in others)))
    sections.insert(2 if compared is not None else 1, (
        "Tables", "\n".join(to_html(t) for t in family_tables(run).values())))
    notes = notes_html(run)
    if notes:
        sections.insert(3 if compared is not None else 2, ("Cell notes", notes))
    title = f"genbench report: {run.run.get('preset') or run.path.name}"
    body = "\n".join(f"<section><h2>{html.escape(name)}</h2>\n{content}</section>"
                     for name, content in sections)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title>{_STYLE}</head>\n<body><h1>"
            f"{html.escape(title)}</h1>\n{body}\n{_IMAGE_CHECK}\n</body></html>\n")
    out = run.path / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def _run_cli(args: argparse.Namespace) -> int:
    print(build_report(args.dir, args.baseline))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="self-contained HTML page: DIR/report.html")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.add_argument("--baseline", help="reference results directory to compare against")
    parser.set_defaults(func=_run_cli)
