"""Revisions of a node's database, oldest first by their four-digit ids."""
