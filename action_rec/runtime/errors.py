"""The one base class for errors that are the user's to fix (`action_rec.errors` says the whole rule).

It lives here, with the code that runs an exported model, so that the runtime's errors (a model.json
that does not fit, a precision hint this CPU lacks) are the toolkit's user errors and the deployment
package, which ships this folder without the toolkit, still has them.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input from the user; the message is the whole story (one line, naming the file)."""
