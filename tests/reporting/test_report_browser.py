"""The report in headless Chromium: every image decodes, the page fits a 1280 px window, and
`genbench report --screenshot` writes the full page. Skipped where no browser is installed (CI
installs chromium)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from synthetic_results import run_cli

from bench.report.browser import PAGE_CHECK, PageCheck, check_page, find_browser

BROWSER = find_browser()
needs_browser = pytest.mark.skipif(BROWSER is None, reason="needs Chromium or Chrome "
                                                          "(apt-get install chromium)")


def test_page_check_problems_are_named() -> None:
    assert PageCheck(3, 3, 1280, 1280, 5000).problems == []
    assert PageCheck(2, 3, 1400, 1280, 5000).problems == [
        "1 of 3 image(s) did not load", "the page is 1400 px wide, wider than the 1280 px window"]


@needs_browser
def test_report_renders_every_image_within_the_window(reported_run: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    page = reported_run[1] / "report.html"
    n_images = page.read_text().count("<img")
    check = check_page(page, BROWSER)
    assert (check.images_ok, check.images) == (n_images, n_images) and n_images == 4
    assert check.inner_width == 1280 and check.scroll_width <= check.inner_width
    assert check.problems == []
    # The check can fail: a broken image and an element wider than the window are reported.
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("base64,", "base64,AAAA", 1).replace(
        "<h1>", "<div style='width: 3000px'>wide</div><h1>", 1))
    bad = check_page(broken, BROWSER)
    assert bad.images_ok == n_images - 1 and bad.scroll_width >= 3000
    assert len(bad.problems) == 2


@needs_browser
def test_report_cli_writes_a_full_page_screenshot(reported_run: tuple[Path, Path],
                                                  tmp_path: Path, capsys) -> None:
    baseline, current = reported_run
    png = tmp_path / "shots" / "report.png"
    code, out, _ = run_cli(["report", str(current), "--baseline", str(baseline),
                            "--screenshot", str(png)], capsys)
    assert code == 0, out
    import matplotlib.image

    match = re.search(r"4/4 images loaded, page (\d+)x(\d+) px in a 1280 px window", out)
    assert match is not None, out
    height, width = matplotlib.image.imread(png).shape[:2]
    # The whole page (taller than the 2000 px window), not the first screen of it.
    assert (width, height) == (1280, int(match.group(2))) and height > 2000


def test_screenshot_without_a_browser_exits_2_and_writes_nothing(
        make_results_dir, monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("GENBENCH_CHROMIUM", str(tmp_path / "no-such-browser"))
    run_dir = make_results_dir()
    code, _, err = run_cli(["report", str(run_dir), "--screenshot", str(tmp_path / "r.png")],
                           capsys)
    assert code == 2 and "--screenshot needs Chromium" in err and err.count("\n") == 1
    assert not (run_dir / "report.html").exists() and not (run_dir / "plots").exists()


def test_the_report_carries_the_page_check(reported_run: tuple[Path, Path]) -> None:
    assert PAGE_CHECK in (reported_run[1] / "report.html").read_text()


@needs_browser
def test_screenshot_cut_to_a_height(reported_run: tuple[Path, Path], tmp_path: Path) -> None:
    import matplotlib.image

    from bench.report.browser import screenshot

    png = tmp_path / "top.png"
    check = screenshot(reported_run[1] / "report.html", png, BROWSER, max_height=900)
    assert matplotlib.image.imread(png).shape[:2] == (900, 1280) and check.problems == []


def test_screenshot_height_below_200_exits_2(make_results_dir, tmp_path: Path, capsys) -> None:
    run_dir = make_results_dir()
    code, _, err = run_cli(["report", str(run_dir), "--screenshot", str(tmp_path / "r.png"),
                            "--screenshot-height", "50"], capsys)
    assert code == 2 and "--screenshot-height 50: give at least 200 px" in err
    assert not (run_dir / "report.html").exists()
