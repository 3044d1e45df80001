"""The one way the gateway refuses something: :class:`ApiError`, a status and a message for the client."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator


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


#: What a write fails with when its filesystem is full: no space left, or the user's quota used up.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
STATE_DIR = "the gateway's state directory (state_dir)"
DAGS_FOLDER = "the DAGs folder ([core] dags_folder)"


class StorageFull(ApiError):
    """A write the gateway needs found its filesystem full: 507, naming which of its places (by its setting:
    answers carry no server paths), never a 500 — the operator frees space and the client tries again."""

    def __init__(self, where: str) -> None:
        super().__init__(507, f"No space left: {where} is full; nothing was started or written")
        self.where = where


@contextlib.contextmanager
def full_is_507(where: str) -> Iterator[None]:
    """Turn a write's ENOSPC/EDQUOT into :class:`StorageFull` for ``where``; any other failure is left as it is."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise StorageFull(where) from exc
        raise
