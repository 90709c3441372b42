"""The training loop: one run, from a spec to results, recorded in the store as it goes.

The hot loop keeps the data resident and never waits for the device: each update leaves its
loss and its outputs on the device, and they are read together (one arg-max, one sync) at
log points (see ``plan.py``). Evaluation, prediction snapshots, probes and checkpoints happen
at evaluation points and are not counted in the training throughput. Live evaluation points use
a fixed subset of the test split (``train.eval_subset``, metrics ``test_accuracy_subset`` and
``test_loss_subset``); step 0, every epoch end, the end and a stop use the whole split
(``test_accuracy``, ``test_loss``, and the subset's rows from the same pass). Unless
``train.eval_every`` is set, the interval between live points is chosen from the measured cost
of one (at step 0) and of an update, so that evaluating costs about 10% of the run
(``plan.adaptive_eval_every``).

Statuses: ``running`` while training, then ``finished`` (budget done), ``stopped`` (a stop
event or ``store.request_stop``; what was learned is kept and the run can be resumed),
``diverged`` (a NaN or infinite loss, or one a million times the untrained model's; the
diagnosis says why), ``failed`` (an unexpected error,
re-raised) or ``interrupted`` (KeyboardInterrupt, re-raised; resumable).

Resume: ``resume(run_id)`` restores the last checkpoint (weights, optimiser, random states,
position in the epoch) and continues. Metric rows and events written before the interruption
are kept; rows at steps the resumed run passes again are *not* written a second time (only
rows after the last stored step are appended), so no row is lost or duplicated. The evaluation
interval is among the options every checkpoint holds (a checkpoint is written as soon as it is
chosen), so the resumed run evaluates where the interrupted one did.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import platform
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..builder import build
from ..errors import LayerlabError, OutOfMemory, RunConflict, StoreError
from ..prepare import PreparedRun, prepare_run
from ..spec import Spec
from ..stages import record_stage
from .checkpoint import CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT, Checkpoint, pack_checkpoint, read_position, \
    unpack_checkpoint, weights_bytes
from .diagnose import Evidence, Watch, explain_divergence, instrumented_step, loss_event, probe, zero_init
from .evaluation import autocast, eval_subset_indices, evaluate, json_number, json_safe, measure_inference, \
    predict_examples, worst_examples
from .losses import make_objective
from .optim import make_optimizer
from .plan import Plan, adaptive_eval_every, default_eval_every, make_plan
from .record import Recorder
from .results import RunResults
from .schedules import lr_at
from .views import ViewRecorder

__all__ = ["train", "resume", "resolve_device"]

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.25   # on_event progress messages at most this often
PROBE_BATCH = 256         # test examples used for the dead-ReLU probe
EXPLODE_FACTOR = 1e6      # a loss a million times the untrained model's has diverged even if still finite
SUBSET_ARTIFACT = "eval_subset.json"  # the evaluation subset's test indices
TIME_REASON = "time budget"  # RunResults.stop_reason of a run that train.minutes ended


def _out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: MemoryError, torch's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def resolve_device(requested: str | torch.device | None) -> torch.device:
    """``auto`` (or None): CUDA when available, else CPU."""
    if requested is None or str(requested) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LayerlabError(f"train.device is {str(requested)!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def _versions() -> dict:
    from .. import __version__
    return {"layerlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.version.cuda}


@dataclass
class Position:
    """Where a run is; saved in every checkpoint, so a resume continues exactly here."""

    step: int = 0                # updates done
    examples: int = 0            # examples trained
    epoch: int = 0               # completed epochs
    epoch_pos: int = 0           # examples of the current epoch's permutation already used
    elapsed: float = 0.0         # wall seconds in earlier sessions (up to their last checkpoint)
    train_time: float = 0.0      # seconds of training (no evaluation) in all sessions
    eval_time: float = 0.0       # seconds in evaluation points (test passes, snapshots, probes) in all sessions
    ep_loss_sum: float = 0.0     # current epoch: sum of batch loss * batch size
    ep_correct: int = 0
    ep_count: int = 0
    best_test_accuracy: float | None = None
    step0_test_accuracy: float | None = None
    step0_test_loss: float | None = None
    last_cost: float | None = None
    last_train_accuracy: float | None = None
    history: list = field(default_factory=list)
    watch: dict = field(default_factory=dict)
    diagnoses: list = field(default_factory=list)  # [{kind, text, step}] found so far
    options: dict = field(default_factory=dict)   # log_every, predictions, eval_every (once chosen) and
    #                                               the costs it came from (eval_point_s, update_s): fixed for
    #                                               the run's life


def train(spec: PreparedRun | Spec | dict | str, *, store=None, run_id: int | None = None,
          on_event: Callable[[dict], None] | None = None, stop_event: threading.Event | None = None,
          device: str | torch.device | None = None, data=None, checkpoint_every: float = 10.0,
          log_every: int | None = None, predictions: int | list[int] = 20) -> RunResults:
    """Train ``spec`` (prepared by ``prepare_run`` unless it already is) and return its ``RunResults``.

    The results are also stored (``results.to_json()``) when there is a store; a run that
    fails raises (status ``failed``) and a KeyboardInterrupt is re-raised (``interrupted``).

    ``store``: a ``layerlab.store.Store`` to record the run in (None: nothing is persisted).
    ``run_id``: an existing queued run of that store to execute; None creates one.
    ``on_event``: called with ``{"type": "progress" | "eval" | "status" | "diagnosis" | "note", ...}``.
    ``stop_event``: set it to stop after the current update (status ``stopped``).
    ``device``: overrides ``train.device``. ``data``: a ``ResidentDataset`` already loaded on
    that device (else the spec's data set is loaded). ``log_every``: updates between log points
    (default from the budget, see ``plan.py``). ``predictions``: how many of the first test
    examples (or which indices) get prediction snapshots.

    Checkpoints are written at step 0, at the end (or stop), and at the first log point after
    every ``checkpoint_every`` seconds.
    """
    prepared = prepare_run(spec, need_data=data is None)
    return _Trainer(prepared, store=store, run_id=run_id, on_event=on_event, stop_event=stop_event, device=device,
                    data=data, checkpoint_every=checkpoint_every, log_every=log_every,
                    predictions=predictions).run()


def resume(run_id: int, *, store=None, on_event: Callable[[dict], None] | None = None,
           stop_event: threading.Event | None = None, device: str | torch.device | None = None, data=None,
           checkpoint_every: float = 10.0) -> RunResults:
    """Continue an ``interrupted`` (or ``stopped``) run from its last checkpoint; return its ``RunResults``.

    ``store`` defaults to ``Store()``. ``device`` defaults to the device the run used.
    """
    if store is None:
        from ..store import Store
        store = Store()
    run = store.get_run(run_id)
    if run["status"] not in ("interrupted", "stopped"):
        raise RunConflict(f"run {run_id} is {run['status']!r}; only interrupted or stopped runs can be resumed")
    prepared = prepare_run(run["spec"], need_data=data is None)
    try:
        ckpt = store.get_artifact(run_id, CHECKPOINT_ARTIFACT)
    except StoreError:
        ckpt = None
        log.warning("run %s has no checkpoint; it starts again from step 0", run_id)
    metric_floor = max((r["step"] for r in store.metrics(run_id)), default=-1)
    event_floor = max((e["payload"].get("step", -1) for e in store.events(run_id, kinds=list(_STEP_EVENTS))
                       if isinstance(e["payload"], dict)), default=-1)
    return _Trainer(prepared, store=store, run_id=run_id, on_event=on_event, stop_event=stop_event,
                    device=device or run.get("device") or None, data=data, checkpoint_every=checkpoint_every,
                    resume_from=ckpt, floors=(metric_floor, event_floor), resume_status=run["status"]).run()


_STEP_EVENTS = ("prediction", "epoch", "diagnosis", "divergence")


class _Trainer:
    def __init__(self, prepared: PreparedRun, *, store, run_id, on_event, stop_event, device, data,
                 checkpoint_every, log_every=None, predictions=20, resume_from: bytes | None = None,
                 floors=(-1, -1), resume_status: str | None = None):
        self.prepared, self.spec, self.check = prepared, prepared.spec, prepared.check
        self.store, self.run_id = store, run_id
        self.device = resolve_device(device or self.spec.train.device)
        if data is not None and torch.device(data.device).type != self.device.type:
            raise LayerlabError(f"the data are on {data.device} but the run trains on {self.device}")
        self.data = data
        self.checkpoint_every = checkpoint_every
        self.resume_from, self.resume_status = resume_from, resume_status
        self.pos = Position(options={"log_every": log_every, "predictions": predictions})
        self.floors = floors
        self.on_event, self.stop_event = on_event, stop_event
        self.last_ckpt: bytes | None = None
        self.stop_reason: str | None = None
        self.divergence: dict | None = None  # on_divergence: continue, once diverged: {step, evidence}

    # ================================================================== lifecycle

    def run(self) -> RunResults:
        if self.store is not None and self.run_id is None:
            self.run_id = self.prepared.create_run(self.store, device=str(self.device), versions=_versions())
        self.rec = Recorder(self.store, self.run_id, self.on_event, self.stop_event,
                            metric_floor=self.floors[0], event_floor=self.floors[1])
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            try:
                return self._run()
            except KeyboardInterrupt:
                self._end_badly("interrupted", None)
                raise
            except Exception as exc:
                if _out_of_memory(exc):  # the machine, not the code: a message, not a traceback
                    message = self._oom_message(exc)
                    self._end_badly("failed", message)
                    raise OutOfMemory(message) from None
                self._end_badly("failed", f"{type(exc).__name__}: {exc}")
                raise

    def _oom_message(self, exc: Exception) -> str:
        from ..budget import format_bytes
        need = (self.check.memory or {}).get("total")
        estimate = f"; the checker estimated {format_bytes(need)} for it" if need else ""
        return (f"ran out of memory while training on {self.device}{estimate} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300]}); lower train.batch_size or the model's size, or free memory, "
                f"then run it again")

    def _end_badly(self, status: str, error: str | None) -> None:
        try:
            self.rec.flush()
        except Exception:  # noqa: BLE001
            log.exception("could not write the last metric rows of run %s", self.run_id)
        try:
            self.rec.set_status(status, error=error)
        except Exception:  # noqa: BLE001 — the original error matters more
            log.exception("could not mark run %s %s", self.run_id, status)

    def _run(self) -> RunResults:
        if self.rec.persistent:
            self.store.start_run(self.run_id, device=str(self.device), versions=_versions(),
                                 resume=self.resume_status == "stopped")
        self.rec.emit({"type": "status", "status": "running", "run_id": self.run_id, "device": str(self.device)})
        self.session_start = self.t_mark = self._last_ckpt_time = time.perf_counter()
        self._setup()
        if self.resume_from is not None:
            self._restore(self.resume_from)
            self.last_ckpt = self.resume_from
            log.info("run %s resumes at step %d (%d examples)", self.run_id, self.pos.step, self.pos.examples)
        else:
            self._stage("evaluating")
            self._eval_point(final=False)  # step 0: the untrained model
        self._stage("training")
        outcome = self._loop()
        if outcome == "diverged":
            return self.results
        if self.divergence is not None:  # on_divergence: continue, and the budget (or a stop) has ended it
            return self._finish_diverged()
        return self._finish("finished" if outcome == "finished" else "stopped")

    def _setup(self) -> None:
        spec, t = self.spec, self.spec.train
        if self.data is None:
            self._stage("loading_data", resident=False)
            self.data = self.prepared.load_data(self.device)
        info = self.data.info
        self.objective = make_objective(self.prepared.task, self.prepared.loss, num_classes=info.num_classes,
                                        last_layer=spec.model[-1].kind if spec.model else None)
        torch.manual_seed(t.seed)  # dropout; the caller's RNG is restored by fork_rng
        self.model = build(spec, result=self.check).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = make_optimizer(self.params, t)
        self.step_model = torch.compile(self.model) if t.compile else self.model
        self.amp = t.amp and self.device.type == "cuda"
        if t.amp and not self.amp:
            self._note("amp (bf16 autocast) is for CUDA; training on the CPU in float32")
        self.gen = torch.Generator().manual_seed(t.seed)
        self.epoch_gen_state = self.gen.get_state()
        opts = self.pos.options
        if self.resume_from is not None:  # the plan must be the interrupted run's
            opts = read_position(self.resume_from)["options"]
            self.pos.options = opts
        self.plan: Plan = make_plan(t, len(self.data.train), log_every=opts.get("log_every"),
                                    eval_every=opts.get("eval_every"))
        if self.resume_from is not None and "eval_point_s" not in opts and self.plan.eval_every is None:
            self.plan = self.plan.with_eval_every(default_eval_every(self.plan.total_examples))  # older checkpoints
        n_test = len(self.data.test)
        # the data set's whole test split: more than n_test when data.test_size took a subset of it
        whole = info.test_size if spec.data.test_size is not None and info.source != "generated" else None
        self.test_split_size = max(n_test, whole or n_test)
        subset = eval_subset_indices(self.data, t.eval_subset)  # None: the whole split
        self.subset = subset.to(self.data.device) if subset is not None else None
        self.subset_size = len(subset) if subset is not None else n_test
        if subset is not None and self.resume_from is None:
            about = {"split": "test", "size": len(subset), "of": n_test,
                     "stratified": self.data.info.task == "classification", "indices": subset.tolist()}
            self.rec.put_artifact(SUBSET_ARTIFACT, json.dumps(about).encode(), kind="eval_subset",
                                  media_type="application/json")
        self._timing_from: tuple[int, float] | None = None  # (step, train_time) where update timing starts
        want = opts.get("predictions", 20)
        self.pred_indices = [i for i in want if 0 <= i < n_test] if isinstance(want, list) \
            else list(range(min(int(want), n_test)))
        self.probe_x = self.data.prepare(self.data.test.x[:PROBE_BATCH]) if n_test else None
        self.watch = Watch()
        self.zero_init = zero_init(spec)
        self.views = ViewRecorder(self.rec, self.data, self.objective, total_examples=self.plan.total_examples)
        if self.plan.n_train < 1:
            raise LayerlabError(f"{info.name} has no training examples")

    def _stage(self, stage: str, **detail) -> None:
        """Say which stage before training the run is in (``layerlab.stages``): to the caller and the store."""
        self.rec.emit({"type": "stage", "stage": stage, **detail})
        if self.rec.persistent:
            record_stage(self.store, self.run_id, stage, **detail)

    def _note(self, text: str) -> None:
        log.info(text)
        self.rec.emit({"type": "note", "text": text})

    # ================================================================== the hot loop

    def _new_perm(self) -> torch.Tensor:
        self.epoch_gen_state = self.gen.get_state()
        return torch.randperm(self.plan.n_train, generator=self.gen).to(self.device)

    def _set_lr(self, step: int, examples: int) -> float:
        t = self.spec.train
        lr = lr_at(t.schedule, t.lr, step, total_steps=self.plan.total_steps, epoch=examples / self.plan.n_train,
                   step_epochs=t.step_epochs, step_gamma=t.step_gamma)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def _make_step(self):
        """One update as a closure over locals (the hot path: no attribute lookups, no sync).

        Returns the loss and (classification) the outputs, both left on the device.
        """
        model, opt, params, objective = self.step_model, self.opt, self.params, self.objective
        loss_fn = objective.__call__
        reconstruct = objective.task == "reconstruction"
        classifies = objective.classifies
        clip = self.spec.train.clip_grad
        amp, device = self.amp, self.device

        def step(x: torch.Tensor, y: torch.Tensor):
            if amp:
                with autocast(device, True):
                    out = model(x)
            else:
                out = model(x)
            loss = loss_fn(out, x if reconstruct else y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            return loss.detach(), (out.detach() if classifies else None)  # arg-max taken at the log point

        return step

    def _loop(self) -> str:
        """Train until the budget is spent, a stop is asked for, or the loss diverges.

        Counters live in locals here and are written back to ``self.pos`` before each log point.
        """
        p, s, rec, data = self.plan, self.pos, self.rec, self.data
        X, Y = data.train.x, data.train.y
        prepare, step = data.prepare, self._make_step()
        stop_event, clock, perf = self.stop_event, time.monotonic, time.perf_counter
        bs, n_train, total, log_every = p.batch_size, p.n_train, p.total_examples, p.log_every
        # the time budget ends here (perf_counter); earlier sessions' time counts against it
        deadline = math.inf if p.seconds is None else self.session_start + p.seconds - self.pos.elapsed
        scheduled = self.spec.train.schedule != "constant"
        steps, examples, epoch_pos = s.step, s.examples, s.epoch_pos
        next_eval = p.next_eval(examples)
        if epoch_pos > 0:  # resumed mid-epoch: the same permutation again
            self.gen.set_state(self.epoch_gen_state)
            perm = self._new_perm()
        pending: list = []
        self.t_mark = time.perf_counter()
        while examples < total:
            if epoch_pos == 0:
                perm = self._new_perm()
            take = min(bs, n_train - epoch_pos, total - examples)
            idx = perm[epoch_pos:epoch_pos + take]
            y = Y[idx]
            if scheduled:
                self._set_lr(steps, examples)
            loss, pred = step(prepare(X[idx]), y)
            pending.append((loss, pred, y, take))
            steps += 1
            examples += take
            epoch_pos += take
            epoch_end = epoch_pos >= n_train
            eval_due = epoch_end or examples >= next_eval
            stop = (stop_event is not None and stop_event.is_set()) or clock() >= rec.next_poll
            if stop:
                stop = rec.should_stop()
            timeout = perf() >= deadline
            if eval_due or stop or timeout or steps % log_every == 0:
                s.step, s.examples, s.epoch_pos = steps, examples, epoch_pos
                end = stop or timeout
                if self._log_point(pending, eval_due=eval_due or end, epoch_end=epoch_end, final=end):
                    return "diverged"
                pending = []
                if stop:
                    self.stop_reason = rec.stop_reason
                    return "stopped"
                if timeout:
                    self.stop_reason = TIME_REASON
                    return "finished"
                epoch_pos = s.epoch_pos  # an epoch end resets it
                next_eval = self.plan.next_eval(examples)  # the interval may have been chosen just now
        return "finished"

    # ================================================================== log and evaluation points

    def _log_point(self, pending: list, *, eval_due: bool, epoch_end: bool, final: bool) -> bool:
        """Read the interval's sums (one sync), record them, evaluate if due. True if diverged."""
        s, p = self.pos, self.plan
        losses = torch.stack([q[0] for q in pending]).tolist()
        correct = None
        if self.objective.classifies:
            correct = int((torch.cat([q[1] for q in pending]).argmax(1) == torch.cat([q[2] for q in pending])).sum())
        now = time.perf_counter()
        interval = now - self.t_mark
        self.t_mark = now
        s.train_time += interval
        first_step = s.step - len(pending) + 1
        limit = self._explosion_limit()
        bad = next((i for i, v in enumerate(losses) if not v <= limit), None)  # NaN, inf or exploded
        if bad is not None and self.divergence is None:
            if self._diverge(first_step + bad, losses[bad]):
                return True
            eval_due = True  # on_divergence: continue — the broken model is evaluated here, as a live point
            self.t_mark = time.perf_counter()  # the diagnosis' replay is not training time
        sizes = [q[3] for q in pending]
        count = sum(sizes)
        cost = sum(v * n for v, n in zip(losses, sizes)) / count
        for v, n in zip(losses, sizes):  # one batch at a time: the epoch's sum does not depend on the log points
            s.ep_loss_sum += v * n
        s.ep_count += count
        s.last_cost = cost
        row = {"cost": cost, "lr": self.opt.param_groups[0]["lr"],
               "examples_per_sec": count / interval if interval > 0 else None,
               "epoch": s.examples / p.n_train}
        if correct is not None:
            s.ep_correct += correct
            s.last_train_accuracy = correct / count
            row["train_accuracy"] = s.last_train_accuracy
        self.rec.metrics(row, s.step, s.examples)
        self.watch.add_cost(cost, step=s.step, examples=s.examples, lr=row["lr"])
        if p.eval_every is None:  # time the updates after the session's first log point (no warm-up in them)
            if self._timing_from is None:
                self._timing_from = (s.step, s.train_time)
            elif s.step - self._timing_from[0] >= p.log_every:
                step0, time0 = self._timing_from
                self._choose_eval_every(update_s=(s.train_time - time0) / (s.step - step0))
        if eval_due or now - getattr(self, "_last_progress", -math.inf) >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.rec.emit({"type": "progress", "step": s.step, "examples": s.examples,
                           "total_examples": self._planned_examples(), "epoch": s.examples / p.n_train,
                           "cost": cost, "train_accuracy": row.get("train_accuracy"),
                           "examples_per_sec": row["examples_per_sec"], "lr": row["lr"],
                           "elapsed": self._elapsed()})
        if eval_due:
            self._eval_point(final=final or s.examples >= p.total_examples, epoch_end=epoch_end)
        elif time.perf_counter() - self._last_ckpt_time >= self.checkpoint_every:
            t0 = time.perf_counter()
            self._checkpoint()
            self.t_mark += time.perf_counter() - t0
        self.rec.tick(s.step, s.examples)
        return False

    def _eval_point(self, *, final: bool, epoch_end: bool = False) -> None:
        """Test evaluation, prediction snapshot, probes, epoch row, checkpoint (not counted as training time).

        Live points evaluate the subset; step 0, epoch ends, the end and a stop the whole split (and
        the subset's share of the same pass). At step 0 the subset's point is timed on its own: what
        every live point costs, from which the interval between them is chosen.
        """
        t0 = time.perf_counter()
        s = self.pos
        start = s.step == 0 and s.examples == 0
        if start and self.subset is not None:
            ev = self._evaluate("full")  # the untrained model on the whole split (step0_test_accuracy)
            # the whole split's pass, scaled to the subset: a second estimate of the subset's (no extra pass)
            scaled = (time.perf_counter() - t0) * len(self.subset) / max(1, ev["examples"])
            t_point = time.perf_counter()
            sub = self._evaluate("subset")
        else:
            scaled, t_point = math.inf, t0
            ev = sub = self._evaluate("both" if final or epoch_end or start else "subset", detail=final)
        t_pass = time.perf_counter() - t_point
        self._snapshot()
        self._probe(grads=not start)
        self.views.record(self.model, s.step, s.examples, force=start or final)  # boundary, histograms
        seconds = time.perf_counter() - t_point
        if start:  # what a live point costs: the point, with the shorter estimate of its test pass
            self._measured_eval_point(seconds - t_pass + min(t_pass, scaled))
        self._report_eval(ev, sub, seconds=time.perf_counter() - t0)
        if epoch_end or (final and s.ep_count):
            self._epoch_row(ev, partial=not epoch_end)
        s.eval_time += time.perf_counter() - t0
        if final or start or time.perf_counter() - self._last_ckpt_time >= self.checkpoint_every:
            self._checkpoint()
        if ev["full"]:
            self.final_eval = ev
        self.t_mark += time.perf_counter() - t0

    def _measured_eval_point(self, seconds: float) -> None:
        """Step 0: keep what a live point costs, and choose the interval if that alone decides it."""
        self.pos.options["eval_point_s"] = seconds
        if self.plan.eval_every is None:
            every = adaptive_eval_every(self.plan, eval_point_s=seconds)
            if every is not None:
                self._set_eval_every(every)

    def _choose_eval_every(self, *, update_s: float) -> None:
        """The interval between live points, now that an update's cost is known too (see plan.py)."""
        point = self.pos.options.get("eval_point_s")
        self.pos.options["update_s"] = update_s
        every = default_eval_every(self.plan.estimated(update_s).total_examples) if point is None else \
            adaptive_eval_every(self.plan, eval_point_s=point, update_s=update_s)
        self._set_eval_every(every)

    def _set_eval_every(self, every: int) -> None:
        self.plan = self.plan.with_eval_every(every)
        self.pos.options["eval_every"] = self.plan.eval_every
        self._last_ckpt_time = -math.inf  # checkpoint at the next chance: a resume must keep this interval

    def _evaluate(self, scope: str, *, detail: bool = False) -> dict:
        """One test pass, its rows written: ``full`` (the whole split: ``test_loss``, ``test_accuracy``),
        ``subset`` (``test_loss_subset``, ``test_accuracy_subset``) or ``both`` (the whole split, and the
        subset's share of the same pass). Without a subset (``eval_subset: all``) every pass is ``both``."""
        s = self.pos
        if self.subset is None and scope == "subset":
            scope = "both"
        detail = detail and self.objective.classifies and scope != "subset"
        if scope == "subset":
            ev = evaluate(self.model, self.data, self.objective, amp=self.amp, indices=self.subset)
        else:
            ev = evaluate(self.model, self.data, self.objective, amp=self.amp, detail=detail,
                          subset=self.subset if scope == "both" else None)
        ev["full"] = scope != "subset"
        rows = {}
        if ev["full"]:
            rows.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"])
        if scope != "full":
            part = ev["subset"] if "subset" in ev else ev  # no subset: the whole split is the subset
            rows.update(test_loss_subset=part["loss"], test_accuracy_subset=part["accuracy"])
        self.rec.metrics(rows, s.step, s.examples)
        if ev["full"]:
            acc = ev["accuracy"]
            if s.step == 0:
                s.step0_test_loss = ev["loss"]
            if acc is not None:
                if s.step == 0:
                    s.step0_test_accuracy = acc  # the untrained model: never the run's best
                elif s.best_test_accuracy is None or acc > s.best_test_accuracy:
                    s.best_test_accuracy = acc
        return ev

    def _snapshot(self) -> None:
        """The prediction event for the fixed examples."""
        s = self.pos
        if self.pred_indices:
            items = predict_examples(self.model, self.data, self.pred_indices, objective=self.objective, amp=self.amp)
            payload = {"step": s.step, "examples": s.examples, "task": self.objective.task, "predictions": items}
            if self.objective.classifies:
                payload["classes"] = list(self.data.info.class_names)
            self.rec.event("prediction", payload, s.step)

    def _report_eval(self, ev: dict, sub: dict, *, seconds: float) -> None:
        """Tell the caller: ``test_accuracy``/``test_loss`` are this point's (``full``: on the whole split,
        ``test_examples`` of them); ``seconds``: its test passes, snapshot and probes."""
        s = self.pos
        part = sub.get("subset", sub)
        self.rec.emit({"type": "eval", "step": s.step, "examples": s.examples, "full": ev["full"],
                       "test_examples": ev["examples"], "test_split_size": self.test_split_size,
                       "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
                       "test_accuracy_subset": part["accuracy"], "test_loss_subset": part["loss"],
                       "best_test_accuracy": s.best_test_accuracy, "seconds": seconds, "elapsed": self._elapsed()})

    def _probe(self, *, grads: bool = True) -> None:
        s = self.pos
        result = probe(self.model, self.probe_x)
        self.rec.metrics(result["metrics"], s.step, s.examples)
        if not grads or self.divergence is not None:  # a diverged model's probes explain nothing more
            return
        self.watch.add_probe(result)
        self._announce(self.watch.notes(zero_init=self.zero_init, lr=self.spec.train.lr, final=False,
                                        optimizer=self.spec.train.optimizer, reference_loss=self.pos.step0_test_loss))

    def _announce(self, notes: list[tuple[str, str]]) -> None:
        for kind, text in notes:
            if kind in self.watch.reported:
                continue
            self.watch.reported.append(kind)
            self.pos.diagnoses.append({"kind": kind, "text": text, "step": self.pos.step})
            self.rec.event("diagnosis", {"step": self.pos.step, "kind": kind, "text": text}, self.pos.step)
            self.rec.emit({"type": "diagnosis", "kind": kind, "text": text, "step": self.pos.step})

    def _epoch_row(self, ev: dict, *, partial: bool) -> None:
        s = self.pos
        row = {"epoch": s.epoch + (s.epoch_pos / self.plan.n_train if partial else 1),
               "examples": s.examples, "step": s.step, "partial": partial,
               "train_loss": s.ep_loss_sum / s.ep_count,
               "train_accuracy": s.ep_correct / s.ep_count if self.objective.classifies else None,
               "test_loss": ev["loss"], "test_accuracy": ev["accuracy"]}
        s.history.append(row)
        self.rec.event("epoch", {k: (json_number(v) if isinstance(v, float) else v) for k, v in row.items()}, s.step)
        self.rec.emit({"type": "epoch", **row})
        if not partial:
            s.epoch += 1
            s.epoch_pos = 0
            s.ep_loss_sum, s.ep_correct, s.ep_count = 0.0, 0, 0

    def _explosion_limit(self) -> float:
        """A loss this large counts as diverged: EXPLODE_FACTOR times the untrained model's (at least 1)."""
        ref = self.pos.step0_test_loss
        ref = ref if ref is not None and math.isfinite(ref) else 1.0
        return EXPLODE_FACTOR * max(1.0, ref)

    def _elapsed(self) -> float:
        return self.pos.elapsed + time.perf_counter() - self.session_start

    def _budget_examples(self) -> int:
        """RunResults.total_examples: the plan's; by time alone, what the time paid for (the examples trained
        when it ran out, else the estimate)."""
        if not self.plan.by_time:
            return self.plan.total_examples
        return self.pos.examples if self.stop_reason == TIME_REASON else (self._planned_examples() or self.pos.examples)

    def _planned_examples(self) -> int | None:
        """The budget in examples; for a run budgeted by time alone, what its time pays for at the measured
        speed (None until the updates are timed)."""
        if not self.plan.by_time:
            return self.plan.total_examples
        update_s = self.pos.options.get("update_s")
        return None if update_s is None else self.plan.estimated(update_s).total_examples

    # ================================================================== checkpoints

    def _finite_params(self) -> bool:
        return bool(torch.stack([p.isfinite().all() for p in self.params]).all()) if self.params else True

    def _checkpoint(self) -> None:
        """Save weights, optimiser, random states and position; never over a finite one with a broken one."""
        self._last_ckpt_time = time.perf_counter()
        self.rec.flush()  # rows up to this step are stored before the checkpoint that follows them
        if self.divergence is not None:  # on_divergence: continue — the last finite checkpoint stays
            return
        if not self._finite_params():
            log.warning("run %s: parameters are not finite at step %d; keeping the last checkpoint",
                        self.run_id, self.pos.step)
            return
        s = self.pos
        position = dataclasses.asdict(s)
        position["elapsed"] = self._elapsed()
        position["watch"] = self.watch.to_dict()
        rng = {"data": self.gen.get_state(), "data_epoch": self.epoch_gen_state, "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        data = pack_checkpoint(Checkpoint(self.model.state_dict(), self.opt.state_dict(), position, rng))
        self.last_ckpt = data
        self.rec.put_artifact(CHECKPOINT_ARTIFACT, data, kind="checkpoint", media_type="application/octet-stream")

    def _restore(self, data: bytes, *, weights_only: bool = False) -> None:
        ck = unpack_checkpoint(data)
        self.model.load_state_dict({k: v.to(self.device) for k, v in ck.model.items()})
        if weights_only:
            return
        self.opt.load_state_dict(ck.optimizer)
        self.gen.set_state(ck.rng["data"])
        self.epoch_gen_state = ck.rng["data_epoch"]
        torch.set_rng_state(ck.rng["torch"])
        if "cuda" in ck.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(ck.rng["cuda"], self.device)
        known = {f.name for f in dataclasses.fields(Position)}  # older checkpoints may hold retired fields
        self.pos = Position(**{k: v for k, v in ck.position.items() if k in known})
        self.pos.history = [h for h in self.pos.history if not h["partial"]]  # a stop's row for its partial epoch
        self.watch = Watch.from_dict(self.pos.watch)
        self.session_start = time.perf_counter()

    # ================================================================== divergence

    def _diverge(self, bad_step: int, bad_loss: float) -> bool:
        """Evaluate the broken model, replay for evidence, explain; True if the run ends here.

        ``on_divergence: stop``: keep the last finite weights and finish (status ``diverged``).
        ``continue``: put the broken model, optimiser and random states back as they were before the
        replay and return False; the loop trains on to the end of the budget (``_finish_diverged``).
        """
        s = self.pos
        what = loss_event(bad_loss)
        going_on = self.spec.train.on_divergence == "continue"
        if going_on:  # its log point writes the cost and evaluates the broken model as a live point
            broken_state = self._state_copy()
        else:
            self.rec.metrics({"cost": bad_loss}, s.step, s.examples)
            t0 = time.perf_counter()
            broken = self._evaluate("both", detail=True)  # accuracy plummets, probabilities NaN: the practicum's
            self._snapshot()
            self._report_eval(broken, broken, seconds=time.perf_counter() - t0)
            s.eval_time += time.perf_counter() - t0
            self.final_eval = broken
        session_start, watch = self.session_start, self.watch  # the replay's restore replaces these and self.pos
        evidence, found = self._replay(bad_step)
        self.session_start, self.watch = session_start, watch
        if found is not None:
            bad_step, what = found
        warnings = [w.message for w in self.check.warnings]
        lr = evidence.records[-1].lr if evidence.records else self.opt.param_groups[0]["lr"]
        text = explain_divergence(list(evidence.records), bad_step=bad_step, what=what, lr=lr, warnings=warnings,
                                  optimizer=self.spec.train.optimizer)
        self.pos = s  # the same object: the loop holds it (the replay worked on a restored copy)
        self.pos.diagnoses.append({"kind": "diverged", "text": text, "step": bad_step})
        records = evidence.to_list()[-16:]
        self.rec.event("divergence", {"step": bad_step, "what": what, "text": text,
                                      "records": json_safe(records)}, s.step)
        self.rec.emit({"type": "diagnosis", "kind": "diverged", "text": text, "step": bad_step})
        if going_on:
            self._restore_state(broken_state)
            self.divergence = {"step": bad_step, "evidence": records}
            self._note(f"diverged at step {bad_step}; on_divergence: continue, so the broken model trains on "
                       "to the end of the budget")
            return False
        if self.last_ckpt is not None:
            self._restore(self.last_ckpt, weights_only=True)  # the weights artifact: the last finite ones
        self._finish("diverged", diverged_at_step=bad_step, evidence=records)
        return True

    def _state_copy(self) -> dict:
        """The model, optimiser and random states as they are now (before a replay changes them)."""
        return {"model": copy.deepcopy(self.model.state_dict()), "opt": copy.deepcopy(self.opt.state_dict()),
                "data": self.gen.get_state(), "data_epoch": self.epoch_gen_state, "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _restore_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["data"])
        self.epoch_gen_state = state["data_epoch"]
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None:
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def _finish_diverged(self) -> RunResults:
        """``on_divergence: continue`` at the end of the budget (or a stop): diverged, with the first NaN's
        diagnosis; the end's evaluation is the broken model's, the weights artifact the last finite ones."""
        if self.last_ckpt is not None:
            self._restore(self.last_ckpt, weights_only=True)
        return self._finish("diverged", diverged_at_step=self.divergence["step"],
                            evidence=self.divergence["evidence"])

    def _replay(self, bad_step: int) -> tuple[Evidence, tuple[int, str] | None]:
        """Re-run the updates since the last finite checkpoint, instrumented, up to ``bad_step``."""
        evidence = Evidence()
        if self.last_ckpt is None:
            return evidence, None
        self._restore(self.last_ckpt)
        s, p = self.pos, self.plan
        X, Y = self.data.train.x, self.data.train.y
        perm = None
        if s.epoch_pos > 0:
            self.gen.set_state(self.epoch_gen_state)
            perm = self._new_perm()
        while s.step < bad_step and s.examples < p.total_examples:
            if s.epoch_pos == 0:
                perm = self._new_perm()
            take = p.take(s.examples, s.epoch_pos)
            idx = perm[s.epoch_pos:s.epoch_pos + take]
            lr = self._set_lr(s.step, s.examples)
            record, what = instrumented_step(self.step_model, self.model, self.opt, self.objective,
                                             self.data.prepare(X[idx]), Y[idx], step=s.step + 1, lr=lr,
                                             amp=self.amp, clip=self.spec.train.clip_grad,
                                             loss_limit=self._explosion_limit())
            evidence.add(record)
            s.step += 1
            s.examples += take
            s.epoch_pos += take
            if s.epoch_pos >= p.n_train:
                s.epoch_pos = 0
            if what is not None:
                return evidence, (record.step, what)
        return evidence, None

    # ================================================================== the end

    def _finish(self, status: str, *, diverged_at_step: int | None = None,
                evidence: list[dict] | None = None) -> RunResults:
        s, info = self.pos, self.data.info
        ev = getattr(self, "final_eval", None)
        if ev is None:  # e.g. a resume of a run that had already trained its budget
            t0 = time.perf_counter()
            ev = self._evaluate("both", detail=True)
            self._snapshot()
            self._report_eval(ev, ev, seconds=time.perf_counter() - t0)
            s.eval_time += time.perf_counter() - t0
        confusion = worst = None
        if "confusion" in ev:
            names = list(info.class_names) or [str(i) for i in range(info.num_classes)]
            confusion = {"classes": names, "matrix": ev["confusion"]}
            worst = worst_examples(ev["p_true"], ev["pred"], self.data.test.y)
            self.rec.put_artifact("confusion.json", json.dumps({"step": s.step, **confusion}).encode(),
                                  kind="confusion", media_type="application/json")
        speed = measure_inference(self.model, self.data, amp=self.amp) if len(self.data.test) else {}
        self.rec.metrics({k: v for k, v in speed.items() if k != "inference_batch_size"}, s.step, s.examples)
        if status != "diverged":
            self._announce(self.watch.notes(zero_init=self.zero_init, lr=self.spec.train.lr, final=True,
                                            optimizer=self.spec.train.optimizer, reference_loss=s.step0_test_loss))
        diagnoses = self.pos.diagnoses
        diagnosis = "; ".join(d["text"] for d in diagnoses if d["kind"] == "diverged") if status == "diverged" \
            else ("; ".join(d["text"] for d in diagnoses) or None)
        results = RunResults(
            run_id=self.run_id, status=status, device=str(self.device),
            task=self.objective.task, loss=self.objective.loss, params=self.check.total_params,
            examples=s.examples, steps=s.step, epochs=s.examples / self.plan.n_train,
            total_examples=self._budget_examples(),
            minutes=self.spec.train.minutes, test_examples=len(self.data.test), test_split_size=self.test_split_size,
            elapsed_s=self._elapsed(), train_time_s=s.train_time,
            examples_per_sec=s.examples / s.train_time if s.train_time > 0 else None,
            eval_time_s=s.eval_time, eval_subset=self.subset_size, eval_every=self.plan.eval_every,
            step0_test_accuracy=s.step0_test_accuracy, step0_test_loss=s.step0_test_loss,
            test_accuracy=ev["accuracy"], test_loss=ev["loss"], best_test_accuracy=s.best_test_accuracy,
            train_loss=s.history[-1]["train_loss"] if s.history else s.last_cost,
            train_accuracy=s.history[-1]["train_accuracy"] if s.history else s.last_train_accuracy,
            history=s.history, stop_reason=self.stop_reason,
            diagnosis=diagnosis, diagnoses=diagnoses, diverged_at_step=diverged_at_step, evidence=evidence,
            confusion=confusion, worst=worst, **speed)
        meta = {"run_id": self.run_id, "step": s.step, "examples": s.examples, "status": status,
                "spec": self.spec.to_dict()}
        self.rec.put_artifact(WEIGHTS_ARTIFACT, weights_bytes(self.model, meta), kind="weights",
                              media_type="application/octet-stream")
        self.rec.flush()
        if self.rec.persistent:
            self.store.heartbeat(self.run_id, step=s.step, examples=s.examples)
            self.store.set_results(self.run_id, results.to_json())
        self.rec.set_status(status, diagnosis=results.diagnosis)
        self.results = results
        return results
