"""Content checks of the SDK driver's suites (driver.py, trading_calls.py): a failed check
raises :class:`CheckFailed`, which the driver reports as that call's ``detail``."""

from __future__ import annotations


class CheckFailed(Exception):
    """A response validated but its content is wrong."""


def check(cond: bool, what: str) -> None:
    """Raise :class:`CheckFailed` (``what``) unless ``cond``."""
    if not cond:
        raise CheckFailed(what)
