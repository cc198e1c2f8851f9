"""Alembic environment of the broker's database; `gateway.migrate` configures it."""

from gateway.migrate import run_environment

run_environment("broker")
