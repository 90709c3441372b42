"""Predictions of a model's random initial weights, so the builder shows them before training.

The model is built exactly as the trainer builds it (the spec's seed and initialisers), and
the same fixed test examples are forwarded, so these are the predictions a run records at
step 0.

The web server builds no model itself (the builder asks on every valid edit, and one
``fc 1000000`` would take the server's memory with it): a model over ``PARAM_BUDGET``
parameters is refused (413, "predictions of such a model need a run"), and any other is built
in one spawned worker process (``concurrent.futures.ProcessPoolExecutor``, created on first
use, recycled every ``TASKS_PER_WORKER`` predictions and shut down with the app) that keeps its
own bounded ``DataCache``. A worker that dies (out of memory, killed) is replaced by the next
request, and the one that saw it gets 503.
"""
from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from concurrent.futures.process import BrokenProcessPool

from ..errors import LayerlabError, ModelTooLarge, PredictionFailed, Problem, spec_error
from ..prepare import PreparedRun
from .datacache import PREDICTION_COUNT, DataCache

__all__ = ["initial_predictions", "predict_here", "refuse_large_model", "shutdown_worker", "ModelTooLarge", "PredictionFailed",
           "PARAM_BUDGET", "WORKER_CACHE_BYTES"]

log = logging.getLogger(__name__)

PARAM_BUDGET = 5_000_000            # parameters of the largest model the builder's predictions build
WORKER_CACHE_BYTES = 256 * 2**20    # the prediction worker's own data cache
TASKS_PER_WORKER = 200              # predictions before the worker process is replaced (memory back to the OS)
TIMEOUT_S = 120.0                   # one prediction, start-up of a fresh worker included


def refuse_large_model(params: int, what: str, *, purpose: str, advice: str = "") -> None:
    """``ModelTooLarge`` (413) when a model of ``params`` parameters is more than the server builds in its memory."""
    if params > PARAM_BUDGET:
        raise ModelTooLarge(f"{what} has {params:,} parameters, more than the {PARAM_BUDGET:,} the server builds "
                            f"{purpose}{advice}")


def initial_predictions(prepared: PreparedRun, cache: DataCache | None = None) -> dict:
    """``{task, classes, predictions: [{index, label, top: [[class, prob] x3], correct}, ...]}``.

    Computed in the prediction worker process; ``cache`` (the server's) is not used for it.
    """
    refuse_large_model(prepared.check.total_params, "the model", purpose="to show untrained predictions",
                       advice="; predictions of such a model need a run: train it (Train, or `layerlab train`) "
                              "and its dashboard shows them")
    out = _worker().run(prepared.spec.to_dict())
    if "error" in out:
        raise _relayed(out["error"], out["status"])
    return out["result"]


def predict_here(prepared: PreparedRun, cache: DataCache) -> dict:
    """The predictions, computed in this process (what the worker runs)."""
    from ..builder import build
    from ..train.evaluation import predict_examples
    from ..train.losses import make_objective

    spec = prepared.spec
    data = cache.for_spec(spec)
    info = data.info
    objective = make_objective(prepared.task, prepared.loss, num_classes=info.num_classes,
                               last_layer=spec.model[-1].kind if spec.model else None)
    model = build(spec, result=prepared.check)
    indices = list(range(min(PREDICTION_COUNT, len(data.test))))
    items = predict_examples(model, data, indices, objective=objective)
    out = {"step": 0, "examples": 0, "task": objective.task, "predictions": items}
    if objective.classifies:
        out["classes"] = list(info.class_names) or [str(i) for i in range(info.num_classes)]
    return out


def shutdown_worker() -> None:
    """Stop the prediction worker process (the app's shutdown calls this); the next use starts another."""
    global _WORKER
    with _WORKER_LOCK:
        worker, _WORKER = _WORKER, None
    if worker is not None:
        worker.shutdown()


# ------------------------------------------------------------------ the worker process


class _Worker:
    def __init__(self):
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_child, initargs=(os.getpid(),), max_tasks_per_child=TASKS_PER_WORKER)
            return self._executor

    def run(self, spec_data: dict) -> dict:
        for attempt in (1, 2):  # a worker that died while idle (killed, recycled badly) gets one replacement
            pool = self._pool()
            try:
                return pool.submit(_child_predict, spec_data).result(timeout=TIMEOUT_S)
            except BrokenProcessPool:
                self._reset(pool)
                if attempt == 2:
                    raise PredictionFailed("the prediction worker process died (out of memory?); train the model "
                                           "to see its predictions") from None
                log.warning("the prediction worker process died; starting another")
            except concurrent.futures.TimeoutError:
                self._reset(pool)
                raise PredictionFailed(f"the untrained model's predictions took longer than {TIMEOUT_S:.0f} s; "
                                       "train it to see them") from None
        raise AssertionError("unreachable")

    def _reset(self, pool) -> None:
        with self._lock:
            if self._executor is pool:
                self._executor = None
        _kill(pool)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._executor = self._executor, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    pool.shutdown(wait=False, cancel_futures=True)


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def _worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = _Worker()
        return _WORKER


def _relayed(body: dict, status: int) -> LayerlabError:
    """The worker's user error, as the same type with the same message and problems."""
    problems = body.get("problems")
    if problems:
        return spec_error([Problem(**{k: v for k, v in p.items() if k != "where"}) for p in problems])
    cls = type(str(body.get("error") or "LayerlabError"), (LayerlabError,), {"http_status": int(status)})
    return cls(body.get("detail") or "the prediction failed")


# In the child process only:
_CHILD_CACHE: DataCache | None = None


def _init_child(parent: int) -> None:
    import os
    import time

    def watch():  # a server killed outright (SIGKILL) cannot tell its worker to go: it notices by itself
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="layerlab-predict-parent-watch", daemon=True).start()
    import torch
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // 2)))


def _child_predict(spec_data: dict) -> dict:
    global _CHILD_CACHE
    from ..cli_support import error_json
    from ..prepare import prepare_run
    if _CHILD_CACHE is None:
        _CHILD_CACHE = DataCache(size=2, max_bytes=WORKER_CACHE_BYTES)
    try:
        return {"result": predict_here(prepare_run(spec_data), _CHILD_CACHE)}
    except LayerlabError as exc:
        return {"error": error_json(exc), "status": exc.http_status}
