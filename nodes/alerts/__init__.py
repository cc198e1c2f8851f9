"""Bank- and carrier-initiated alerts: suspicious accounts and numbers reported to police."""
