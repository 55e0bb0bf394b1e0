"""The report's Deployment section and `genbench table`'s deployment.md, present only with
runtime rows."""
from __future__ import annotations

from pathlib import Path

from synthetic_deployment import write_synthetic_run

from bench.cli import main
from bench.tables.deployment import DEPLOYMENT_FILE


def test_report_shows_the_deployment_plot_and_tables(tmp_path: Path) -> None:
    from bench.report.html import build_report

    page = build_report(write_synthetic_run(tmp_path / "run")).read_text()
    assert "<a href='#s-deployment'>Deployment</a>" in page
    section = page.split("<section id='s-deployment'>", 1)[1].split("</section>", 1)[0]
    assert section.count('<img alt="deployment_latency_cpu"') == 1
    assert section.count("<table>") == 2  # gan and gan_w2
    assert "Best fp32 runtime of the baseline" in section


def test_report_without_runtimes_has_no_deployment_section(reported_run) -> None:
    _, current = reported_run
    page = (current / "report.html").read_text()
    assert "s-deployment" not in page and "deployment_latency" not in page
    assert not (current / "tables" / DEPLOYMENT_FILE).exists()


def test_genbench_table_writes_and_keeps_deployment_md(tmp_path: Path, capsys) -> None:
    run = write_synthetic_run(tmp_path / "run")
    stale = run / "tables" / "old_family.md"
    stale.parent.mkdir()
    stale.write_text("a table the results no longer back")
    assert main(["table", str(run)]) == 0
    printed = capsys.readouterr().out
    assert str(run / "tables" / DEPLOYMENT_FILE) in printed
    assert (run / "tables" / DEPLOYMENT_FILE).is_file() and not stale.exists()
