"""Train to first chart point: from the POST that creates a run to its first metric row on the stream.

    .venv/bin/python benchmarks/bench_first_point.py [--repeats 5] [--workers 2]

Two ``layerlab serve`` processes on temporary SQLite stores, side by side: one with warm
workers (the default: processes started ahead of time, torch imported, data sets kept
resident) and one with ``LAYERLAB_WARM_WORKERS=0`` (the cold start: a fresh worker process per
run, which imports torch and loads the data set). Each server first trains one warm-up run of
the same job to its end (so the warm server's worker holds Fashion-MNIST, as after a user's
first run); then runs are measured alternately (warm, cold, warm, cold, ...): POST
``/api/runs`` with the ``fc100-relu-fc10`` preset on Fashion-MNIST, read
``/api/runs/{id}/stream`` until its first ``metrics`` message (the step-0 evaluation: the
dashboard's first chart point), then stop the run and wait for its end. Also shown: when each
stage event (``layerlab.stages``) was stored, seconds after the POST (medians; *training*
begins once the step-0 rows are stored). Public tools only:
``subprocess``, ``time``, ``httpx``.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PRESET = "fc100-relu-fc10"
ACT = {"X-Layerlab": "1"}
STAGES = ("queued", "starting", "loading_data", "evaluating", "training")


class Server:
    """``layerlab serve --port 0`` on its own store; ``warm`` sets LAYERLAB_WARM_WORKERS."""

    def __init__(self, tmp: Path, *, warm: bool, workers: int):
        self.warm = warm
        env = dict(os.environ, LAYERLAB_WARM_WORKERS="1" if warm else "0")
        db = tmp / ("warm.db" if warm else "cold.db")
        self.log = open(tmp / ("warm.log" if warm else "cold.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "layerlab", "serve", "--port", "0", "--db", str(db),
                                      "--workers", str(workers)], stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env, cwd=ROOT)
        line = self.proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if not match:
            raise SystemExit(f"the server printed no URL: {line!r}")
        self.http = httpx.Client(base_url=match.group(1), timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        self.spec = self.http.get(f"/api/presets/{PRESET}").json()["spec"]

    def first_point(self) -> tuple[float, dict[str, float]]:
        """Seconds from the POST to the first metrics message; and each stage's time after the POST."""
        t0, wall0 = time.perf_counter(), time.time()
        run_id = self.http.post("/api/runs", json={"spec": self.spec, "name": "first-point"}).json()["id"]
        took = None
        with self.http.stream("GET", f"/api/runs/{run_id}/stream") as stream:
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "metrics":
                    took = time.perf_counter() - t0
                    break
        self.http.post(f"/api/runs/{run_id}/stop", headers=ACT)
        self.wait_over(run_id)
        if took is None:
            raise SystemExit(f"run {run_id} ended without a metric row: {self.http.get(f'/api/runs/{run_id}').text}")
        seen: dict[str, float] = {}  # when each stage was stored (the stream may send it after the rows)
        for ev in self.http.get(f"/api/runs/{run_id}/events?kinds=stage").json()["events"]:
            seen.setdefault(ev["payload"]["stage"], ev["time"] - wall0)
        return took, seen

    def wait_over(self, run_id: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.http.get(f"/api/runs/{run_id}").json()["status"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run_id} did not end in {timeout} s")
            time.sleep(0.1)

    def warm_up(self) -> None:
        run_id = self.http.post("/api/runs", json={"spec": {**self.spec, "train": {**self.spec["train"],
                                                                                   "examples": 2000}}}).json()["id"]
        self.wait_over(run_id)
        time.sleep(1.0)  # the worker reports back and is idle again

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerlab-first-point-") as tmp:
        servers = [Server(Path(tmp), warm=True, workers=args.workers),
                   Server(Path(tmp), warm=False, workers=args.workers)]
        try:
            for server in servers:
                server.warm_up()
            times: dict[bool, list[float]] = {True: [], False: []}
            stage_times: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
            for _ in range(args.repeats):
                for server in servers:
                    took, seen = server.first_point()
                    times[server.warm].append(took)
                    for stage, at in seen.items():
                        stage_times[server.warm].setdefault(stage, []).append(at)
        finally:
            for server in servers:
                server.close()
    load = os.getloadavg()[0]
    print(f"Train to first chart point, {PRESET} on fashion-mnist, {args.workers} workers, "
          f"median of {args.repeats} (load average {load:.1f} at the end)\n")
    print("| server | first metric row on the stream | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for warm in (True, False):
        cells = [f"{statistics.median(stage_times[warm][s]):.2f} s" if stage_times[warm].get(s) else "—"
                 for s in STAGES]
        runs = ", ".join(f"{t:.2f}" for t in times[warm])
        print(f"| {'warm workers' if warm else 'cold (a fresh worker per run)'} | "
              f"**{statistics.median(times[warm]):.2f} s** ({runs}) | " + " | ".join(cells) + " |")
    ratios = [w / c for w, c in zip(times[True], times[False])]
    print(f"\nwarm / cold, median of per-pair ratios: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
