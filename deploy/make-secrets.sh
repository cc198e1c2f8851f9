#!/bin/sh
# Run once before `docker compose up`: one random password per database role, and one
# for the PostgreSQL superuser, in deploy/secrets/ (0700; git ignores it). Compose hands
# each service only its own file (docker-compose.yml, `secrets:`). The files are 0644 so
# that the service's user inside its container can read the bind-mounted file; the 0700
# folder keeps them from other users of this host. Existing passwords are kept.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets
for name in pg-superuser db-broker db-police-1 db-bank-a db-bank-b db-carrier-1 db-regulator-1; do
  if [ ! -s "secrets/$name" ]; then
    head -c 30 /dev/urandom | base64 | tr -d '\n/+=' > "secrets/$name"
  fi
  chmod 0644 "secrets/$name"
done
echo "passwords in $(pwd)/secrets"
