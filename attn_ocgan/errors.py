"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (paths, names, ranges). The message says what to do.

    ``details`` (optional, multi-line) is printed before the one-line message, e.g. a table
    of what was found.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details
