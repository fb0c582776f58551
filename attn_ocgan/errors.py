"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (paths, names, ranges). The message says what to do."""
