"""`python -m gateway` runs the same command as the `gateway` console script."""

from gateway.cli import app

app(prog_name="gateway")
