#!/bin/sh
# One-shot, as the consortium administrator: create the PKI once in the `pki-admin`
# volume, which no other service mounts, then (at every start, so that a new signed
# directory is published) export each member's bundle into that member's own volume and
# give it to that member's user. A node's TOML goes into its bundle; its database role
# is its own, and its password reaches it as a Docker secret (with-db-password.sh).
set -eu
umask 077
PKI=/var/gateway/pki
BROKER_UID=10010
# node:role:port:uid (the uid each service runs as in docker-compose.yml)
MEMBERS="police-1:police:7101:10011 bank-a:bank:7102:10012 bank-b:bank:7103:10013 carrier-1:carrier:7104:10014 regulator-1:regulator:7105:10015"

if [ ! -f "$PKI/ca.crt" ]; then
  gateway pki init --consortium compose.gateway --dir "$PKI"
  gateway pki issue --node broker --role broker --agency Consortium --endpoint broker:7100 --dir "$PKI"
  gateway pki endpoints --node broker --endpoint broker:7100 --endpoint broker-2:7100 --dir "$PKI"
  for spec in $MEMBERS; do
    node=${spec%%:*}; rest=${spec#*:}; role=${rest%%:*}; rest=${rest#*:}; port=${rest%%:*}
    gateway pki issue --node "$node" --role "$role" --agency "$node" --endpoint "$node:$port" --dir "$PKI"
  done
fi

gateway pki export --node broker --out /export/broker --dir "$PKI"
chown -R "$BROKER_UID:$BROKER_UID" /export/broker
for spec in $MEMBERS; do
  node=${spec%%:*}; rest=${spec#*:}; role=${rest%%:*}; rest=${rest#*:}; port=${rest%%:*}; uid=${rest#*:}
  db=$(echo "$node" | tr - _)
  gateway pki export --node "$node" --out "/export/$node" --dir "$PKI"
  if [ ! -f "/export/$node/$node.toml" ]; then
    gateway node init --node "$node" --role "$role" --bundle /run/gateway/bundle \
      --listen "0.0.0.0:$port" --broker broker:7100 \
      --database "postgresql+psycopg://$db@postgres/$db" --out "/export/$node/$node.toml"
  fi
  chown -R "$uid:$uid" "/export/$node"
done
