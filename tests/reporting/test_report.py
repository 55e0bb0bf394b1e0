"""HTML report: self-contained, findings first and environment last in plain words, redrawn from
the current results every time, training curves and sensitivity heatmaps embedded."""
from __future__ import annotations

import base64
import json
import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from synthetic_results import run_cli

from bench.plots.curves import load_training_curves
from bench.report.findings import family_findings
from bench.report.html import build_report
from bench.report.sections import comparison_html, context_html, readable, severity_order
from bench.results import schema
from bench.results.loading import load_results_dir

DATA_IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _sections(page: str) -> list[str]:
    return re.findall(r"<section id='[^']*'><h2>([^<]*)</h2>", page)


def _section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}</h2>")
    return page[start:page.index("</section>", start)]


def test_report_embeds_every_plot(reported_run: tuple[Path, Path]) -> None:
    _, current = reported_run
    page = (current / "report.html").read_text()
    pngs = sorted((current / "plots").glob("*.png"))
    assert len(pngs) == 4  # made by the report itself: 2 trade-offs + 2 sample grids
    assert len(DATA_IMG.findall(page)) == len(pngs) == page.count("<img")
    assert (current / "tables" / "gan.md").exists()  # tables made too
    assert "src=\"http" not in page and "file://" not in page  # nothing external
    for text in ("abc1234", "Real-vs-real floors", "FID-proxy", "REGRESSION"):
        assert text in page, text


def test_report_reads_findings_first_and_context_last(reported_run: tuple[Path, Path]) -> None:
    page = (reported_run[1] / "report.html").read_text()
    assert "<title>genbench report: synthetic (current)</title>" in page  # the run's name
    assert _sections(page) == ["Findings", "Trade-offs", "Sample grids", "Tables", "Cell notes",
                               "Comparison", "Run and environment"]
    # Gan before vae in every section that lists families.
    for title in ("Findings", "Trade-offs", "Sample grids", "Tables"):
        text = _section(page, title)
        assert -1 < text.index("gan") < text.index("vae"), title


def test_findings_name_the_fronts_and_the_noise(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(unstable=True))
    gan = family_findings(run, "gan")
    # Known trade-offs: 8-bit (ratio 3.9, speedup 1.25, +2%) dominates 50% pruning (1.8, 1.0,
    # +5%); 4-bit (7.5, 1.43, +30%); 90% pruning is collapsed and never on a front.
    fronts = [[cell for cell, _, _ in f] for f in (gan.size_front, gan.speed_front)]
    assert fronts == [["baseline [fp32]", "quant [8-bit, channel, naive]",
                       "quant [4-bit, channel, naive]"]] * 2
    assert [where for _, where, _ in gan.size_front] == ["1x", "3.9x", "7.5x"]
    eight = gan.size_front[1][2][0]
    assert eight.startswith("20.4 [") and ", +2.0% [" in eight and eight.endswith("within noise")
    assert "within noise" not in gan.size_front[2][2][0]
    assert gan.within_noise == ["quant [8-bit, channel, naive]"]
    # Speedup noise: the baseline against itself gave 0.99 to 1.01; 50% pruning ran at 1.0.
    assert gan.speed_within_noise == ["prune_magnitude [global, sparsity 0.5] (1.00x)"]
    assert (gan.unstable_rows, gan.failed, gan.seeds) == (1, 0, 3)
    vae = family_findings(run, "vae")
    assert vae.metrics == ["fid_proxy", "elbo_nats"] and (vae.unstable_rows, vae.failed) == (0, 1)
    assert len(vae.size_front[0][2]) == 2  # FID-proxy and ELBO for every front cell


def test_report_says_what_is_uncertain(reported_run: tuple[Path, Path]) -> None:
    page = (reported_run[1] / "report.html").read_text()
    context = _section(page, "Run and environment")
    assert "<th scope='row'>unstable latency rows</th><td>1 (relative IQR" in context
    assert "Real-vs-real floors at n=1000" in context
    assert ("<th scope='row'>speedup noise, gan</th><td>0.990 to 1.010 (baseline timed against "
            "itself") in context
    assert "<th scope='row'>fid_proxy</th><td>0.5 ± 0.05</td>" in context
    findings = _section(page, "Findings")
    assert "1 unstable latency row(s), no speedup taken from them" in findings
    notes = _section(page, "Cell notes")
    collapsed = "gan/prune_magnitude [global, sparsity 0.9] (mnist5k)</td><td>0</td><td>" \
                "COLLAPSED: the same output for every latent (per-pixel std over latents " \
                "3e-08); fully pruned tensors: deconv2.weight</td>"
    assert collapsed in notes
    assert notes.count("simulated layers: fc, deconv1, deconv2") == 11  # 4 quant cells x 3 - 1
    assert "{" not in notes  # no raw JSON


