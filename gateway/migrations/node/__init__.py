"""Migrations of a node's database."""
