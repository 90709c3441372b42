"""What the browser tests share: Debian's Chromium driven by Playwright, launched once per module.

Imported by tests/test_browser_*.py (pytest puts tests/ on sys.path). Importing it skips the
importing module when Playwright or Chromium is missing (scripts/setup.sh installs both).
"""
from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "ARGS", "playwright_api", "browser"]

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
