"""Revisions of the broker's database, oldest first by their four-digit ids."""
