"""`gateway db`: the broker's and the nodes' database schemas (Alembic migrations).

The broker and every node migrate their own database at start-up; `upgrade` does it
ahead of time (a deployment step), `check` says whether a database matches the code,
`revision` writes the next migration after a table changed (in a source checkout), and
`backup` copies a SQLite database consistently while it is in use.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.common import console, fail
from gateway.config import BrokerConfig, ConfigError, NodeConfig, load_config
from gateway.db import DatabaseError, backup_sqlite, database_url, make_engine, open_read_only
from gateway.migrate import MigrationError, Schema

app = typer.Typer(no_args_is_help=True, help="Migrate and check the databases' schemas.")


class SchemaName(StrEnum):
    broker = "broker"
    node = "node"


CONFIG = typer.Option(None, help="Broker or node TOML: its database and schema.")
DATABASE = typer.Option(None, help="SQLite path or SQLAlchemy URL (with --schema).")
SCHEMA = typer.Option(None, help="Whose tables: broker or node (implied by --config).")


def target(
    config: Path | None, database: str | None, schema: SchemaName | None
) -> tuple[str, Schema]:
    """The database URL and schema named by --config, or by --database and --schema."""
    if (config is None) == (database is None):
        fail("give either --config FILE or --database URL with --schema")
    if config is not None:
        try:
            keys = tomllib.loads(config.read_text())
            kind: Schema = "node" if "role" in keys else "broker"
            if schema is not None and schema.value != kind:
                fail(f"{config} is a {kind} configuration, not a {schema.value} one")
            loaded = (
                load_config(NodeConfig, config)
                if kind == "node"
                else load_config(BrokerConfig, config)
            )
            return loaded.database, kind
        except FileNotFoundError:
            fail(f"configuration file {config} does not exist")
        except (OSError, tomllib.TOMLDecodeError, ConfigError) as exc:
            fail(str(exc))
    if schema is None:
        fail("--database needs --schema broker or --schema node")
    assert database is not None
    return database, "broker" if schema is SchemaName.broker else "node"


def shown(url: str) -> str:
    return make_url(database_url(url)).render_as_string(hide_password=True)


@app.command("upgrade")
def upgrade(
    config: Path | None = CONFIG,
    database: str | None = DATABASE,
    schema: SchemaName | None = SCHEMA,
) -> None:
    """Bring a database to the code's schema; nothing to do is fine."""
    from gateway import migrate

    url, kind = target(config, database, schema)
    engine = make_engine(url)
    try:
        before = migrate.current(engine, kind)
        migrate.upgrade(engine, kind)
        after = migrate.current(engine, kind)
    except (MigrationError, SQLAlchemyError) as exc:
        fail(f"{kind} database {shown(url)}: {exc}")
    finally:
        engine.dispose()
    was = f"from {', '.join(before) or 'empty'}" if before != after else "already"
    console.print(f"{kind} database {shown(url)}: {was} at {', '.join(after)}")


@app.command("check")
def check(
    config: Path | None = CONFIG,
    database: str | None = DATABASE,
    schema: SchemaName | None = SCHEMA,
) -> None:
    """Compare a database with the code's tables; exit 1 listing the differences.

    A node's database may hold the agency's own tables, so for nodes tables the code does
    not know are not differences; for the broker they are.
    """
    import nodes.schema  # noqa: F401  (registers the node's tables)
    from gateway import migrate

    url, kind = target(config, database, schema)
    try:
        engine = open_read_only(url)  # a check creates nothing, not even a missing file
    except DatabaseError as exc:
        fail(f"{kind} database: {exc}")
    try:
        found = migrate.differences(engine, kind, strict=kind == "broker")
    except (MigrationError, SQLAlchemyError) as exc:
        fail(f"{kind} database {shown(url)}: {exc}")
    finally:
        engine.dispose()
    if found:
        for line in found:
            console.print(f"  {line}")
        fail(f"{kind} database {shown(url)} differs from the code in {len(found)} ways")
    console.print(f"{kind} database {shown(url)} matches the code")


@app.command("revision")
def revision(
    schema: SchemaName = typer.Option(..., help="Whose tables changed: broker or node."),
    message: str = typer.Option(..., "--message", "-m", help="What the migration does."),
    database: str | None = typer.Option(
        None, help="Compare with this database (migrated to head first), not a scratch one."
    ),
) -> None:
    """Write the next migration, autogenerated from the code's tables (review it)."""
    import nodes.schema  # noqa: F401  (registers the node's tables)
    from gateway import migrate

    kind: Schema = "broker" if schema is SchemaName.broker else "node"
    try:
        path = migrate.revision(kind, message, database)
    except (MigrationError, SQLAlchemyError) as exc:
        fail(str(exc))
    if path is None:
        console.print(f"the {kind} tables match the migrations: nothing to write")
        return
    console.print(f"wrote {path}: review it, then run the tests (tests/migrations)")


@app.command("backup")
def backup(
    to: Path = typer.Option(..., "--to", help="The new file to write the copy to."),
    config: Path | None = typer.Option(None, help="Broker or node TOML: its database."),
    database: str | None = typer.Option(None, help="SQLite path (or a URL)."),
) -> None:
    """Copy a SQLite database consistently while the broker or node runs.

    Uses SQLite's backup API (one snapshot, the -wal included); the copy is one file that
    `audit verify --database` and `db check` read. PostgreSQL: use pg_dump (README).
    """
    if config is not None and database is None:
        url, schema = target(config, None, None)
        kind = f"{schema} database"
    elif database is not None and config is None:
        url, kind = database, "database"
    else:
        fail("give either --config FILE or --database PATH")
    try:
        done = backup_sqlite(url, to)
    except DatabaseError as exc:
        fail(str(exc))
    console.print(
        f"{kind} {shown(url)} backed up to {done.path}: {done.pages} pages, "
        f"{done.size:,} bytes in {done.seconds:.2f} s, integrity ok",
        highlight=False,
    )
