"""Checkpoints, and resuming a run whose process was killed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
import torch

from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import CHECKPOINT_ARTIFACT, resume, train
from layerlab.train.checkpoint import Checkpoint, pack_checkpoint, unpack_checkpoint


pytestmark = pytest.mark.usefixtures("one_thread")


TIMING = {"examples_per_sec", "inferences_per_sec", "inferences_per_sec_b1", "latency_ms_b1"}
SPEC = {"name": "resume-me", "data": {"dataset": "digits"},
        "model": ["flatten", {"fc": {"units": 32}}, "relu", {"dropout": {"rate": 0.1}}, {"fc": {"units": 10}}],
        "train": {"optimizer": "adam", "lr": 0.003, "epochs": 60, "batch_size": 32, "seed": 3}}

SCRIPT = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(1)  # as the test process (see _one_thread)
    from layerlab.spec import load_spec
    from layerlab.store import Store
    from layerlab.train import record, train
    import json
    # Write metric rows far more often than checkpoints, so that rows beyond the last
    # checkpoint are in the store when the process is killed (the case resume must not duplicate).
    init = record.Recorder.__init__
    def fast_flush(self, *a, **kw):
        init(self, *a, **kw)
        self.flush_every = 0.01
    record.Recorder.__init__ = fast_flush
    train(load_spec(json.loads(sys.argv[2])), store=Store(sys.argv[1]), checkpoint_every=0.5)
""")


def test_checkpoint_round_trip():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    data = pack_checkpoint(Checkpoint(model.state_dict(), opt.state_dict(), {"step": 7, "history": [{"a": 1.5}]},
                                      {"data": gen.get_state()}))
    back = unpack_checkpoint(data)
    assert back.position == {"step": 7, "history": [{"a": 1.5}]}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.model[k], v)
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(back.optimizer)
    assert fresh.param_groups[0]["lr"] == 0.01
    torch.testing.assert_close(fresh.state[model[0].weight]["exp_avg"], opt.state[model[0].weight]["exp_avg"])
    assert torch.equal(back.rng["data"], gen.get_state())
    assert b"pickle" not in data[:64]  # a safetensors file: 8-byte header length, then JSON


def _rows(store, run_id):
    return [(m["name"], m["step"], m["examples"], m["value"]) for m in store.metrics(run_id)
            if m["name"] not in TIMING]


def _checkpoint_step(store, run_id) -> int:
    try:
        return unpack_checkpoint(store.get_artifact(run_id, CHECKPOINT_ARTIFACT)).position["step"]
    except Exception:  # noqa: BLE001 — not written yet
        return -1


@pytest.mark.slow  # a training subprocess, killed and resumed (about 4 s)
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    import json
    db = tmp_path / "runs.db"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(db), json.dumps(SPEC)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        store = Store(db)
        run_id, step = None, -1
        while time.monotonic() < deadline and proc.poll() is None:
            runs = store.list_runs() if db.exists() else []
            if runs:
                run_id = runs[0]["id"]
                step = _checkpoint_step(store, run_id)
                if step > 0:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert step > 0, "no checkpoint after step 0 appeared"
        while proc.poll() is None and max(r["step"] for r in store.metrics(run_id)) <= step:
            time.sleep(0.01)  # until rows beyond that checkpoint are stored
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_id in store.mark_interrupted()
    assert store.get_run(run_id)["status"] == "interrupted"
    before = store.metrics(run_id)
    ckpt_step = _checkpoint_step(store, run_id)
    assert ckpt_step > 0 and max(r["step"] for r in before) > ckpt_step  # rows the resume will pass again

    results = resume(run_id, store=store)
    assert results.status == store.get_run(run_id)["status"] == "finished"
    after = store.metrics(run_id)
    # rows written before the kill are all still there, unchanged, in their place
    assert after[:len(before)] == before
    # and no (metric, step) appears twice
    counts = Counter((m["name"], m["step"]) for m in after)
    assert max(counts.values()) == 1, [k for k, c in counts.items() if c > 1][:5]
    steps = [e["payload"]["step"] for e in store.events(run_id, kinds=["prediction"])]
    assert len(steps) == len(set(steps))

    # The resumed run equals an uninterrupted one: same rows, same values, same results.
    reference = train(load_spec(SPEC), store=store)
    assert _rows(store, run_id) == _rows(store, reference.run_id)
    assert results.test_accuracy == reference.test_accuracy
    assert results.history == reference.history
    assert results.examples == reference.examples == 60 * 1438


def test_only_interrupted_or_stopped_runs_resume(tmp_path):
    from layerlab.errors import StoreError
    store = Store(tmp_path / "runs.db")
    spec = dict(SPEC, train=dict(SPEC["train"], epochs=0.5))
    results = train(load_spec(spec), store=store)
    with pytest.raises(StoreError, match="finished"):
        resume(results.run_id, store=store)


def test_a_stopped_run_resumes_to_the_end(tmp_path):
    import threading
    store = Store(tmp_path / "runs.db")
    stop = threading.Event()
    spec = dict(SPEC, train=dict(SPEC["train"], epochs=3))

    def on_event(e):
        if e["type"] == "progress" and e["examples"] >= 1500:
            stop.set()

    first = train(load_spec(spec), store=store, stop_event=stop, on_event=on_event)
    assert first.status == "stopped"
    results = resume(first.run_id, store=store)
    assert results.status == "finished" and results.examples == 3 * 1438
    reference = train(load_spec(spec), store=store)
    assert results.history == reference.history  # the stop's partial epoch row is not kept


def test_a_diagnosis_found_before_a_stop_survives_the_resume(tmp_path):
    import threading
    store = Store(tmp_path / "runs.db")
    stop = threading.Event()
    spec = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 10}}],
            "train": {"init": "zeros", "epochs": 2, "batch_size": 32}}
    first = train(load_spec(spec), store=store, stop_event=stop,
                  on_event=lambda e: stop.set() if e["type"] == "diagnosis" else None)
    assert first.status == "stopped" and "all weights start at zero" in first.diagnosis
    results = resume(first.run_id, store=store)
    assert results.status == "finished" and results.diagnosis == first.diagnosis
    assert [e["payload"]["kind"] for e in store.events(first.run_id, kinds=["diagnosis"])] == ["zero_init"]
