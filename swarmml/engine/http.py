"""Plain GETs to services the swarm runs, e.g. Prometheus: not the engine, but what the autoscaler reads.

Plain data out: a body as text, or one error line.
"""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request


def http_get(url: str, timeout: float = 1.0, limit: int = 1 << 20) -> tuple[str | None, str | None]:
    """(body, None) or (None, one-line error) for a GET: a replica's /metrics or a Prometheus query."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read(limit).decode("utf-8", errors="replace"), None
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, f"{url}: {str(reason).strip() or type(exc).__name__}"


def query_url(base: str, query: str) -> str:
    return base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
