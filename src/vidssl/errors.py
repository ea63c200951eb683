"""Errors shared by every room (kept here so that no room imports another just for a name)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A config key is unknown, missing or has a value of the wrong type."""
