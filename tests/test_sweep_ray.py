"""The Ray executor against a real local Ray instance (about 6 s to start here)."""
from __future__ import annotations

import pytest

from layerlab.store import Store
from layerlab.studies.sweep import sweep

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'layerlab[ray]'")

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a local Ray starts in about 6 s


def test_sweep_on_local_ray_writes_every_trial_to_the_shared_store(tmp_path):
    store = Store(tmp_path / "runs.db")
    result = sweep("toy-linear", ["train.lr=0.001,0.01,0.1"], store=store, ray="auto",
                   overrides=["train.epochs=3"], out_dir=tmp_path)
    assert not ray.is_initialized()  # started and shut down by the sweep
    assert len(result.runs) == 3
    for run_id in result.runs:
        run = store.get_run(run_id)
        assert run["status"] == "finished", run
        assert store.series(run_id, "cost")
        assert run["pid"] is not None
    # the trials ran in Ray worker processes, not in this one
    import os
    assert all(store.get_run(r)["pid"] != os.getpid() for r in result.runs)
    # same specs and seeds: the same numbers as running them here
    inline = sweep("toy-linear", ["train.lr=0.001,0.01,0.1"], store=store, overrides=["train.epochs=3"],
                   out_dir=tmp_path)
    assert [t["test_loss"] for t in inline.numbers["trials"]] == pytest.approx(
        [t["test_loss"] for t in result.numbers["trials"]], rel=1e-5)


def test_missing_ray_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    from layerlab.errors import LayerlabError
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    store = Store(tmp_path / "runs.db")
    with pytest.raises(LayerlabError, match="pip install"):
        sweep("toy-linear", ["train.lr=0.001,0.01"], store=store, ray="auto", overrides=["train.epochs=1"])
    assert store.list_runs() == []  # refused before anything was queued
