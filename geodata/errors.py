"""Errors a user can act on, raised by every package and turned into answers in one place.

Domain code raises these with a message that says what was wrong and what
to do; the API maps them to HTTP statuses (:mod:`api.errors`), the command
line prints the message and exits 1. Nothing here knows about HTTP.

>>> err = InvalidInput("the 2025 structure has no district level", loc=("query", "level"))
>>> err.as_detail()
[{'loc': ['query', 'level'], 'msg': 'the 2025 structure has no district level', 'type': 'value_error'}]
"""

from __future__ import annotations

from collections.abc import Sequence


class LabourAtlasError(Exception):
    """Base of the errors below; ``str(error)`` is the message for the user."""


class NotFound(LabourAtlasError):
    """The thing asked for does not exist, or the caller may not know it exists."""


class Conflict(LabourAtlasError):
    """The request contradicts what is stored (a name taken, an id used by other data, a state already reached)."""


class PermissionDenied(LabourAtlasError):
    """The caller is known but may not do this."""


class InvalidInput(LabourAtlasError):
    """A value the caller sent is wrong; ``loc`` says where (e.g. ``("query", "level")``)."""

    def __init__(self, message: str, loc: Sequence[str | int] = (), type: str = "value_error") -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.type = type

    def as_detail(self) -> list[dict[str, object]]:
        """The error as FastAPI's validation detail: ``[{"loc": [...], "msg": ..., "type": ...}]``."""
        return [{"loc": list(self.loc), "msg": str(self), "type": self.type}]


class Locked(LabourAtlasError):
    """Locked for a while (an account after repeated failed sign-ins); the message says for how long."""


class Refused(LabourAtlasError):
    """A request that cannot be carried out as sent (a body of the wrong kind, an administrator disabling itself)."""


class TooLarge(LabourAtlasError):
    """What was sent is larger than a configured limit (the message names it)."""


class Unavailable(LabourAtlasError):
    """What was asked for cannot be served now (a release that failed its audit); the operators have the details."""


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached now (down, restarting, overloaded); the same request later will work.

    ``retry_after``: seconds after which trying again makes sense.

    >>> DatabaseUnavailable("the database is restarting", retry_after=5).retry_after
    5
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
