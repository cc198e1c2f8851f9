#!/bin/sh
# One-shot: create the consortium's PKI and node configuration in the shared volume,
# unless it already exists. In a real consortium each agency keeps its own keys; this
# puts them in one volume only to run the whole system on one host.
set -eu
PKI=/var/gateway/pki
if [ ! -f "$PKI/ca.crt" ]; then
  gateway pki init --consortium compose.gateway --dir "$PKI"
  gateway pki issue --node broker --role broker --agency Consortium --endpoint broker:7100 --dir "$PKI"
  gateway pki endpoints --node broker --endpoint broker:7100 --endpoint broker-2:7100 --dir "$PKI"
  for spec in police-1:police:7101 bank-a:bank:7102 bank-b:bank:7103 carrier-1:carrier:7104 regulator-1:regulator:7105; do
    node=${spec%%:*}; rest=${spec#*:}; role=${rest%%:*}; port=${rest#*:}
    gateway pki issue --node "$node" --role "$role" --agency "$node" --endpoint "$node:$port" --dir "$PKI"
    gateway node init --node "$node" --role "$role" --pki "$PKI" --listen "0.0.0.0:$port" \
      --broker broker:7100 --out "/var/gateway/$node.toml"
  done
fi
