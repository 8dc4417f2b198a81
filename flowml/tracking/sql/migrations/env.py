"""Alembic's entry point for flowml's tracking database. flowml runs migrations itself
(:func:`flowml.tracking.sql.database.ensure_schema`), handing over an open connection."""

from alembic import context

from flowml.tracking.sql.tables import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  render_as_batch=True)  # batch mode: SQLite cannot ALTER most things in place
with context.begin_transaction():
    context.run_migrations()
