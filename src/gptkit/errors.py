"""Exceptions that carry a message meant for the user.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GptkitError(Exception):
    """Base class: an error whose message names the file, field or value at fault."""


class ConfigError(GptkitError, ValueError):
    """A configuration field is unknown or has a bad value."""


class CheckpointError(GptkitError):
    """A checkpoint directory is missing a file or tensor, or holds one that does not fit."""


class InteropError(GptkitError):
    """A model cannot be converted to or from another library's format."""
