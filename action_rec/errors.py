"""The one base class for errors that are the user's to fix.

A `UserError` is a bad input (a template, an annotation line, a frame, a checkpoint that does not fit,
an export that cannot be done as asked): its message is one line that names the file (and line) and
says what is wrong, and the command-line tools print just that line and exit with status 2. Every other
exception is a bug in our code or in a library and keeps its full traceback. Never catch a built-in
exception type to mean "the user's fault": raise a `UserError` subclass where the bad input is found.

`UserError` itself is defined in `action_rec.runtime.errors`, so that the runtime (which the deployment
package ships without the rest of the toolkit) raises the same errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from action_rec.runtime.errors import UserError

__all__ = ["UserError", "run_cli"]


def run_cli(body: Callable[[], int | None]) -> int:
    """Run a command-line tool's `body`: a UserError becomes `error: <message>` on stderr and exit
    status 2, Ctrl-C exits 130; anything else propagates with its traceback."""
    try:
        return body() or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
