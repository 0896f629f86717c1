"""Shared plumbing for the `python -m electra_tf.<tool>` entry points."""

from __future__ import annotations

import sys
from typing import Callable

from absl import app

from electra_tf.errors import UserError


def run(main: Callable[[list[str]], object]) -> None:
    """Runs an absl main; a UserError becomes one line on stderr and exit status 2."""

    def guarded_main(argv: list[str]) -> object:
        try:
            return main(argv)
        except UserError as error:
            program = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "electra_tf"
            sys.stderr.write(f"{program}: error: {error}\n")
            sys.stderr.flush()
            sys.exit(2)

    app.run(guarded_main)
