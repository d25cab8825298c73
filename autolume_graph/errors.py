"""The error the command line prints as one line: a mistake in what the user asked for."""


class UserError(Exception):
    """A mistake in what the user asked for (a missing file, a bad argument); printed as one line."""
