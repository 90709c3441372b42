"""The store's schema migrations, on real databases (SQLite; PostgreSQL with LAYERLAB_TEST_PG_URL).

* the last release's store (tests/fixtures/store_v1.sqlite, made by make_store_v1.py with the
  schema-1 code) is upgraded in place: every row kept with equal values, NaN included, and
  study records and members get ``kind`` and ``parent``;
* a store at an older Alembic revision is upgraded; a store from a newer layerlab is refused
  with a clear message and not written to;
* records are found however many runs came after them, and the run-kind API checks its input;
* several processes may open one new database at once;
* the revisions and ``schema.py`` describe the same schema.

Run with ``-s`` to see Alembic's upgrade log (the revision ids).
"""
from __future__ import annotations

import logging
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from store_backends import run_together, url  # noqa: F401  (a fixture: SQLite, and PostgreSQL when configured)
from layerlab.errors import StoreError
from layerlab.report.html import resolve_targets
from layerlab.store import SCHEMA_VERSION, Store, resolve_url
from layerlab.store.migrate import HEAD, MIGRATIONS, alembic_config
from layerlab.store.schema import metadata
from layerlab.studies.record import add_member, create_record, find_records, members

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.sqlite"
V1_TABLES = ("schema_version", "runs", "metrics", "events", "artifacts")
SPEC = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}], "train": {"epochs": 1, "seed": 1}}


LOGGERS = ("alembic.runtime.migration", "layerlab.store.migrate")


@pytest.fixture
def migration_log(caplog):
    """Alembic's and the store's log lines (:func:`show` prints them; ``pytest -s`` shows them)."""
    for name in LOGGERS:
        caplog.set_level(logging.INFO, logger=name)
    return caplog


def show(caplog) -> list[str]:
    """Print the migration log lines caught so far and return them."""
    lines = [f"[{r.name}] {r.getMessage()}" for r in caplog.records if r.name in LOGGERS]
    print("\n" + "\n".join(lines))
    return lines


def v1_columns() -> dict[str, list[str]]:
    with sqlite3.connect(f"file:{FIXTURE}?immutable=1", uri=True) as conn:
        return {t: [row[1] for row in conn.execute(f"PRAGMA table_info({t})")] for t in V1_TABLES}


