"""``layerlab export RUN --format pytorch|weights|onnx|spec -o FILE``. Attach it with ``register(app)``."""
from __future__ import annotations

from typing import Optional

import typer

from . import FORMATS

__all__ = ["register", "export_command"]

_FORMAT_HELP = "; ".join(f"{f.name}: {f.doc}" for f in FORMATS.values())


def export_command(
    run_id: int = typer.Argument(..., help="the run to export (`layerlab runs`)"),
    fmt: str = typer.Option("pytorch", "--format", "-f", help=_FORMAT_HELP),
    out_path: Optional[str] = typer.Option(None, "--output", "-o",
                                           help="the file to write (default: run-ID-NAME with the format's suffix, "
                                                "here); pytorch writes its weights beside it (NAME.safetensors)"),
    db: Optional[str] = typer.Option(None, "--db", envvar="LAYERLAB_DB",
                                     help="store URL or SQLite path (default: ~/.local/share/layerlab/runs.db)"),
) -> None:
    """Take a trained run away: a standalone PyTorch file with its weights, ONNX, or the spec as YAML."""
    from ..cli_support import err, out
    from ..store import Store
    from . import check_format, write_export

    check_format(fmt)  # before the store is opened: a typo answers at once
    paths = write_export(Store(db), run_id, fmt, out_path)
    for path in paths:
        out.print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    if fmt == "pytorch":
        err.print(f"evaluate it with: python {paths[0]} DATA_FOLDER  (needs only torch, safetensors and numpy)")


def register(app: typer.Typer) -> None:
    """Attach ``export`` to the main CLI."""
    app.command("export")(export_command)
