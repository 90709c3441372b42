"""Alembic's environment for the run store.

layerlab runs its migrations itself (:mod:`layerlab.store.migrate`, when a ``Store`` opens a
database) on the store's own connection, inside the transaction that serialises upgrades;
that connection comes in ``config.attributes["connection"]``. There is no ``alembic.ini``
and no offline (``--sql``) mode.
"""
from alembic import context

from layerlab.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the run store's migrations run through layerlab: open the store with "
                       "layerlab.store.Store(url), which upgrades it")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # joins the caller's transaction
    context.run_migrations()
