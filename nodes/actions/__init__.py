"""Stop-payments, freezes and number suspensions: executing them and following them up."""
