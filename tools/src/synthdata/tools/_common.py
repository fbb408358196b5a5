"""Helpers shared by the command-line tools: error reporting and logging set-up."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG with ``verbose``), once per process."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def run_cli(prog: str, body: Callable[[], int], expected: tuple[type[BaseException], ...]) -> int:
    """Run ``body``; print expected errors as one ``prog: error: ...`` line and return 2, without a traceback."""
    try:
        return body()
    except expected as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
