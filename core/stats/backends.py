"""Eager import of the heavy statistics back ends (statsmodels, lifelines)."""

from __future__ import annotations

__all__ = ["import_backends"]


def import_backends() -> None:
    """Import the statistics back ends (statsmodels, lifelines; ~1.5 s) now.

    They are imported lazily so ``core`` stays light for scripts; a server calls this at
    start-up, before gunicorn forks its workers (``--preload``), so no worker pays for the
    import on its first cohort request and the pages are shared copy-on-write.
    """
    # deferred import: the point of this function (lazy by default, eager when called)
    import lifelines
    import lifelines.statistics  # noqa: F401
    import statsmodels.api
    import statsmodels.stats.contingency_tables
    import statsmodels.stats.proportion  # noqa: F401
