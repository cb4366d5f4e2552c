"""Alembic environment: runs migrations on the engine of :mod:`geodata.db`."""

from alembic import context

from geodata.db import get_engine

connectable = context.config.attributes.get("connection")


def run() -> None:
    if connectable is not None:
        context.configure(connection=connectable)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine().connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


run()
