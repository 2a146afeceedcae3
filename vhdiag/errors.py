"""vhdiag's errors: one line each, saying what is wrong and how to fix it.

The CLI prints ``Error: <message>`` and exits non-zero; tests assert the exact text.
Messages never carry a password: they are built from parts vhdiag chose, not from
connection strings.
"""


class VhdiagError(Exception):
    """Base class; ``str(err)`` is the one-line message shown to the user."""


class ConfigError(VhdiagError):
    """A setting, DSN or argument is malformed."""


class ConnectError(VhdiagError):
    """The monitored database cannot be reached or refuses us."""


class NoAnswerError(ConnectError):
    """The monitored database did not answer within statement_timeout + grace (frozen or
    overloaded): vhdiag gave up on the connection (vhdiag/bounded.py)."""


class CapabilityError(VhdiagError):
    """The server or role lacks something a question needs (extension, preload, grant)."""


class VhdiagWarning(UserWarning):
    """Input vhdiag accepts but that is probably not what the user meant; the CLI prints it as
    one ``Warning: ...`` line on stderr, a notebook shows it as a warning."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver error's own, for SQLAlchemy's
    wrappers), or its class name when the message is empty."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(getattr(exc, "orig", None) or exc).__name__
