"""A time budget: ``train.minutes`` / ``layerlab train --time 90s`` ("train about 2 minutes").

It wins over ``train.epochs``; with ``train.examples`` the run ends at whichever comes first.
The run stops within one evaluation interval of its limit (the clock is read after every
update), evaluates the full test split at the end as usual, and says why it ended.
"""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from layerlab.cli import app
from layerlab.durations import parse_minutes
from layerlab.errors import SpecError
from layerlab.spec import load_spec
from layerlab.train import train
from layerlab.train.plan import MIN_LOG_EVERY, make_plan

from train_helpers import MLP, digits, store  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

LIMIT_S = 2.4  # train.minutes = 0.04


def _spec(**train_fields):
    return load_spec({"name": "timed", "data": {"dataset": "digits"}, "model": MLP,
                      "train": {"batch_size": 32, **train_fields}})


def test_durations_are_read_in_one_place():
    assert [parse_minutes(v) for v in ("90s", "2m", "1.5m", "1.5 min", "1h", 3, "0.5")] == [1.5, 2, 1.5, 1.5, 60, 3, 0.5]
    assert _spec(minutes="90s").train.minutes == 1.5  # the spec field reads the same texts
    with pytest.raises(SpecError) as exc:
        _spec(minutes="2 fortnights")
    assert "train.minutes: must be a number of minutes or a duration such as 90s, 2m" in str(exc.value)
    with pytest.raises(SpecError, match="train.minutes"):
        _spec(minutes=0)
    with pytest.raises(SpecError, match="train.minutes: must be a finite duration, got an integer of 401 digits"):
        _spec(minutes=10**400)  # beyond any float: a 400, not an OverflowError
    with pytest.raises(SpecError, match="cosine schedule needs the run's length"):
        _spec(minutes=1, schedule="cosine")


def test_a_time_budget_wins_over_epochs_and_has_no_length_until_timed():
    plan = make_plan(_spec(minutes=2, epochs=1).train, 1438)
    assert plan.by_time and plan.seconds == 120 and plan.log_every == MIN_LOG_EVERY
    est = plan.estimated(update_s=0.001)  # 120 s x 0.9 at 1 ms an update, 32 examples each
    assert not est.by_time and est.total_examples == 108_000 * 32
    both = make_plan(_spec(minutes=2, examples=500).train, 1438)
    assert not both.by_time and both.total_examples == 500 and both.seconds == 120


def test_a_time_budget_stops_within_one_evaluation_interval_of_its_limit(store, digits):  # noqa: F811
    every = 1000
    r = train(_spec(minutes=LIMIT_S / 60, eval_every=every), store=store, data=digits)
    assert r.status == "finished" and r.stop_reason == "time budget" and r.minutes == pytest.approx(LIMIT_S / 60)
    assert r.examples > 2 * len(digits.train)  # the default epochs: 1 did not end it
    assert r.total_examples == r.examples  # what the time paid for
    started = store.get_run(r.run_id)["started_at"]
    cost = store.metrics(r.run_id, names=["cost"])
    before = max(m["examples"] for m in cost if m["wall_time"] <= started + LIMIT_S)
    assert 0 < r.examples - before <= every  # trained on for less than one evaluation interval past the limit
    assert LIMIT_S <= r.elapsed_s < LIMIT_S + 5.0  # the end: full evaluation and inference speed (~0.6 s)
    full = store.metrics(r.run_id, names=["test_accuracy"])
    assert full[-1]["step"] == r.steps and full[-1]["value"] == r.test_accuracy  # the full split at the end


def test_with_examples_whichever_comes_first(store, digits):  # noqa: F811
    r = train(_spec(minutes=10, examples=500), store=store, data=digits)
    assert r.status == "finished" and r.examples == r.total_examples == 500 and r.stop_reason is None


@pytest.mark.slow  # a whole CLI process (~3.5 s); the budget itself is tested in-process above
def test_cli_time_option(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    result = CliRunner().invoke(app, ["train", "fc10-relu-fc10", "--dataset", "digits", "--time", "2s", "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["minutes"] == pytest.approx(2 / 60) and r["stop_reason"] == "time budget"
    assert r["eval_every"] is not None and r["eval_every"] < r["examples"]  # live points, spaced by the estimate
    table = CliRunner().invoke(app, ["train", "fc10-relu-fc10", "--dataset", "digits", "--time", "1.5s"])
    assert "ended by" in table.stdout and "time budget" in table.stdout and "1.5 s" in table.stdout
    bad = CliRunner().invoke(app, ["train", "fc10-relu-fc10", "--dataset", "digits", "--time", "soon"])
    assert bad.exit_code == 2 and "train.minutes" in bad.output
