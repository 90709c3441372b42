"""The web server builds no model and holds no unbounded data.

Before: ``POST /api/predict`` (the builder calls it on every valid edit) built the model inside
the server, so ``fc 1,000,000`` took the server to gigabytes; and the data cache kept its last
three data sets whatever their size. Now a model over ``PARAM_BUDGET`` parameters is refused
(413) before anything is built, any other is built in a spawned prediction worker process, and
the cache is bounded by the bytes of its tensors.
"""
from __future__ import annotations

import gc
import threading
import time

import psutil
import pytest
from fastapi.testclient import TestClient

from layerlab.prepare import prepare_run
from layerlab.server import create_app
from layerlab.server.datacache import DataCache, DataTooLarge, resident_bytes
from layerlab.server.predict import PARAM_BUDGET, predict_here
from layerlab.store import Store

TINY = {"name": "tiny", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 2000, "batch_size": 64}}
HUGE = {**TINY, "model": ["flatten", {"fc": {"units": 1_000_000}}, {"fc": {"units": 10}}]}  # 75 M parameters, 300 MB
UNDER = {**TINY, "model": ["flatten", {"fc": {"units": 60_000}}, {"fc": {"units": 10}}]}   # 4.5 M parameters
MB = 2**20


@pytest.fixture()
def client(tmp_path):
    store = Store(tmp_path / "runs.db")
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


class PeakRSS:
    """The server process's highest RSS while the block runs (sampled every 5 ms), above where it started."""

    def __enter__(self):
        self.start = self.peak = rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        me = psutil.Process()
        while not self._done.wait(0.005):
            self.peak = max(self.peak, me.memory_info().rss)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss())
        self.grown = self.peak - self.start


def prediction_workers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


@pytest.mark.slow  # spawns the prediction worker
def test_predicting_a_huge_model_does_not_grow_the_server(client):
    """Before: the server built fc(1,000,000) for the builder's predictions (+300 MB of weights here)."""
    assert prepare_run(HUGE).check.total_params > PARAM_BUDGET
    client.post("/api/predict", json=TINY)  # warm: imports, the prediction worker, the data cache
    with PeakRSS() as memory:
        resp = client.post("/api/predict", json=HUGE)
    assert resp.status_code == 413, resp.text
    body = resp.json()
    assert body["error"] == "ModelTooLarge" and "75,000,010 parameters" in body["detail"]
    assert "need a run" in body["detail"]
    assert memory.grown < 100 * MB, f"the server grew by {memory.grown / MB:.0f} MB"


@pytest.mark.slow  # spawns the prediction worker
def test_predictions_are_computed_in_a_worker_process_and_match(client):
    with PeakRSS() as memory:
        out = client.post("/api/predict", json=UNDER)
    assert out.status_code == 200, out.text
    assert memory.grown < 100 * MB, f"the server grew by {memory.grown / MB:.0f} MB"
    workers = prediction_workers()
    assert len(workers) == 1, workers
    prepared = prepare_run(UNDER)
    here = predict_here(prepared, DataCache())  # the same seeded weights, built in this process
    got = out.json()["predictions"]
    assert [(p["index"], p["label"], [c for c, _ in p["top"]]) for p in got] == \
        [(p["index"], p["label"], [c for c, _ in p["top"]]) for p in here["predictions"]]
    assert [q for p in got for _, q in p["top"]] == pytest.approx([q for p in here["predictions"] for _, q in p["top"]],
                                                                   abs=1e-5)  # threads may sum in another order
    # A worker that dies is replaced: the next request still gets its answer.
    workers[0].kill()
    workers[0].wait(timeout=10)
    again = client.post("/api/predict", json=TINY)
    assert again.status_code == 200, again.text
    assert [p.pid for p in prediction_workers()] != [workers[0].pid]
    # Errors found in the worker come back with their own type and status.
    missing = client.post("/api/predict", json={**TINY, "data": {"dataset": "digits", "test_size": 5}})
    assert missing.status_code == 200 and len(missing.json()["predictions"]) == 5


@pytest.mark.slow  # spawns the prediction worker
def test_the_prediction_worker_ends_with_the_app(tmp_path):
    store = Store(tmp_path / "runs.db")
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        assert c.post("/api/predict", json=TINY).status_code == 200
        workers = prediction_workers()
        assert workers
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, alive
    store.close()


def _digits(**fields):
    from layerlab.spec import DataSpec
    return DataSpec(dataset="digits", **fields)


def test_data_cache_is_bounded_by_bytes_least_recently_used_first():
    one = resident_bytes(_digits(train_size=400, test_size=100).load(device="cpu"))
    cache = DataCache(size=10, max_bytes=int(2.5 * one))
    a = cache.for_data_spec(_digits(train_size=400, test_size=100))
    cache.for_data_spec(_digits(train_size=400, test_size=100, normalize="0..1"))
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert cache.for_data_spec(_digits(train_size=400, test_size=100)) is a  # used: now the most recent
    cache.for_data_spec(_digits(train_size=400, test_size=100, normalize="none"))  # a third: one must go
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    assert cache.for_data_spec(_digits(train_size=400, test_size=100)) is a  # the least recently used went
    with pytest.raises(DataTooLarge, match=r"more than the server keeps for previews"):
        cache.for_data_spec(_digits())  # the whole set is larger than the whole cache
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes


def test_a_data_set_larger_than_the_cache_is_refused_with_413(client):
    client.app.state.data = DataCache(max_bytes=64 * 1024)
    small = client.get("/api/datasets/digits/stats?train_size=50&test_size=20")
    assert small.status_code == 200, small.text
    big = client.get("/api/datasets/digits/stats")
    assert big.status_code == 413 and "fewer examples" in big.json()["detail"], big.text
    assert client.app.state.data.nbytes <= 64 * 1024


def test_the_default_cache_holds_at_most_512_mib():
    assert DataCache().max_bytes == 512 * MB
    started = time.perf_counter()
    cache = DataCache()
    data = cache.get("digits")
    assert cache.nbytes == resident_bytes(data) > 0
    assert time.perf_counter() - started < 30
