"""Reports: one self-contained HTML page (``html``) and the static figures of sweeps and studies (``figures``)."""
from __future__ import annotations

__all__ = ["write_report", "render_report", "environment"]


def write_report(*args, **kwargs):
    from .html import write_report as _write
    return _write(*args, **kwargs)


def render_report(*args, **kwargs):
    from .html import render_report as _render
    return _render(*args, **kwargs)


def environment(*args, **kwargs):
    from .html import environment as _env
    return _env(*args, **kwargs)
