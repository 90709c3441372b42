"""Sweeps: axis parsing, grid and random expansion, execution into the store, lr-find, the CLI."""
from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from layerlab.cli_support import LabTyper
from layerlab.errors import SpecError
from layerlab.store import Store
from layerlab.studies.axes import grid, parse_axes, parse_axis, sample, value_text
from layerlab.studies.cli import register
from layerlab.studies.record import STUDY_ARTIFACT, find_records, load_record, members
from layerlab.studies.sweep import sweep

SMALL = ["data.train_size=1000", "data.test_size=300"]


# ------------------------------------------------------------------ axes


def test_axis_values_are_yaml_and_numbers():
    a = parse_axis("train.lr=1e-4,1e-3, 0.1,10")
    assert a.values == (1e-4, 1e-3, 0.1, 10) and all(isinstance(v, (int, float)) for v in a.values)
    assert a.log  # a learning rate over decades
    assert parse_axis("train.optimizer=sgd,adam").values == ("sgd", "adam")
    assert parse_axis("model[0].reshape.shape=[1,4],[4,1]").values == ([1, 4], [4, 1])
    assert parse_axis("model=preset/linear,preset/fc100-relu-fc10").values == ("preset/linear",
                                                                               "preset/fc100-relu-fc10")
    r = parse_axis("train.lr=1e-5:1")
    assert r.is_range and (r.low, r.high) == (1e-5, 1.0) and not r.integer
    assert parse_axis("train.batch_size=16:256").integer


@pytest.mark.parametrize("text", ["train.lr", "train.lr=", "train.lr=1,,2", "train.lr=1:1", "train.lr[x]=1,2",
                                  "train.lr=0.1,0.1"])
def test_bad_axes_are_spec_errors(text):
    with pytest.raises(SpecError):
        parse_axis(text)


def test_grid_is_the_cartesian_product_first_axis_slowest():
    axes = parse_axes(["train.lr=0.1,1", "train.optimizer=sgd,adam,momentum"])
    g = grid(axes)
    assert len(g) == 6
    assert g[0] == {"train.lr": 0.1, "train.optimizer": "sgd"}
    assert g[1] == {"train.lr": 0.1, "train.optimizer": "adam"}
    assert g[3] == {"train.lr": 1, "train.optimizer": "sgd"}
    assert grid(axes) == g  # deterministic


def test_grid_refuses_ranges_and_repeated_fields():
    with pytest.raises(SpecError, match="--random"):
        grid(parse_axes(["train.lr=1e-4:1"]))
    with pytest.raises(SpecError, match="twice"):
        parse_axes(["train.lr=1,2", "train.lr=3,4"])


def test_random_sampling_is_seeded_log_uniform_and_within_bounds():
    axes = parse_axes(["train.lr=1e-5:1", "train.batch_size=16:256", "train.optimizer=sgd,adam"])
    a = sample(axes, 200, seed=3)
    assert a == sample(axes, 200, seed=3)
    assert a != sample(axes, 200, seed=4)
    lrs = [t["train.lr"] for t in a]
    assert all(1e-5 <= v <= 1 for v in lrs)
    # log-uniform: about half of the draws fall below the geometric midpoint 10^-2.5
    below = sum(v < 10 ** -2.5 for v in lrs) / len(lrs)
    assert 0.35 < below < 0.65
    assert all(isinstance(t["train.batch_size"], int) and 16 <= t["train.batch_size"] <= 256 for t in a)
    assert {t["train.optimizer"] for t in a} == {"sgd", "adam"}
    with pytest.raises(SpecError):
        sample(axes, 0)


def test_value_text():
    assert value_text("preset/linear") == "linear"
    assert value_text(0.001) == "0.001"
    assert value_text([1, 4]) == "[1, 4]"


# ------------------------------------------------------------------ sweeps into the store


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep")
    store = Store(path / "runs.db")
    result = sweep("fc100-relu-fc10", ["train.lr=1e-3,0.1,10"], store=store, overrides=SMALL, out_dir=path)
    return store, result


def test_sweep_records_every_trial_and_the_diverged_one(lr_sweep):
    store, result = lr_sweep
    assert len(result.runs) == 3
    trials = result.numbers["trials"]
    assert [t["values"]["train.lr"] for t in trials] == [1e-3, 0.1, 10]
    statuses = {t["values"]["train.lr"]: t["status"] for t in trials}
    assert statuses[0.1] == "finished" and statuses[10] == "diverged"
    diverged = store.get_run(result.numbers["diverged"][0])
    assert diverged["status"] == "diverged" and "learning rate" in diverged["diagnosis"]
    assert result.numbers["best"]["values"]["train.lr"] == 0.1
    # every trial is an ordinary run of the store, named and tagged as a member
    for run_id in result.runs:
        run = store.get_run(run_id)
        assert run["name"].startswith(f"sweep {result.record_id} #")
        tag = store.events(run_id, kinds=["study"])[0]["payload"]
        assert tag["record"] == result.record_id
        assert store.series(run_id, "cost"), "trial metrics are in the store"
    assert [m["run_id"] for m in members(store, result.record_id)] == result.runs


