"""Alembic environment of the a node's database; `gateway.migrate` configures it."""

from gateway.migrate import run_environment

run_environment("node")
