"""Where Prefect's log records go while prefmill runs a flow: to the API, never glued to the terminal.

Prefect's own console handler writes to stderr behind the back of the rich progress display. During a
build (``route_prefect_logs``) it is muted, while the records still reach Prefect's API handler, so a
Prefect server (or the UI of a configured ``PREFECT_API_URL``) holds every flow and task run's logs.
With ``verbose`` the same records print through the console that owns the progress display, above
the bars. Works whether or not Prefect was already imported (a notebook): handlers are found at run
time, not configured by environment variables read at import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler

#: Level of Prefect's loggers during a build: the API handler receives INFO and above.
API_LEVEL = logging.INFO


def mute_prefect_console() -> None:
    """For a command-line process, before Prefect is imported: Prefect's console handler prints
    nothing for the whole process (its exit-time "Stopping temporary server" line included), while
    its loggers stay at INFO for the API."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _prefect_console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    found: dict[int, logging.Handler] = {}
    for lg in loggers:
        for h in getattr(lg, "handlers", []):
            if isinstance(h, PrefectConsoleHandler):
                found[id(h)] = h
    return list(found.values())


@contextmanager
def route_prefect_logs(verbose: bool = False, con: Console | None = None) -> Iterator[None]:
    """Mute Prefect's console handler, keep its records flowing to the API at INFO, and with
    ``verbose`` print them on ``con`` (the progress display's console)."""
    muted = _prefect_console_handlers()
    saved_handlers = [(h, h.level) for h in muted]
    prefect_logger = logging.getLogger("prefect")
    saved_level = prefect_logger.level
    for h in muted:
        h.setLevel(logging.CRITICAL + 1)
    if prefect_logger.getEffectiveLevel() > API_LEVEL:
        prefect_logger.setLevel(API_LEVEL)
    ours: logging.Handler | None = None
    if verbose:
        ours = RichHandler(console=con, show_path=False, markup=False, rich_tracebacks=False)
        ours.setLevel(API_LEVEL)
        prefect_logger.addHandler(ours)
    try:
        yield
    finally:
        if ours is not None:
            prefect_logger.removeHandler(ours)
        prefect_logger.setLevel(saved_level)
        for h, level in saved_handlers:
            h.setLevel(level)
