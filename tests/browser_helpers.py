"""What the browser tests share: Debian's Chromium driven by Playwright, launched once per module.

Imported by tests/test_browser_*.py (pytest puts tests/ on sys.path). Importing it skips the
importing module when Playwright or Chromium is missing (scripts/setup.sh installs both).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "ARGS", "playwright_api", "browser", "watched_page"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - setup.sh installs it
    pytest.skip(f"{CHROMIUM} is not installed (scripts/setup.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@contextmanager
def watched_page(browser, *, width: int = 1440, height: int = 1000, timeout_ms: int = 20_000):
    """A page in a fresh context that fails the test, on close, if the page threw or logged an error."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(timeout_ms)
    yield pg
    context.close()
    assert not errors, errors
