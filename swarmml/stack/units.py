"""Durations, sizes and CPUs as the Docker CLI reads them."""
import re
from decimal import Decimal, InvalidOperation

from swarmml.errors import UsageError

_DUR_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
       "m": 60_000_000_000, "h": 3_600_000_000_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(i?b)?$", re.I)


def duration_ns(text):
    """Go's time.ParseDuration: '1m30s' -> 90_000_000_000; '0' -> 0; a leading sign is allowed."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text * 1_000_000_000
    s = str(text).strip()
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-")
    if body == "0":
        return 0
    parts = _DUR_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise UsageError(f"invalid duration {text!r}")
    return sign * int(sum(Decimal(n) * _NS[u] for n, u in parts))


def size_bytes(value):
    """'512M' -> 536870912: k, m, g, t, p are binary multiples, as in docker's RAMInBytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value).strip())
    if not m:
        raise UsageError(f"invalid size {value!r}")
    mult = 1024 ** "bkmgtp".index((m.group(2) or "b").lower())
    return int(Decimal(m.group(1)) * mult)


def nano_cpus(value):
    """'0.5' -> 500_000_000, refusing more precision than a nano-CPU, as docker's ParseCPUs."""
    try:
        nano = Decimal(str(value).strip()) * 1_000_000_000
    except InvalidOperation:
        raise UsageError(f"invalid number of CPUs {value!r}") from None
    if nano != nano.to_integral_value():
        raise UsageError(f"number of CPUs {value!r} is too precise (at most 9 decimals)")
    return int(nano)
