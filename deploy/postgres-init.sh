#!/bin/sh
# Run once by the postgres image on an empty data folder: one role and one database per
# party, each role's password from its own Docker secret; no party's role can connect to
# another party's database, and none is a superuser.
set -eu
SECRETS=${SECRETS:-/run/secrets}
for db in ${DATABASES:-broker police_1 bank_a bank_b carrier_1 regulator_1}; do
  password=$(cat "$SECRETS/db-$(echo "$db" | tr _ -)")
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v role="$db" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
