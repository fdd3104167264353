"""Durations and sizes as the Docker CLI reads them."""
import re

from swarmml.errors import UsageError

_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
       "h": 3_600_000_000_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(i?b)?$", re.I)


def duration_ns(text):
    """'1m30s' -> 90_000_000_000 (Go's time.ParseDuration units)."""
    if isinstance(text, int):
        return text * 1_000_000_000
    parts = _DUR.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid duration {text!r}")
    return int(sum(float(n) * _NS[u] for n, u in parts))


def size_bytes(value):
    """'512M' -> 536870912: k, m, g are binary multiples, as in docker's RAMInBytes."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value.strip())
    if not m:
        raise UsageError(f"invalid size {value!r}")
    mult = 1024 ** "bkmgtp".index((m.group(2) or "b").lower())
    return int(float(m.group(1)) * mult)


def nano_cpus(value):
    return int(round(float(value) * 1e9))
