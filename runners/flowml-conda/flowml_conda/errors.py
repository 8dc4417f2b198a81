"""The one error this plugin raises for a fault in the user's files."""

from __future__ import annotations


class CondaInputError(Exception):
    """A fault in environment.yml or the lock file; ``field`` is the key of the environment's
    mapping in pipeline.yaml that names the file (``file`` or ``lock``), and the message says
    where in that file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