def test_comparison_sorted_by_severity_with_noise_and_p(reported_run: tuple[Path, Path]) -> None:
    rows = [{"verdict": "improvement", "change": -0.5}, {"verdict": "regression", "change": 0.1},
            {"verdict": "regression", "change": -0.4, "severity": 3.0}]
    assert [r["change"] for r in severity_order(rows)] == [-0.4, 0.1, -0.5]
    comparison = _section((reported_run[1] / "report.html").read_text(), "Comparison")
    head = re.findall(r"<th>([^<]*)</th>", comparison)
    assert {"noise", "evidence", "verdict", "change", "baseline [95%]"} <= set(head)
    first = comparison.index("<tbody>")
    assert "gan/quant [8-bit, channel, naive] (mnist5k)" in comparison[first:first + 400]
    # compare's JSON rendered as given: intervals beside values, a p column when it has one.
    payload = {"verdict": "REGRESSION: 1", "regressions": [
        {"cell": "c", "metric": "latency_p50_ms", "device": "cpu", "batch_size": 64,
         "baseline": 2.0, "current": 3.0, "change": 0.5, "threshold": 0.1, "noise": None,
         "p_value": 0.001, "rule": "ratio", "ratio_ci": [1.4, 1.6], "baseline_ci": [1.9, 2.1],
         "current_ci": None, "verdict": "regression"}]}
    table = comparison_html(payload, Path("ref"))
    assert ("<td>cpu/64</td><td>2 [1.9, 2.1]</td><td>3</td><td>+50.0%</td><td>10.0%</td>"
            "<td>-</td><td>0.001</td><td>ratio, ratio [1.4, 1.6]</td>") in table


@pytest.mark.parametrize(("value", "key", "text"), [
    (["avx", "avx2"], "cpu_flags", "avx, avx2"), (None, "cuda", "none"),
    (0.12345678901234, "load", "0.1235"), (25276502016, "memory_bytes", "23.5 GiB"),
    (False, "git_dirty", "no"), ({"a": None, "b": [1, 2]}, "x", "a: none; b: 1, 2"),
])
def test_readable_values(value, key, text) -> None:
    assert readable(value, key) == text


def test_environment_in_plain_words(make_results_dir) -> None:
    run_dir = make_results_dir()
    info = json.loads((run_dir / schema.RUN_FILE).read_text())
    info["environment"] = {"cpu_flags": ["avx", "avx2"], "cuda": None, "gpu": None,
                           "memory_bytes": 25276502016, "load_avg": 0.12345678901234}
    (run_dir / schema.RUN_FILE).write_text(json.dumps(info))
    context = context_html(load_results_dir(run_dir))
    context = context[:context.index("<details>")]  # the resolved config is JSON on purpose
    assert "avx, avx2" in context and "23.5 GiB" in context and "0.1235" in context
    for python_repr in ("['", "None", "0.123456"):
        assert python_repr not in context, python_repr


def _embedded(page: str, name: str) -> bytes:
    return next(base64.b64decode(data) for alt, data in DATA_IMG.findall(page) if alt == name)


def test_report_regenerates_from_the_current_results(make_results_dir) -> None:
    run_dir = make_results_dir()
    first = build_report(run_dir).read_text()
    old_plot = (run_dir / "plots" / "tradeoff_gan.png").read_bytes()
    results = pd.read_csv(run_dir / schema.RESULTS_FILE, dtype=str)
    gan = results["family"] == "gan"
    fid = pd.to_numeric(results["fid_proxy"])
    results["fid_proxy"] = fid.where(~gan, fid * 12.5)
    results[gan].to_csv(run_dir / schema.RESULTS_FILE, index=False)  # and vae is gone
    page = build_report(run_dir).read_text()
    assert page != first
    new_plot = (run_dir / "plots" / "tradeoff_gan.png").read_bytes()
    assert new_plot != old_plot and _embedded(page, "tradeoff_gan") == new_plot
    # The baseline's mean FID-proxy 20 became 250: tables and findings show the new number.
    assert "250" in _section(page, "Tables") and "250 [" in _section(page, "Findings")
    assert "250" not in _section(first, "Tables")
    # Nothing of vae is left: no plot, no table file, no section text.
    assert sorted(p.name for p in (run_dir / "plots").glob("*vae*")) == []
    assert not (run_dir / "tables" / "vae.md").exists()
    assert "vae" not in _section(page, "Findings")