def dump(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of the v1 tables and columns, by id, in comparable Python values."""
    def plain(v):
        return bytes(v) if isinstance(v, memoryview) else int(v) if isinstance(v, bool) else v

    out = {}
    with engine.connect() as conn:
        for table, cols in v1_columns().items():
            key = "version" if table == "schema_version" else "id"
            rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {key}")).all()
            out[table] = [tuple(plain(v) for v in row) for row in rows]
    return out


def head_of(store: Store) -> tuple[list[str], list[int]]:
    with store.engine.connect() as conn:
        return (conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all(),
                conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all())


def check_records(store: Store) -> None:
    """The fixture's records, found by kind, with their members' parents set."""
    runs = {r["id"]: r for r in store.list_runs(limit=1000)}
    kinds = {r["model"]: r["kind"] for r in runs.values() if r["kind"] != "run"}
    assert kinds == {"sweep": "sweep", "lr-find": "lr-find", "study:init": "study"}
    sweep = next(r for r in runs.values() if r["kind"] == "sweep")
    member_ids = sorted(m["run_id"] for m in members(store, sweep["id"]))
    assert len(member_ids) == 2
    assert sorted(r["id"] for r in store.list_runs(parent=sweep["id"])) == member_ids
    assert all(runs[i]["parent"] == sweep["id"] and runs[i]["kind"] == "run" for i in member_ids)
    study = find_records(store, name="init")[0]
    assert [r["id"] for r in store.list_runs(parent=study["id"])] == [m["run_id"] for m in members(store, study["id"])]
    assert sum(1 for r in runs.values() if r["parent"] is not None) == 3  # 2 sweep trials + 1 study member
    assert find_records(store, kind="sweep")[0]["id"] == sweep["id"]
    assert resolve_targets(store, ["sweep", "init", "latest"]) == [sweep["id"], study["id"], study["id"]]


# ------------------------------------------------------------------ the last release's store


def test_the_last_release_store_is_upgraded_with_every_row(tmp_path, migration_log):
    pristine, path = tmp_path / "pristine.db", tmp_path / "old.db"
    shutil.copy(FIXTURE, pristine)
    shutil.copy(FIXTURE, path)
    before = dump(sa.create_engine(f"sqlite:///{pristine}"))
    assert before["schema_version"] == [(1,)] and len(before["runs"]) == 9
    assert len(before["metrics"]) > 20 and len(before["events"]) > 20 and len(before["artifacts"]) == 4

    store = Store(path, check_interval=None)
    lines = show(migration_log)
    assert any("Running stamp_revision  -> 0001" in line for line in lines)
    assert any("Running upgrade 0001 -> 0002" in line for line in lines)
    assert any("Running upgrade 0002 -> 0003" in line for line in lines)
    assert head_of(store) == ([HEAD], [SCHEMA_VERSION]) == (["0003"], [3])
    after = dump(store.engine)
    after["schema_version"] = before["schema_version"]  # the one v1 value that changes: 1 -> 3
    assert after == before  # every row of every table, column for column

    diverged = next(r for r in store.list_runs() if r["status"] == "diverged")
    values = [m["value"] for m in store.metrics(diverged["id"])]
    assert values[0] == 2.3 and values[1] == math.inf and math.isnan(values[2]) and values[-1] == -math.inf
    assert math.isnan(diverged["results"]["test_accuracy"]) and diverged["best_test_accuracy"] is None
    assert store.get_artifact(1, "weights.safetensors") == bytes(range(256)) * 4
    check_records(store)

    # Still a working store: new ids continue past the old ones, deleting a record orphans its members.
    new = store.create_run(SPEC, kind="run")
    assert new == max(r[0] for r in before["runs"]) + 1
    sweep = find_records(store, kind="sweep")[0]["id"]
    store.delete_run(sweep)
    assert store.list_runs(parent=sweep) == [] and find_records(store, kind="sweep") == []
    store.close()

    # Opening it again changes nothing and runs no migration.
    migration_log.clear()
    Store(path).close()
    assert not [r for r in migration_log.records if "Running upgrade" in r.getMessage()]


def test_a_store_at_an_older_revision_is_upgraded(url, migration_log):
    """Revision 0001 built by Alembic (on either backend), filled with the fixture's rows, then opened."""
    engine = sa.create_engine(resolve_url(url))
    from alembic import command
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    fixture = sa.create_engine(f"sqlite:///file:{FIXTURE}?immutable=1&uri=true")
    with fixture.connect() as src, engine.begin() as dst:
        for table, cols in v1_columns().items():
            target = sa.Table(table, sa.MetaData(), autoload_with=dst)
            rows = [dict(zip(cols, row)) for row in src.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table}"))]
            if table == "schema_version":
                continue  # revision 0001 wrote it
            for row in rows:
                row.update({c: bool(row[c]) for c in ("stop_requested",) if c in row})
            dst.execute(sa.insert(target), rows)
    before = dump(engine)
    engine.dispose()

    with Store(url, check_interval=None) as store:
        assert head_of(store) == ([HEAD], [SCHEMA_VERSION])
        after = dump(store.engine)
        after["schema_version"] = before["schema_version"]
        assert after == before
        check_records(store)
    assert any("Running upgrade 0001 -> 0002" in line for line in show(migration_log))


# ------------------------------------------------------------------ a newer layerlab's store


@pytest.mark.parametrize("newer", ["revision", "schema_version"])
def test_a_newer_store_is_refused_and_left_untouched(url, newer, capsys):
    with Store(url) as store:
        run_id = store.create_run(SPEC)
        with store.engine.begin() as conn:
            if newer == "revision":
                conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
            else:
                conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    path = Path(sa.engine.make_url(resolve_url(url)).database or "")
    sqlite = url.endswith(".db")
    before = path.read_bytes() if sqlite else None
    if sqlite:
        assert not Path(f"{path}-wal").exists()  # all of it is in the file we compare

    found = "schema revision 0099_from_the_future" if newer == "revision" else "schema version 99"
    with pytest.raises(StoreError) as err:
        Store(url)
    assert str(err.value) == (f"the store at {_safe(url)} was written by a newer "
                              f"layerlab ({found}); this layerlab knows up to schema version {SCHEMA_VERSION} "
                              f"(revision {HEAD}); upgrade layerlab")
    with capsys.disabled():
        print(f"\nrefused: {err.value}")
    if sqlite:
        assert path.read_bytes() == before
    engine = sa.create_engine(resolve_url(url))
    with engine.connect() as conn:  # nothing written: still the newer marks, still our one run
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            "0099_from_the_future" if newer == "revision" else HEAD)
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == (
            99 if newer == "schema_version" else SCHEMA_VERSION)
        assert conn.execute(sa.text("SELECT id FROM runs")).scalars().all() == [run_id]
    engine.dispose()


def _safe(url: str) -> str:
    return sa.engine.make_url(resolve_url(url)).render_as_string(hide_password=True)


# ------------------------------------------------------------------ records and run kinds


