"""What the project's management commands share."""

import argparse


def unicode_text(value: str) -> str:
    """An argparse `type`: text a database and JSON can hold, or a usage error.

    A byte the terminal's encoding cannot decode reaches Python as a lone
    surrogate, which no database driver or JSON value accepts: refused when
    the arguments are read, with a message, rather than with a traceback
    from deep in the driver.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            "not valid Unicode text (a byte the terminal could not decode?)"
        ) from None
    return value
