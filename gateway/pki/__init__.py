"""Identity: the consortium CA, node key material and the signed membership directory."""