def test_records_are_found_behind_many_newer_runs(url):
    store = Store(url, check_interval=None)
    sweep = create_record(store, kind="sweep", name="sweep", spec=SPEC, title="fc10 · lr")
    trials = []
    for i in range(2):
        trials.append(store.create_run(SPEC, name=f"sweep {sweep} #{i + 1}", parent=sweep))
        add_member(store, sweep, trials[-1], kind="sweep", index=i, values={"train.lr": i}, label=f"lr={i}")
    study = create_record(store, kind="study", name="init", spec=SPEC, title="inits")
    for _ in range(250):
        store.create_run(SPEC)
    assert len(store.list_runs()) == 200  # the default page holds none of the records

    assert [r["id"] for r in find_records(store, kind="sweep")] == [sweep]
    assert [r["id"] for r in find_records(store)] == [study, sweep]
    assert resolve_targets(store, ["sweep", "latest", "init"]) == [sweep, study, study]
    with pytest.raises(StoreError, match="no lr-find record"):
        resolve_targets(store, ["lr-find"])
    assert [r["id"] for r in store.list_runs(parent=sweep)] == trials[::-1]
    assert {r["kind"] for r in store.list_runs(kind="run", limit=1000)} == {"run"}
    assert len(store.list_runs(kind="run", limit=1000)) == 252
    store.close()


def test_run_kind_and_parent_are_checked(url):
    store = Store(url, check_interval=None)
    record = store.create_run(SPEC, kind="sweep", status="running")
    assert store.get_run(record)["kind"] == "sweep" and store.get_run(record)["parent"] is None
    with pytest.raises(StoreError, match="unknown run kind 'trial'; expected one of run, sweep, lr-find, study"):
        store.create_run(SPEC, kind="trial")
    with pytest.raises(StoreError, match="the parent run 9999 of a new run was not found"):
        store.create_run(SPEC, parent=9999)
    with pytest.raises(StoreError, match="must be a run id"):
        store.create_run(SPEC, parent="1")
    with pytest.raises(StoreError, match="unknown run kind"):
        store.list_runs(kind="trial")
    with pytest.raises(StoreError, match="unknown record kind"):
        find_records(store, kind="run")
    assert [r["id"] for r in store.list_runs()] == [record]  # nothing half written

    child = store.create_run(SPEC, parent=record)
    grandchild = store.create_run(SPEC)
    store.set_parent(grandchild, child)
    assert store.get_run(grandchild)["parent"] == child
    with pytest.raises(StoreError, match="makes a cycle"):
        store.set_parent(record, grandchild)
    with pytest.raises(StoreError, match="makes a cycle"):
        store.set_parent(child, child)
    with pytest.raises(StoreError, match="run 9999 not found"):
        store.set_parent(child, 9999)
    with pytest.raises(StoreError, match="run 9999 not found"):
        store.set_parent(9999, child)
    store.set_parent(grandchild, None)
    assert store.get_run(grandchild)["parent"] is None
    store.delete_run(record, force=True)
    assert store.get_run(child)["parent"] is None
    store.close()


# ------------------------------------------------------------------ concurrency and consistency


def _open_and_write(url: str, start, errors) -> None:
    try:
        start.wait(60)
        store = Store(url, check_interval=None)
        store.create_run(SPEC)
        store.close()
    except BaseException as e:  # reported to the parent, which fails the test with it
        errors.put(f"{type(e).__name__}: {e}")
        raise


def _open_at_once(url: str, n: int = 4) -> None:
    run_together(_open_and_write, [(url,)] * n)


@pytest.mark.slow  # spawns four processes
def test_processes_opening_one_new_store_at_once(url):
    _open_at_once(url)
    with Store(url, check_interval=None) as store:
        assert len(store.list_runs()) == 4
        assert head_of(store) == ([HEAD], [SCHEMA_VERSION])


@pytest.mark.slow  # spawns four processes
def test_processes_upgrading_one_old_store_at_once(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    _open_at_once(str(path))
    with Store(path, check_interval=None) as store:
        assert len(store.list_runs()) == 9 + 4
        assert head_of(store) == ([HEAD], [SCHEMA_VERSION])
        check_records(store)


def _foreign_keys(engine: sa.Engine) -> dict[str, list[tuple]]:
    """SQLite's own account of every foreign key (SQLAlchemy does not read ON DELETE of a column's
    inline REFERENCES, which is how revision 0002 has to add ``runs.parent``)."""
    with engine.connect() as conn:
        return {t: sorted(tuple(r[2:]) for r in conn.exec_driver_sql(f"PRAGMA foreign_key_list({t})"))
                for t in metadata.tables}


def test_revisions_and_schema_agree(url, tmp_path):
    """Upgrading an empty database revision by revision gives exactly the tables schema.py creates."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD
    engine = sa.create_engine(resolve_url(url))
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    if engine.dialect.name == "sqlite":
        diff = [d for d in diff if d[0] not in ("add_fk", "remove_fk")]
        fresh = sa.create_engine(f"sqlite:///{tmp_path / 'create_all.db'}")
        metadata.create_all(fresh)
        assert _foreign_keys(engine) == _foreign_keys(fresh)
        assert ("runs", "parent", "id", "NO ACTION", "SET NULL", "NONE") in _foreign_keys(engine)["runs"]
        fresh.dispose()
    engine.dispose()
    assert diff == []
    with Store(url) as store:  # at head already: opened as is
        assert head_of(store) == ([HEAD], [SCHEMA_VERSION])
