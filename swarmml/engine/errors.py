"""Engine errors that keep their kind, and the one place that retries the ones worth retrying.

Every Docker SDK or transport error that leaves swarmml.engine becomes one of
these, with the HTTP status the engine answered (None when it did not answer)
and one line a person can act on. Callers branch on the type, never on the
text: the text is read here, once, where the engine gives nothing better.

- NotFound (404): the object is not there. Never retried.
- Conflict (409), and two kinds the engine reports with other codes:
  - InUse: a network, secret or config still used by a service or task;
  - OutOfSequence: Swarm's "update out of sequence": the object's version
    changed since it was read (often only Swarm recording an update's
    status). Retried by services.update_service, which reads the object again.
- Unavailable (503, or no answer): no leader, a manager restarting, a reset
  connection. Retried.
- EngineError: anything else (a spec the engine refuses, ...). Not retried.
"""
import time

import docker.errors
import requests
import tenacity

from swarmml import errors

ATTEMPTS = 5
WAIT_S = (0.2, 2.0)  # exponential backoff between attempts: first and longest wait
sleep = time.sleep  # tests replace it, so that retries cost no time


class EngineError(errors.SwarmmlError):
    """A call the engine refused or could not answer."""

    def __init__(self, message, status_code=None):
        super().__init__(message)
        self.status_code = status_code


class NotFound(EngineError, errors.NotFound):
    """The engine has no such object (exit code 2, like every unknown name)."""


class Conflict(EngineError):
    """The call conflicts with the object's state: a name taken, a version moved on, an object in use."""


class InUse(Conflict):
    """A network, secret or config that a service or task still uses."""


class OutOfSequence(Conflict):
    """The object changed since it was read; read it again and resend."""


class PushFailed(EngineError):
    """A push the registry or the engine refused; the message is the engine's own text (the caller explains it)."""


class Unavailable(EngineError, errors.EngineUnavailable):
    """The engine could not serve the call now (no leader, restarting, connection lost)."""


# What the engine writes where its status code does not tell the kind (swarmkit errors travel as gRPC
# text inside a 500 or 400): checked in order, lowercase.
_BY_TEXT = (
    ("update out of sequence", OutOfSequence),
    ("is in use by", InUse),
    ("has active endpoints", InUse),
    ("in use by task", InUse),
    ("swarm does not have a leader", Unavailable),
    ("rpc error: code = unavailable", Unavailable),
    ("rpc error: code = deadlineexceeded", Unavailable),
)
_BY_STATUS = {404: NotFound, 409: Conflict, 503: Unavailable}


def explanation(exc):
    """The first line of what the engine (or the transport) said."""
    if isinstance(exc, docker.errors.APIError):
        text = exc.explanation or str(exc)
    else:
        text = str(exc)
    text = text.strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def kind_of(status_code, text):
    """Pure: the EngineError class for an answer's status code and text."""
    lowered = (text or "").lower()
    for fragment, kind in _BY_TEXT:
        if fragment in lowered:
            return kind
    return _BY_STATUS.get(status_code, EngineError)


try:  # the SDK's ssh:// transport
    from paramiko import SSHException as _SSHError
except ImportError:  # pragma: no cover - paramiko is a dependency
    _SSHError = OSError  # type: ignore[misc,assignment]


def classify(what, exc):
    """An EngineError of the right kind for an SDK or transport exception raised while doing `what`."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        kind = NotFound if isinstance(exc, docker.errors.NotFound) else kind_of(status, explanation(exc))
        return kind(f"{what}: {explanation(exc)}", status)
    if isinstance(exc, _SSHError):
        return Unavailable(f"{what}: the engine did not answer over SSH ({explanation(exc)})")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
        return Unavailable(f"{what}: the engine did not answer ({explanation(exc)})")
    return EngineError(f"{what}: {explanation(exc)}")


TRANSIENT = (Unavailable,)


def retrying(kinds=TRANSIENT, attempts=ATTEMPTS):
    """The retry policy: `kinds` are tried again with backoff, up to `attempts` times; others raise at once."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(kinds),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=WAIT_S[0], max=WAIT_S[1]),
        sleep=lambda s: sleep(s),
        reraise=True,
    )


def call(what, fn, *args, retry=TRANSIENT, **kwargs):
    """fn(*args, **kwargs), its errors classified; retried on `retry` kinds (() for no retry)."""
    def once():
        try:
            return fn(*args, **kwargs)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, _SSHError) as exc:
            raise classify(what, exc) from None
    if not retry:
        return once()
    return retrying(retry)(once)
