"""The run store: runs, metric series, events and artifacts (SQLite by default, PostgreSQL by URL)."""
from .schema import SCHEMA_VERSION
from .store import FINAL_STATUSES, RUN_KINDS, STATUSES, TRANSITIONS, Store, default_path, resolve_url

__all__ = ["Store", "STATUSES", "TRANSITIONS", "FINAL_STATUSES", "RUN_KINDS", "SCHEMA_VERSION", "default_path",
           "resolve_url"]
