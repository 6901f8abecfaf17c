"""Errors the trainers raise for bad input. Each message is one line the user can act on.

``trainers`` imports nothing from ``compiler``; the ``distillc train`` command maps these to its own
error type (one line on stderr, exit 1)."""

from __future__ import annotations


class TrainError(Exception):
    """Training cannot start: a bad dataset, student, variant or setting."""


class ConfigError(TrainError):
    """A training config file or value is invalid; the message names the file, line and key."""
