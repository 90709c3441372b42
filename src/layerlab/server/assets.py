"""The browser UI's files: a fixed table built at start-up, served under one hashed prefix.

Every file under ``static/`` plus plotly's bundled ``plotly.min.js`` (from the installed
``plotly`` package, never copied into the repository) is listed once, with its media type,
and addressed as ``/static/<hash>/<path>``. The hash covers every file's bytes, so a
changed file gets a new URL and the old one can be cached forever. A client's path is only
ever a key into this table, never joined onto a directory.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import LayerlabError

__all__ = ["Assets", "load_assets", "PLOTLY_PATH"]

STATIC_DIR = Path(__file__).parent / "static"
PLOTLY_PATH = "vendor/plotly.min.js"

_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".ico": "image/x-icon", ".json": "application/json"}


@dataclass(frozen=True)
class Assets:
    version: str                      # content hash, the URL prefix's second part
    files: dict[str, tuple[Path, str]]  # "js/main.js" -> (file, media type)
    index_html: str                   # the one base page, with the prefix filled in

    @property
    def prefix(self) -> str:
        return f"/static/{self.version}"


def plotly_js() -> Path:
    """plotly.min.js as bundled with the installed plotly package."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        raise LayerlabError("the plotly package is not installed; `pip install plotly`") from None
    if not path.is_file():
        raise LayerlabError(f"plotly.min.js is missing from the plotly package (looked at {path})")
    return path


def load_assets() -> Assets:
    files: dict[str, tuple[Path, str]] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in _TYPES and path.name != "index.html":
            files[path.relative_to(STATIC_DIR).as_posix()] = (path, _TYPES[path.suffix])
    files[PLOTLY_PATH] = (plotly_js(), _TYPES[".js"])
    digest = hashlib.sha256()
    for key, (path, _) in sorted(files.items()):
        digest.update(key.encode())
        digest.update(path.read_bytes() if key != PLOTLY_PATH else str(path.stat().st_size).encode())
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    digest.update(page.encode())
    version = digest.hexdigest()[:12]
    page = page.replace("{{static}}", f"/static/{version}")
    return Assets(version=version, files=files, index_html=page)
