"""Helpers shared by the command-line tools: error reporting and logging set-up."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr at INFO (DEBUG with ``verbose``, WARNING with ``quiet``).

    The handler is installed once per process; the level is set on every call, so a second command run in
    the same process (a notebook, a test) logs at its own level.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)


def run_cli(prog: str, body: Callable[[], int], expected: tuple[type[BaseException], ...]) -> int:
    """Run ``body``; print expected errors as one ``prog: error: ...`` line and return 2, without a traceback."""
    try:
        return body()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as coreutils do, and keep the interpreter's final
        # flush from raising again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except expected as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
