"""Alembic environments of the broker's and the nodes' databases (see gateway.migrate).

Each folder is one environment: `env.py`, the template new revisions are written from,
and `versions/`. The revisions ship with the package; `gateway.migrate` configures them in
code, so there is no alembic.ini and the alembic command is not used.
"""
