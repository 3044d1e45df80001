"""The one way the gateway refuses something: :class:`ApiError`, a status and a message for the client."""

from __future__ import annotations


class ApiError(Exception):
    """A request the gateway refuses; ``status`` is the HTTP code, ``message`` one line for the client.

    Raised anywhere (catalog validation, deploy, the experimental API's checks, job routes); the errors
    middleware answers it in the route family's shape, so no handler has to.
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
