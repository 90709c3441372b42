"""The store backends the store tests run on: SQLite always, PostgreSQL with LAYERLAB_TEST_PG_URL.

Imported by tests/test_store*.py (pytest puts tests/ on sys.path). PostgreSQL: ``eval
"$(scripts/postgres.sh --export)"`` (as root) sets the URL; each test gets its own schema in
that database, dropped afterwards.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import uuid

import pytest
import sqlalchemy as sa

from layerlab.store import resolve_url

__all__ = ["PG_URL", "BACKENDS", "url", "run_together"]

PG_URL = os.environ.get("LAYERLAB_TEST_PG_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="LAYERLAB_TEST_PG_URL is not set (scripts/postgres.sh prints one)"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    """A fresh store URL on each backend: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "runs.db")
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(resolve_url(PG_URL))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    parsed = sa.engine.make_url(resolve_url(PG_URL))
    yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def run_together(target, arg_tuples: list[tuple], *, timeout: float = 120) -> None:
    """Start one spawned process per argument tuple, let them go at once, and assert all succeeded.

    ``target(*args, start, errors)`` waits on the barrier ``start`` and puts an error's text on
    the queue ``errors`` before it fails.
    """
    ctx = mp.get_context("spawn")
    start, errors = ctx.Barrier(len(arg_tuples)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, errors)) for args in arg_tuples]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == [] and [p.exitcode for p in procs] == [0] * len(procs)
