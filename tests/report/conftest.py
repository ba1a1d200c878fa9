"""Fixtures for the report tests: synthetic runs and a headless Debian Chromium.

The browser is Debian's /usr/bin/chromium driven by Playwright (never a downloaded browser),
started once per session with a fresh profile; every page records console errors and
uncaught exceptions so tests can assert there are none. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "report"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


class Page:
    """A browser tab that remembers what went wrong in it."""

    def __init__(self, page: Any):
        self.page = page
        page.set_default_timeout(5000)  # a missing element fails fast
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: Path | str) -> Any:
        url = path if isinstance(path, str) else path.resolve().as_uri()
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        return self.page

    def screenshot(self, name: str, full_page: bool = True, selector: str | None = None) -> Path:
        """Keep a picture of the page (or of one element) under test-artifacts/report/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        out = ARTIFACTS / f"{name}.png"
        if selector:
            self.page.locator(selector).first.screenshot(path=str(out))
        else:
            self.page.screenshot(path=str(out), full_page=full_page)
        return out


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="raftlab-chromium-")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield ctx
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(browser_context: Any) -> Iterator[Page]:
    page = browser_context.new_page()
    try:
        yield Page(page)
    finally:
        page.close()
