#!/bin/sh
# Entrypoint of the broker and the nodes: the service's database password comes from its
# Docker secret into libpq's PGPASSWORD, never into a URL, a file or a command line, and
# the gateway then replaces this shell (so it is PID 1, as the HEALTHCHECK expects).
set -eu
SECRET=/run/secrets/db-password
if [ -r "$SECRET" ]; then
  PGPASSWORD=$(cat "$SECRET")
  export PGPASSWORD
fi
exec gateway "$@"
