"""A real headless browser for tests of pages distillc renders (the HTML report, the viewer).

The ``browser`` fixture drives the system chromium through its chromedriver (Debian's ``chromium`` and
``chromium-driver``; ``.ci/setup`` installs them where apt works). Where either is missing the tests
that use it are skipped, naming what is missing. ``Page`` loads a URL, waits for the document to be
complete, and returns the console messages the page produced, so a test can insist on none at error
level; ``shoot`` keeps a screenshot under ``tests/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    driver: object
    console: list[dict] = field(default_factory=list)

    def open(self, url: str, timeout: float = 30.0) -> float:
        """Load ``url`` and wait until the document is complete; the seconds it took."""
        start = time.perf_counter()
        self.driver.get(url)
        deadline = start + timeout
        while self.driver.execute_script("return document.readyState") != "complete":
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {timeout} s")
            time.sleep(0.05)
        took = time.perf_counter() - start
        self.console.extend(self.driver.get_log("browser"))
        return took

    def errors(self) -> list[str]:
        """Console messages at error level (script errors, failed resources, console.error)."""
        return [m["message"] for m in self.console if m.get("level") == "SEVERE"]

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def text(self) -> str:
        return self.driver.execute_script("return document.body ? document.body.innerText : ''")

    def shoot(self, name: str) -> Path:
        """Keep a full-page screenshot as a test artefact: ``tests/artifacts/NAME.png``."""
        ARTIFACTS.mkdir(exist_ok=True)
        height = self.driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        self.driver.set_window_size(1280, min(max(int(height), 800), 12000))
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def chart_sizes(page: Page) -> list[dict]:
    """Every <svg> and <canvas> on the page with its drawn size and how many shapes it holds."""
    return page.js("""
        const out = [];
        for (const el of document.querySelectorAll('svg, canvas')) {
          if (el.tagName.toLowerCase() === 'svg' && el.parentElement.closest('svg')) continue;
          const r = el.getBoundingClientRect();
          const shapes = el.tagName.toLowerCase() === 'svg'
            ? el.querySelectorAll('path, rect, circle, line, text, polygon, polyline').length : -1;
          out.push({tag: el.tagName.toLowerCase(), width: r.width, height: r.height, shapes: shapes,
                    id: el.id || (el.closest('[id]') || {}).id || ''});
        }
        return out;""")


class NoBrowser(Exception):
    """No headless chromium here (the message says what is missing)."""


def start_chromium() -> Page:
    """A headless chromium driven through its chromedriver, as a :class:`Page`; call
    ``page.driver.quit()`` when done. Raises :class:`NoBrowser` naming what is missing."""
    chromium = os.environ.get("DISTILLC_CHROMIUM") or _find("chromium", "chromium-browser", "google-chrome")
    driver_bin = os.environ.get("DISTILLC_CHROMEDRIVER") or _find("chromedriver")
    if not chromium or not driver_bin:
        raise NoBrowser("no headless browser: install Debian's chromium and chromium-driver "
                        f"(found chromium={chromium or 'missing'}, chromedriver={driver_bin or 'missing'})")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise NoBrowser("selenium is not installed (the dev extra installs it)") from None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return Page(webdriver.Chrome(service=Service(driver_bin), options=options))
    except Exception as exc:  # a browser that cannot start here is a reason to skip, with the reason
        raise NoBrowser(f"chromium did not start: {str(exc).splitlines()[0]}") from None


@pytest.fixture
def browser():
    try:
        page = start_chromium()
    except NoBrowser as exc:
        pytest.skip(str(exc))
    try:
        yield page
    finally:
        page.driver.quit()
