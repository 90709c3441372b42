"""The ``layerlab`` command line: check, summarise and list models, data sets and runs.

Each command is a thin view over the library: it loads, calls, and formats. User errors
exit with code 2 and the library's message (see ``cli_support``).
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from .budget import format_bytes, memory_limit
from .cli_support import LabTyper, err, escape_markup, out, print_json, print_problems, report_error
from .errors import LayerlabError, spec_error
from .init import INITIALISERS
from .layers import catalogue_json, CATALOGUE
from .presets import preset_description, preset_names
from .shapes import CheckResult, check
from .spec import spec_data

__all__ = ["app", "main"]

app = LabTyper(help="layerlab: build, check, train and compare small neural networks.")

SpecArg = typer.Argument(..., help="a spec file (YAML/JSON) or a preset name (see `layerlab presets`)")
DatasetOpt = typer.Option(None, "--dataset", "-d", help="check against this data set instead of the spec's")
JsonOpt = typer.Option(False, "--json", help="print JSON instead of a table")
SetOpt = typer.Option(None, "--set", help="override a spec field: key=value (repeatable), e.g. train.lr=0.01")


def _shape(shape: list[int] | None) -> str:
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape)


def _check_source(source: str, dataset: str | None, overrides: list[str] | None, *,
                  need_data: bool = True) -> CheckResult:
    """The verdict ``train`` would act on (``prepare.inspect_run``): fields, shapes, optimiser, data."""
    from .prepare import inspect_run
    return inspect_run(source, overrides, dataset=dataset, need_data=need_data)[1]


def _esc(text: str) -> str:
    """Text shown as it is: rich would read ``[low, high]`` as markup and print nothing of it."""
    return escape_markup(text)


@app.command()
def validate(
    file: str = SpecArg,
    dataset: Optional[str] = DatasetOpt,
    json_out: bool = JsonOpt,
    set_: Optional[list[str]] = SetOpt,
) -> None:
    """Check a spec: exit 0 when it is valid, 2 (listing every problem and its fix) when not."""
    result = _check_source(file, dataset, set_)
    if json_out:
        print_json({"valid": result.valid, "problems": [p.to_dict() for p in result.problems],
                    "warnings": [w.to_dict() for w in result.warnings]})
    else:
        print_problems(result.problems, result.warnings)
        if result.valid:
            out.print(f"[green]✓[/] valid: {len(result.rows)} layers, {result.total_params:,} parameters, "
                      f"{_shape(result.input_shape)} → {_shape(result.output_shape)} ({result.loss})")
        else:
            err.print(f"[bold red]invalid model[/]: {len(result.problems)} problem(s)")
    raise typer.Exit(0 if result.valid else 2)


@app.command()
def summary(
    source: str = SpecArg,
    dataset: Optional[str] = DatasetOpt,
    json_out: bool = JsonOpt,
    set_: Optional[list[str]] = SetOpt,
) -> None:
    """A Keras-style table: each layer's input and output shape, parameters and multiply-adds."""
    result = _check_source(source, dataset, set_, need_data=False)  # a table of shapes needs no data
    if not result.valid:
        raise spec_error(result.problems, result=result)
    if json_out:
        data = result.to_json()
        print_json({"layers": data["layers"], "total_params": result.total_params,
                    "trainable_params": result.trainable_params, "total_mult_adds": result.total_mult_adds,
                    "dataset": result.dataset, "input_shape": result.input_shape,
                    "output_shape": result.output_shape, "task": result.task, "loss": result.loss,
                    "memory": result.memory, "warnings": data["warnings"]})
        return
    name = spec_data(source).get("name", source)
    out.print(f"[bold]Model: {_esc(str(name))}[/]  ·  data: {result.dataset} ({_shape(result.input_shape)})  ·  "
              f"task: {result.task}  ·  loss: {result.loss}")
    table = Table()
    batch = result.memory["batch_size"]
    for col, justify in (("#", "right"), ("layer", "left"), ("input", "right"), ("output", "right"),
                         ("params", "right"), ("mult-adds", "right"), (f"memory (batch {batch})", "right")):
        table.add_column(col, justify=justify)
    for row in result.rows:
        table.add_row(str(row.index + 1), _layer_text(row.kind, row.config), _shape(row.input_shape),
                      _shape(row.output_shape), f"{row.params:,}", f"{row.mult_adds:,}", format_bytes(row.memory))
    out.print(table)
    out.print(f"Total params: {result.total_params:,}")
    out.print(f"Trainable params: {result.trainable_params:,}")
    out.print(f"Non-trainable params: {result.total_params - result.trainable_params:,}")
    out.print(f"Mult-adds per example: {result.total_mult_adds:,}")
    m = result.memory
    out.print(f"Training memory (batch {batch}): about {format_bytes(m['total'])} of a "
              f"{format_bytes(memory_limit())} budget (LAYERLAB_MAX_MEMORY)")
    out.print(f"  weights {format_bytes(m['weights'])}, gradients {format_bytes(m['gradients'])}, optimiser state "
              f"{format_bytes(m['optimizer_state'])}, activations {format_bytes(m['activations'])}")
    print_problems([], result.warnings)


