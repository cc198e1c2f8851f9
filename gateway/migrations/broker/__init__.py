"""Migrations of the broker's database."""
