"""Hairtrigger: decides, for every business event, which workflows a contact enters."""

__version__ = "0.1.0"
