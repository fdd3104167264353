"""The service's errors, in one module so that protocol, columns, binary, the data plane and its front ends share them.

A request the service answers with something other than a result raises a
ModelServiceError: a message for people and the HTTP status that carries it.
Front ends map it, each to its own wire (app.py: the status and
{"error": message}); the status is all they need, so a subclass exists only
where a caller must tell one error from another:

- BadRequest (400): the parsers raise it in many places, and their callers
  and tests catch it by type; it stays a ValueError, as it always was.

Not found (404), body too large (413), method not allowed (405), not ready
(503) and inference failed (500) are a ModelServiceError with that status:
nothing catches them apart, so they need no class of their own.

A model that fails to load is not an answer to a request: it stops the
server from starting. ModelError and StartupFailed are outside the hierarchy
on purpose, so that a front end's `except ModelServiceError` can never turn
one into a status, and no status is made up for them.
"""
from typing import Optional


class ModelServiceError(Exception):
    """A request's answer when it is not a result: str() says what is wrong, status_code how HTTP says it."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class BadRequest(ModelServiceError, ValueError):
    """The request is wrong; the message says what and where (a 400)."""

    def __init__(self, message: str):
        super().__init__(message, 400)


class ModelError(Exception):
    """A model could not be loaded; the server does not become ready."""

    def __init__(self, reason: str, file: Optional[str] = None):
        # str() reads "<file>: <reason>" as it always has; the service's log line keeps the two apart.
        super().__init__(f"{file}: {reason}" if file else reason)
        self.reason, self.file = reason, file


class StartupFailed(Exception):
    """Startup failed for reasons already logged, one line each."""
