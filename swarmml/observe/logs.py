"""Pure: the lines of many tasks as one stream, in time order, each naming its service, replica and node.

Nothing here talks to an engine: swarmml/engine/logs.py fetches raw lines,
swarmml/observe/logstream.py runs the followers, and these functions decide what a
line is, where it came from, in which order it is shown and how it looks.
"""
import heapq
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from swarmml.errors import UsageError

# Colors for service prefixes on a terminal, given out in service-name order.
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Source:
    """Where a line comes from: one task of one service on one node."""

    service: str  # the service's name relative to its stack (predictor)
    replica: str  # the slot (3) of a replicated service, the node of a global one
    node: str  # the node's hostname
    task: str  # the task id

    @property
    def prefix(self) -> str:
        return f"{self.service}.{self.replica}@{self.node}"


@dataclass(frozen=True, order=True)
class LogLine:
    time_ns: int  # nanoseconds since the epoch, from the engine's timestamp
    seq: int  # arrival order, which breaks ties so that one task's lines keep their order
    source: Source
    text: str

    def to_json(self) -> dict:
        return {"time": format_time(self.time_ns), "service": self.source.service, "replica": self.source.replica,
                "node": self.source.node, "task": self.source.task, "message": self.text}


def parse_time(stamp: str) -> int:
    """RFC 3339 with up to nanoseconds (2026-12-01T21:38:40.123456789Z) -> nanoseconds since the epoch."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", stamp)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    seconds = int(datetime.fromisoformat(m.group(1) + zone).timestamp())
    return seconds * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


def format_time(time_ns: int) -> str:
    seconds, ns = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns // 1000:06d}Z"


def split_timestamp(raw: str) -> tuple[int, str]:
    """An engine log line with timestamps=1 ("<RFC 3339> <text>") -> (time_ns, text)."""
    stamp, _, text = raw.partition(" ")
    return parse_time(stamp), text.rstrip("\r\n")


def parse_since(value: str, now: float) -> float:
    """--since: a duration back from now (90s, 10m, 2h, 1d, 1h30m) or an RFC 3339 time -> epoch seconds."""
    text = value.strip()
    if re.fullmatch(r"(\d+(\.\d+)?[smhd])+", text):
        return now - sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smhd])", text))
    try:
        return parse_time(text) / 1e9
    except ValueError:
        pass
    raise UsageError(f"--since: expected a duration like 10m or 1h30m, or a time like 2026-12-01T21:00:00Z; "
                     f"got {value!r}")


def compile_grep(pattern: str | None) -> "re.Pattern | None":
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--grep: not a regular expression: {pattern!r} ({exc})") from None


def keep(line: LogLine, grep: "re.Pattern | None") -> bool:
    return grep is None or grep.search(line.text) is not None


def source_for(task: dict, service_name: str, hostnames: dict[str, str]) -> Source:
    """A task (Engine API JSON) -> its Source; service_name is the short name, hostnames maps node id -> name."""
    node_id = task.get("NodeID") or ""
    node = hostnames.get(node_id) or node_id[:12] or "?"
    replica = str(task["Slot"]) if task.get("Slot") else node
    return Source(service_name, replica, node, task["ID"])


def merge(streams: Iterable[Iterable[LogLine]]) -> list[LogLine]:
    """Every task's lines (each already in time order) as one list in time order."""
    return list(heapq.merge(*[sorted(s) for s in streams]))


def colors(services: Iterable[str]) -> dict[str, str]:
    """One color per service, stable for a given set of services."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(services)))}


def render(line: LogLine, width: int = 0, color: str | None = None, timestamps: bool = False) -> str:
    """One line for people: "predictor.3@node2  | text", the prefix padded to width and in color if given."""
    prefix = line.source.prefix.ljust(width)
    if color:
        prefix = f"[{color}]{_escape(prefix)} |[/{color}]"
        text = _escape(line.text)
    else:
        prefix, text = prefix + " |", line.text
    stamp = format_time(line.time_ns) + " " if timestamps else ""
    return f"{prefix} {stamp}{text}"


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


class Reorder:
    """Holds followed lines for a moment so that lines from different tasks come out in time order.

    Lines from several engines arrive in whatever order their streams deliver
    them; each line waits `hold_s` seconds after it arrived, and what is ready
    leaves oldest first. A line never waits longer than hold_s.
    """

    def __init__(self, hold_s: float = 0.3):
        self.hold_s = hold_s
        self._heap: list[tuple[LogLine, float]] = []

    def push(self, line: LogLine, arrived: float) -> None:
        heapq.heappush(self._heap, (line, arrived))

    def ready(self, now: float) -> list[LogLine]:
        """The lines due at `now`: every held line up to the newest one that has waited hold_s, in time order."""
        due = [i for i, (_, arrived) in enumerate(self._heap) if now - arrived >= self.hold_s]
        if not due:
            return []
        newest_due = max(self._heap[i][0] for i in due)
        out = []
        while self._heap and self._heap[0][0] <= newest_due:
            out.append(heapq.heappop(self._heap)[0])
        return out

    def flush(self) -> list[LogLine]:
        out = [heapq.heappop(self._heap)[0] for _ in range(len(self._heap))]
        return out
