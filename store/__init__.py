"""Postgres access: the migration runner and one module of queries per resource."""