def test_sweep_table_and_figures(lr_sweep):
    store, result = lr_sweep
    table = result.tables[0]
    assert table.columns[:3] == ["run", "lr", "status"]
    row = next(r for r in table.rows if r[2] == "diverged")
    assert "learning rate" in row[-1]  # the diagnosis is in the table
    assert set(result.figures) == {"curves", "final"}
    for path in result.figures.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_record_is_in_the_store(lr_sweep):
    store, result = lr_sweep
    record = store.get_run(result.record_id)
    assert record["status"] == "finished" and record["model"] == "sweep"
    assert find_records(store, kind="sweep")[0]["id"] == result.record_id
    data = load_record(store, result.record_id)
    assert data["runs"] == result.runs and set(data["figure_bytes"]) == {"curves", "final"}
    assert any(a["name"] == STUDY_ARTIFACT for a in store.list_artifacts(result.record_id))


def test_sweep_validates_every_combination_before_running(tmp_path):
    store = Store(tmp_path / "runs.db")
    with pytest.raises(SpecError, match="units=0"):
        sweep("fc100-relu-fc10", ["model[1].fc.units=10,0"], store=store, overrides=SMALL)
    assert store.list_runs() == []  # nothing was created


@pytest.mark.slow  # spawns a process pool (about 3 s)
def test_random_sweep_over_presets_in_a_process_pool(tmp_path):
    store = Store(tmp_path / "runs.db")
    result = sweep("toy-linear", ["model=preset/toy-linear,preset/toy-convnet", "train.lr=1e-3:1e-1"], store=store,
                   random=2, seed=1, workers=2, overrides=["train.epochs=2"], out_dir=tmp_path)
    assert len(result.runs) == 2
    assert all(store.get_run(r)["status"] == "finished" for r in result.runs)
    expected = sample(parse_axes(["model=preset/toy-linear,preset/toy-convnet", "train.lr=1e-3:1e-1"]), 2, seed=1)
    assert [t["values"] for t in result.numbers["trials"]] == expected
    for run_id, values in zip(result.runs, expected):
        spec = store.get_run(run_id)["spec"]
        assert math.isclose(spec["train"]["lr"], values["train.lr"])
        assert (spec["model"][0] == "reshape" or "reshape" in spec["model"][0]) == (
            values["model"] == "preset/toy-convnet")


# ------------------------------------------------------------------ lr-find


def test_lr_find_suggests_a_rate_and_records_it(tmp_path):
    from layerlab.studies.lr_find import lr_find, suggest
    store = Store(tmp_path / "runs.db")
    result = lr_find("fc100-relu-fc10", store=store, overrides=SMALL, steps=60, out_dir=tmp_path)
    n = result.numbers
    assert 1e-7 <= n["suggested"] <= 10 and n["steepest"] == n["suggested"]
    assert math.isclose(n["min_over_10"], n["min_lr"] / 10)
    assert store.get_run(result.record_id)["model"] == "lr-find"
    lrs = [v for _, v in store.series(result.record_id, "lr")]
    assert len(lrs) == n["updates"] and lrs == sorted(lrs) and math.isclose(lrs[0], 1e-7)
    # the steepest descent of a known curve
    lr = [10 ** (i / 10 - 7) for i in range(80)]
    loss = [2.0 - math.tanh((math.log10(x) + 2)) for x in lr]  # falls fastest at 1e-2
    assert math.isclose(suggest(lr, loss)["steepest"], 1e-2, rel_tol=0.3)


# ------------------------------------------------------------------ CLI


@pytest.fixture()
def cli():
    app = LabTyper(help="test app")

    @app.command()
    def version() -> None:  # a second command so Typer keeps sub-command names
        """unused"""

    register(app)
    return app


def test_cli_sweep_writes_a_table_and_a_report(cli, tmp_path):
    db = str(tmp_path / "runs.db")
    result = CliRunner().invoke(cli, ["sweep", "toy-linear", "--set", "train.lr=0.001,0.01", "--set",
                                      "train.epochs=2", "--db", db, "--out", str(tmp_path / "figs"),
                                      "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Trials" in result.output and "finished" in result.output
    assert (tmp_path / "r.html").stat().st_size > 10_000
    runs = Store(db).list_runs()
    assert len(runs) == 3  # two trials and the record; train.epochs=2 was an override, not an axis
    assert all(r["spec"]["train"]["epochs"] == 2 for r in runs if r["model"] != "sweep")


@pytest.mark.parametrize("args", [["sweep", "toy-linear", "--set", "train.lr=1e-4:1"],
                                  ["sweep", "toy-linear", "--set", "train.lr=0.1"],
                                  ["sweep", "toy-linear", "--set", "train.lrr=0.1,1"],
                                  ["sweep", "toy-linear", "--set", "train.lr=0.1,1", "--ray", "auto",
                                   "--workers", "0"]])
def test_cli_sweep_user_errors_exit_2(cli, tmp_path, args):
    result = CliRunner().invoke(cli, [*args, "--db", str(tmp_path / "runs.db")])
    assert result.exit_code == 2, result.output


def test_sweep_values_are_read_under_the_spec_limits():
    """--set values of a sweep go through the same limited YAML reader as --set overrides."""
    with pytest.raises(SpecError, match="train.lr: cannot read the value"):  # before: a 200-digit int
        parse_axis("train.lr=" + "9" * 200)
