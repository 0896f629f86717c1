"""The one error type a user sees: a mistake in their input, reported in one line."""


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a config key) that they can fix.

    The message is one line: what is wrong, where (file and line, or flag), and how to fix it.
    Command-line entry points print it without a traceback and exit with status 2.
    """

    # The process's exit status when a command-line entry point reports it.
    exit_code = 2


class WorkerLostError(UserError):
    """A multi-worker run lost a peer: every worker must be restarted to resume.

    Exits with its own status (3), so that a supervisor can tell "restart the whole cluster"
    from a mistake in the command line.
    """

    exit_code = 3
