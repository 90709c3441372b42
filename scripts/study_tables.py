"""Run the studies at full size and write their tables into docs/studies.md (`make study-tables`).

Each job's tables go between its marker comments in docs/studies.md (see
layerlab.studies.doc_tables), so the documented figures are the ones the code produces:

    .venv/bin/python scripts/study_tables.py                      # every job, full size
    .venv/bin/python scripts/study_tables.py --only init --only toy-functions
    .venv/bin/python scripts/study_tables.py --only init --quick --docs /tmp/studies.md   # plumbing check

The runs go to a fresh SQLite store in a temporary directory unless --db names one; each job's
block is written as soon as it finishes, and --record NAME=ID writes a finished record of --db
without rerunning it. Names and markers are checked before anything runs; a job that fails is
named, the others are still written, and the exit status is 1.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP_LRS = "1e-4,1e-3,1e-2,0.1,1,10"


def _jobs(quick: bool, workers: int):
    """name -> (the command it stands for, a function of (store, out_dir) returning a StudyResult)."""
    from layerlab.studies import STUDIES, lr_find, run_study, sweep
    jobs = {}
    for name in STUDIES:
        jobs[name] = (f"layerlab study {name}" + (" --quick" if quick else ""),
                      lambda store, out, name=name: run_study(name, store, quick=quick, out_dir=out, workers=workers))
    small = ["data.train_size=2000", "data.test_size=500"] if quick else []
    jobs["sweep-lr"] = (f"layerlab sweep fc100-relu-fc10 --set train.lr={SWEEP_LRS}",
                        lambda store, out: sweep("fc100-relu-fc10", [f"train.lr={SWEEP_LRS}"], store=store,
                                                 overrides=small, workers=workers, out_dir=out))
    jobs["lr-find"] = ("layerlab lr-find mnist-conv",
                       lambda store, out: lr_find("mnist-conv", store=store, overrides=small, out_dir=out))
    return jobs


def _from_record(store, record_id: str):
    """The StudyResult a finished record holds (its tables, title, text and time), without rerunning it."""
    from layerlab.studies.record import StudyResult, Table, load_record
    d = load_record(store, int(record_id))
    return StudyResult(kind=d["kind"], name=d["name"], record_id=d["record_id"], numbers=d["numbers"],
                       tables=[Table.from_dict(t) for t in d["tables"]], elapsed_s=d["elapsed_s"], title=d["title"],
                       text=d["text"], options=d["options"])


def main(argv: list[str] | None = None) -> int:
    from layerlab.errors import LayerlabError
    from layerlab.store import Store
    from layerlab.studies.doc_tables import replace_block, result_markdown, write_blocks
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=None, help="run only this job (repeatable)")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "studies.md", help="the Markdown file to write")
    ap.add_argument("--db", default=None, help="store URL or SQLite path (default: a temporary one)")
    ap.add_argument("--quick", action="store_true", help="the reduced forms (to check the plumbing, not for the docs)")
    ap.add_argument("--workers", type=int, default=1, help="local worker processes per study")
    ap.add_argument("--record", action="append", default=[], metavar="NAME=ID",
                    help="write job NAME from record ID already in --db instead of running it (repeatable)")
    args = ap.parse_args(argv)
    jobs = _jobs(args.quick, args.workers)
    records = dict(item.partition("=")[::2] for item in args.record)
    names = args.only or ([] if records else list(jobs))
    names += [n for n in records if n not in names]
    unknown = [n for n in names if n not in jobs]
    if unknown:
        print(f"error: unknown job(s) {', '.join(unknown)}; known: {', '.join(jobs)}", file=sys.stderr)
        return 2
    try:
        text = args.docs.read_text(encoding="utf-8")
        for n in names:  # every marker is there before hours of training
            replace_block(text, n, "", where=str(args.docs))
    except (OSError, LayerlabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if records and not args.db:
        print("error: --record reads a record from a store: name it with --db", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="study-tables-")
    store = Store(args.db or str(Path(tmp) / "runs.db"))
    failed = []
    for n in names:
        command, job = jobs[n]
        print(f"{n}: {command} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            result = _from_record(store, records[n]) if n in records else job(store, Path(tmp) / "figures")
        except Exception as exc:  # noqa: BLE001  (name the job, keep the others)
            failed.append(f"{n}: {type(exc).__name__}: {exc}")
            print(f"  failed after {time.perf_counter() - t0:.0f} s: {exc}", file=sys.stderr)
            continue
        write_blocks(args.docs, {n: result_markdown(result, command=command, quick=args.quick)})  # at once
        print(f"  done in {time.perf_counter() - t0:.0f} s (record {result.record_id}); wrote it into {args.docs} "
              f"(store: {store!r})", file=sys.stderr, flush=True)
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
