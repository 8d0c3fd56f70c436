"""Errors a user can act on.

Every error that reaches the command line is a `BenchError`: its message is one paragraph that
names the thing that is wrong and says how to fix it. The CLI prints it without a traceback.
"""


class BenchError(Exception):
    """A problem with the user's input or environment, explained in plain words."""


class UnknownNameError(BenchError, KeyError):
    """A model, dataset, task or profile name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(BenchError):
    """Missing, corrupt or malformed data on disk."""


class ConfigError(BenchError):
    """A configuration value or override that cannot be used."""


class BenchWarning(UserWarning):
    """Something the user should know that does not stop the command (an unreadable record skipped).
    The CLI prints it as one yellow paragraph, without the warning machinery's file and line."""
