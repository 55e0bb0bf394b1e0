"""HTML report: self-contained (every plot embedded) and rendered by a real browser."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from synthetic_results import run_cli

CHROMIUM = Path("/usr/bin/chromium")
DATA_IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">')


def test_report_embeds_every_plot(reported_run: tuple[Path, Path]) -> None:
    _, current = reported_run
    page = (current / "report.html").read_text()
    pngs = sorted((current / "plots").glob("*.png"))
    assert len(pngs) == 4  # made by the report itself: 2 trade-offs + 2 sample grids
    assert len(DATA_IMG.findall(page)) == len(pngs) == page.count("<img")
    assert (current / "tables" / "gan.md").exists()  # tables made too
    assert "src=\"http" not in page and "file://" not in page  # nothing external
    # metadata, floors, tables and the comparison naming the regressed cell
    for text in ("abc1234", "Real-vs-real floors", "FID-proxy", "REGRESSION",
                 "gan/quant [8-bit, channel, naive] (mnist5k)"):
        assert text in page, text


def test_report_says_what_is_uncertain(reported_run: tuple[Path, Path]) -> None:
    page = (reported_run[1] / "report.html").read_text()
    # Unstable latency rows counted; the floor as mean ± spread at the cells' sample size.
    assert "<td>unstable latency rows</td><td>1 (relative IQR" in page
    assert "Real-vs-real floors at n=1000" in page
    assert "<td>speedup noise, gan</td><td>0.990 to 1.010 (baseline timed against itself" in page
    assert "<td>fid_proxy</td><td>0.5 ± 0.05</td>" in page
    # Cell notes, readable: the collapsed gan cell (every seed) and the simulated layers.
    notes = page[page.index("<h2>Cell notes</h2>"):]
    notes = notes[:notes.index("</section>")]
    collapsed = "gan/prune_magnitude [global, sparsity 0.9] (mnist5k)</td><td>0</td><td>" \
                "COLLAPSED: the same output for every latent (per-pixel std over latents " \
                "3e-08); fully pruned tensors: deconv2.weight</td>"
    assert collapsed in notes
    assert notes.count("simulated layers: fc, deconv1, deconv2") == 11  # 4 quant cells x 3 - 1
    assert "{" not in notes  # no raw JSON
    # The tables carry their legend: what ± means, the noise mark.
    assert "95% interval" in page and "within noise" in page


def _render(page: Path, tmp_path: Path) -> str:
    """The DOM after load, dumped by headless Chromium."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium (apt-get install chromium)")
def test_report_renders_in_chromium_with_every_image(reported_run: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    page = reported_run[1] / "report.html"
    n_images = page.read_text().count("<img")
    dom = _render(page, tmp_path)
    assert f'data-images-ok="{n_images}/{n_images}"' in dom
    # The check can fail: a page with a broken image reports it.
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("base64,", "base64,AAAA", 1))
    assert f'data-images-ok="{n_images - 1}/{n_images}"' in _render(broken, tmp_path)


def test_report_cli_rewrites_the_page(reported_run: tuple[Path, Path], capsys) -> None:
    baseline, current = reported_run
    page = current / "report.html"
    before = page.read_text()
    page.unlink()
    code, out, _ = run_cli(["report", str(current), "--baseline", str(baseline)], capsys)
    assert code == 0 and out.strip() == str(page)
    assert page.read_text() == before  # plots exist now: reused, same bytes embedded


def test_report_on_missing_dir_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "missing")], capsys)
    assert code == 2 and "not a directory" in err
