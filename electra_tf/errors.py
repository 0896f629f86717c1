"""The one error type a user sees: a mistake in their input, reported in one line."""


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a config key) that they can fix.

    The message is one line: what is wrong, where (file and line, or flag), and how to fix it.
    Command-line entry points print it without a traceback and exit with status 2.
    """