# Parameters a reader always wants to see, even at their defaults.
_ALWAYS_SHOWN = {"fc": ("units",), "conv2d": ("field", "depth"), "conv1d": ("field", "depth"),
                 "maxpool2d": ("field", "stride"), "maxpool1d": ("field", "stride"), "avgpool2d": ("field", "stride"),
                 "dropout": ("rate",), "reshape": ("shape",)}


def _layer_text(kind: str, config: dict) -> str:
    defaults = CATALOGUE[kind].defaults()
    shown = {k: v for k, v in config.items()
             if v is not None and (v != defaults.get(k) or k in _ALWAYS_SHOWN.get(kind, ()))}
    args = ", ".join(f"{k}={v}" for k, v in shown.items())
    return f"{kind}({args})" if args else kind


@app.command()
def layers(json_out: bool = JsonOpt,
           markdown: bool = typer.Option(False, "--markdown", help="print the catalogue as Markdown (docs/layers.md)")) -> None:
    """The layer catalogue: every kind, its parameters with defaults and ranges, and what it does."""
    if json_out:
        print_json(catalogue_json())
        return
    if markdown:
        from .docs import catalogue_markdown
        typer.echo(catalogue_markdown(), nl=False)
        return
    table = Table(title="Layer catalogue", title_justify="left", show_lines=True)
    table.add_column("kind", style="bold")
    table.add_column("parameters (default, range)")
    table.add_column("what it does")
    for entry in catalogue_json():
        params = "\n".join(_esc(f"{p['name']}={p['default']!r}") + _range(p) for p in entry["params"]) or "—"
        kind = entry["kind"] + (f"\n(alias {', '.join(entry['aliases'])})" if entry["aliases"] else "")
        table.add_row(_esc(kind), params, _esc(entry["doc"]))
    out.print(table)


def _range(p: dict) -> str:
    bits = []
    for key, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if key in p:
            bits.append(f"{sym} {p[key]}")
    if "choices" in p:
        bits.append(" | ".join(map(str, p["choices"])))
    return f"  [dim]({_esc(', '.join(bits))})[/]" if bits else ""


@app.command()
def presets(json_out: bool = JsonOpt) -> None:
    """Named models: the Model Builder's, the practicum's and the Keras examples'."""
    rows = []
    for name in preset_names():
        result = check(name)
        rows.append({"name": name, "description": preset_description(name),
                     "dataset": result.dataset, "layers": len(result.rows),
                     "params": result.total_params, "valid": result.valid})
    if json_out:
        print_json(rows)
        return
    table = Table(title="Presets (use as `layerlab train NAME` or `model: preset/NAME`)", title_justify="left")
    for col in ("name", "data set", "layers", "params", "description"):
        table.add_column(col, justify="right" if col in ("layers", "params") else "left")
    for r in rows:
        table.add_row(r["name"], r["dataset"], str(r["layers"]), f"{r['params']:,}", _esc(r["description"]))
    out.print(table)


@app.command()
def inits(json_out: bool = JsonOpt) -> None:
    """Weight initialisers for `train.init` or a layer's `init`."""
    rows = [i.to_json() for i in INITIALISERS.values()]
    if json_out:
        print_json(rows)
        return
    table = Table(title="Initialisers", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("parameters")
    table.add_column("what it does")
    for r in rows:
        table.add_row(r["name"], _esc(", ".join(f"{p['name']}={p['default']!r}" for p in r["params"]) or "—"),
                      _esc(r["doc"]))
    out.print(table)


from .cli_runs import register as _register_runs  # noqa: E402  (commands attach to `app`)

_register_runs(app)

from .server.cli import register as _register_serve  # noqa: E402
from .studies.cli import register as _register_studies  # noqa: E402
from .export.cli import register as _register_export  # noqa: E402

from .data.cli import app as _data_app  # noqa: E402

_register_serve(app)
_register_studies(app)
_register_export(app)
app.add_typer(_data_app, name="data", help="Data sets: list, show statistics and sample grids, fetch.")


def main() -> None:
    """Console entry point: user errors from any sub-app exit 2 with their message."""
    try:
        app()
    except LayerlabError as exc:
        report_error(exc)
        raise SystemExit(exc.exit_code) from None