def _write_curve(run_dir: Path, family: str, seed: int, fid: bool = True) -> None:
    curve = [{"epoch": e, "loss": 2.0 / (e + 1), "d_loss": 0.7, "beta": 1.0,
              **({"fid_proxy": 100.0 / (e + 1)} if fid and e % 2 else {})} for e in range(4)]
    (run_dir / "training").mkdir(exist_ok=True)
    (run_dir / "training" / f"{family}_{seed}.json").write_text(
        json.dumps({"family": family, "seed": seed, "curve": curve}))


def test_training_curves_loaded_and_shown(make_results_dir) -> None:
    run_dir = make_results_dir()
    _write_curve(run_dir, "vae", 0)
    _write_curve(run_dir, "gan", 0, fid=False)
    (run_dir / "training" / "broken.json").write_text("{not json")
    (run_dir / "training" / "other.json").write_text(json.dumps([1, 2]))
    curves = load_training_curves(run_dir)
    # 2 files x 4 epochs x (loss, d_loss) + 2 FID points of vae; beta is a schedule, not drawn.
    assert len(curves) == 18 and set(curves["key"]) == {"loss", "d_loss", "fid_proxy"}
    vae_fid = curves[(curves["family"] == "vae") & (curves["key"] == "fid_proxy")]
    assert vae_fid["epoch"].tolist() == [1, 3] and vae_fid["value"].tolist() == [50.0, 25.0]
    page = build_report(run_dir).read_text()
    assert "Training curves" in _sections(page)
    assert "training_curves" in dict(DATA_IMG.findall(_section(page, "Training curves")))


def test_sensitivity_heatmaps_embedded_when_present(make_results_dir, monkeypatch) -> None:
    run_dir = make_results_dir()
    pd.DataFrame({"family": ["gan"], "layer": ["fc"], "fid_proxy_delta": [1.0]}).to_csv(
        run_dir / "sensitivity.csv", index=False)
    seen = {}

    def plot_sensitivity(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
        seen["rows"] = len(frame)
        png = Path(out_dir) / "sensitivity_gan.png"
        png.write_bytes((run_dir.parent / "fake.png").read_bytes())
        return [png]

    # A tiny valid PNG drawn by matplotlib stands in for the heatmap.
    from bench.plots.style import plt
    figure = plt.figure(figsize=(1, 1))
    figure.savefig(run_dir.parent / "fake.png")
    plt.close(figure)
    fake = types.ModuleType("bench.plots.sensitivity")
    fake.plot_sensitivity = plot_sensitivity
    monkeypatch.setitem(sys.modules, "bench.plots.sensitivity", fake)
    page = build_report(run_dir).read_text()
    assert seen == {"rows": 1}
    assert "sensitivity_gan" in dict(DATA_IMG.findall(_section(page, "Per-layer sensitivity")))


def test_report_on_missing_dir_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "missing")], capsys)
    assert code == 2 and "not a directory" in err


def test_curves_read_what_the_store_writes(tmp_path: Path) -> None:
    from bench.cell.training_curves import write_training_curve

    write_training_curve(tmp_path, {"result": {"family": "gan", "seed": 2}, "train_info": {
        "curve": [{"epoch": 0, "loss": 1.5, "d_loss": 0.7}]}})
    assert load_training_curves(tmp_path).to_numpy().tolist() == [
        ["gan", 2, 0, "d_loss", 0.7], ["gan", 2, 0, "loss", 1.5]]


def test_training_curve_panels_per_family_in_order(tmp_path: Path, monkeypatch) -> None:
    import bench.plots.curves as curves

    for family in ("rvae", "gan"):
        _write_curve(tmp_path, family, 0, fid=family == "rvae")
    drawn = {}
    monkeypatch.setattr(curves, "save", lambda figure, stem: drawn.setdefault("f", figure) and [])
    curves.plot_training_curves(tmp_path, tmp_path)
    titles = [ax.get_title() for ax in drawn["f"].axes]
    curves.plt.close(drawn["f"])
    # A column per family (gan before rvae), a FID-proxy row because one family recorded it.
    assert titles == ["gan", "rvae", "gan: FID-proxy", "rvae: FID-proxy"]
