"""The report in a real browser (headless Chromium): did every image decode, does the page fit
the window, and a full-page screenshot PNG."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_ENV = "GENBENCH_CHROMIUM"  # a browser binary to use instead of searching PATH
WINDOW = (1280, 2000)
# The page writes what it measured after load into <body data-...>; --dump-dom shows it.
PAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const ok = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  const root = document.documentElement;
  Object.assign(document.body.dataset, {
    imagesOk: ok + "/" + images.length, scrollWidth: String(root.scrollWidth),
    innerWidth: String(window.innerWidth), scrollHeight: String(root.scrollHeight)});
});
</script>"""
_TIMEOUT_S = 120


@dataclass(frozen=True)
class PageCheck:
    """What the browser measured: images decoded / present, page and window widths (CSS px)."""

    images_ok: int
    images: int
    scroll_width: int
    inner_width: int
    scroll_height: int

    @property
    def problems(self) -> list[str]:
        found = []
        if self.images_ok != self.images:
            found.append(f"{self.images - self.images_ok} of {self.images} image(s) did not load")
        if self.scroll_width > self.inner_width:
            found.append(f"the page is {self.scroll_width} px wide, wider than the "
                         f"{self.inner_width} px window")
        return found


def find_browser() -> Path | None:
    """$GENBENCH_CHROMIUM, else the first Chromium or Chrome on PATH; None when there is none."""
    named = os.environ.get(BROWSER_ENV)
    if named:
        return Path(named) if Path(named).is_file() else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def _run(browser: Path, page: Path, size: tuple[int, int], *extra: str) -> str:
    with tempfile.TemporaryDirectory(prefix="genbench-chromium-") as profile:
        command = [str(browser), "--headless", "--no-sandbox", "--disable-gpu",
                   "--hide-scrollbars", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run",
                   f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", *extra,
                   Path(page).resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S,
                              check=True)
    return done.stdout


def _attribute(dom: str, name: str) -> str:
    match = re.search(rf'<body[^>]*\sdata-{name}="([^"]*)"', dom)
    if match is None:
        raise RuntimeError(f"the page did not report data-{name} (no PAGE_CHECK script, or it "
                           "did not run)")
    return match.group(1)


def check_page(page: Path, browser: Path, size: tuple[int, int] = WINDOW) -> PageCheck:
    """Load `page` (with the PAGE_CHECK script) in headless `browser` at `size` and read back
    what it measured after load."""
    dom = _run(browser, page, size, "--dump-dom")
    ok, _, total = _attribute(dom, "images-ok").partition("/")
    return PageCheck(int(ok), int(total), int(_attribute(dom, "scroll-width")),
                     int(_attribute(dom, "inner-width")), int(_attribute(dom, "scroll-height")))


def screenshot(page: Path, png: Path, browser: Path, width: int = WINDOW[0],
               max_height: int | None = None) -> PageCheck:
    """Write a screenshot of `page` at `width` CSS px to `png`: the full page, or its top
    `max_height` px; returns the check of the page (its height sets the window's)."""
    check = check_page(page, browser, (width, WINDOW[1]))
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    height = check.scroll_height if max_height is None else min(check.scroll_height, max_height)
    _run(browser, page, (width, max(height, 200)), f"--screenshot={png}")
    if not png.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot to {png}")
    return check
