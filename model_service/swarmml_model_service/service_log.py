"""The service's own log on stderr, which is what `swarmml logs` and `docker service logs` show.

One line per event, never one per request, each in one shape:

    level=info event=model-loaded model=iris-rf version=7 sklearn=1.6.1 batching=on inputs=4 outputs=2 ...

`level=` and `event=` always come first, so `swarmml logs ml --grep 'level=error'`
or `--grep 'event=model-load-failed'` finds them; the rest are key=value pairs.
A value with a space, quote, `=` or control character is a JSON string, which
also keeps a traceback on its line: Docker cuts logs at newlines.

Per-request records belong to the inference log (inference_log.py). uvicorn's
access log stays off: a line per request costs CPU a 0.25-CPU replica needs.
"""
import asyncio
import json
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field

_log = logging.getLogger("swarmml_model_service")

# Lines from other loggers reach the same handler; they are named after where they come from.
_FOREIGN_EVENTS = {"uvicorn": "uvicorn", "py": "python-warning"}
_BARE = re.compile(r'[^\s"=\\]+')


def configure(stream=None) -> logging.Handler:
    """The one handler, on the root logger: our lines, uvicorn's (run it with log_config=None) and warnings."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Other libraries' info chatter is not the operator's business; their warnings are.
    root.setLevel(logging.WARNING)
    _log.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler


def info(event: str, **fields) -> None:
    _log.info(event, extra={"fields": fields})


def warning(event: str, **fields) -> None:
    _log.warning(event, extra={"fields": fields})


def error(event: str, exc_info: BaseException | None = None, **fields) -> None:
    """exc_info: an unexpected exception, whose traceback goes on the line as trace=."""
    _log.error(event, exc_info=exc_info, extra={"fields": fields})


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if fields is None:  # another library's record: its text becomes msg=
            event = _FOREIGN_EVENTS.get(record.name.partition(".")[0], record.name)
            fields = {"msg": record.getMessage()}
        else:
            event = record.msg
        parts = [f"level={record.levelname.lower()}", f"event={event}"]
        parts += [f"{key}={logfmt_value(value)}" for key, value in fields.items() if value is not None]
        if record.exc_info:
            parts.append(f"trace={logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def logfmt_value(value) -> str:
    text = str(value)
    if text.isprintable() and _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


@dataclass
class _Kind:
    fields: dict
    unlogged: int = 0  # failures of this kind since its last line
    logged_at: float = field(default=-math.inf)


class Repeats:
    """At most one line per kind of error per `every_s` seconds, however many requests fail that way.

    A failing model fails every request alike, and a line per request would
    both flood the log and take the CPU the replica needs to recover. The first
    failure of a kind is logged at once; the ones after it are counted, and
    the next line of that kind says how many it stands for (count=N, with the
    latest one's fields). That line goes out at the next failure after every_s,
    or from flush(): run_flusher() calls it every every_s, and the drain calls
    it before the replica stops.
    """

    def __init__(self, event: str, every_s: float = 60.0, clock=time.monotonic):
        self.event, self.every_s, self.clock = event, every_s, clock
        self._kinds: dict = {}

    def report(self, kind: tuple, **fields) -> None:
        entry = self._kinds.get(kind)
        if entry is None:
            entry = self._kinds[kind] = _Kind(fields)
        entry.fields = fields
        entry.unlogged += 1
        now = self.clock()
        if now - entry.logged_at >= self.every_s:
            self._emit(entry, now)

    def flush(self, force: bool = False) -> None:
        """Log the counts whose time has come (all of them when force)."""
        now = self.clock()
        for entry in self._kinds.values():
            if entry.unlogged and (force or now - entry.logged_at >= self.every_s):
                self._emit(entry, now)

    async def run_flusher(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.flush()

    def _emit(self, entry: _Kind, now: float) -> None:
        error(self.event, **entry.fields, count=entry.unlogged)
        entry.unlogged, entry.logged_at = 0, now
