"""Signed envelopes: every message between agencies, as built, sealed and verified."""
