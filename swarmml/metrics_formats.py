"""Pure: the one reader of each metrics format that swarmml reads, and the one histogram quantile.

- Prometheus text exposition (the model service's /metrics), read by prometheus_client's own parser;
- a histogram's q-quantile from its cumulative buckets, as Prometheus's histogram_quantile computes it;
- HAProxy's statistics CSV (the gateway's `/stats;csv`).

`swarmml top` and the autoscaler (swarmml/autoscale/signals.py) read through these, and the Prometheus
recording rules (swarmml/observe/prometheus.py) name the same metrics, so a fix here reaches all three.

Every reader raises BadMetrics, one line naming the problem, on text it cannot read. What a caller does
with it is the caller's: the autoscaler reports the replica as unknown with that line; top shows '-' for
that page and goes on with the others.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping

# The model service's metrics (model_service/swarmml_model_service/metrics.py declares them; the model
# service does not import swarmml, so tests/unit/test_metrics_formats.py checks its output against these).
IN_FLIGHT = "swarmml_infer_in_flight"  # gauge
REQUEST_SECONDS = "swarmml_infer_request_seconds"  # histogram: _bucket{le=...}, _count, _sum
SUCCESS_TOTAL = "swarmml_infer_success_total"  # counter
FAILURE_TOTAL = "swarmml_infer_failure_total"  # counter, also labelled by status code

Sample = tuple[str, dict[str, str], float]  # (name, labels, value)


class BadMetrics(ValueError):
    """The text is not the format asked for, or lacks what its reader needs."""


# --- Prometheus text exposition ------------------------------------------------------------------

def read_prometheus_text(text: str) -> list[Sample]:
    """Prometheus text exposition -> [(name, labels, value)] in the page's order; timestamps dropped.

    The whole page or nothing: BadMetrics naming the first line that is not a sample, a comment or
    blank. A page with one bad line is not a page to trust (a proxy's error page, a truncated read),
    and a reader that skipped lines would count a partial histogram as a whole one.

    Counter samples come out named as OpenMetrics names them, with `_total` (the parser adds it to a
    counter declared without it); the model service's counters already end in `_total`.
    """
    # Imported here: prometheus_client's package brings its HTTP exposition server with it (~0.1 s),
    # and every `swarmml` command imports top; only a command that reads a page pays for it.
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return [(s.name, s.labels, float(s.value)) for family in text_string_to_metric_families(text)
                for s in family.samples]
    except ValueError as exc:  # the parser's only complaint; it does not say where
        where = _first_unreadable_line(text)
        said = f"line {where[0]} is not Prometheus text: {where[1].strip()[:60]!r}" if where else \
            "not Prometheus text"
        raise BadMetrics(f"{said} ({_reason(exc)})") from None


def _first_unreadable_line(text: str) -> tuple[int, str] | None:
    """The number and text of the first line the parser refuses on its own.

    Each of its complaints is about one line (a sample, or a HELP or TYPE comment), never about how
    lines go together, so that is the line at fault; counting the lines it read would not do, as it
    finds a bad TYPE only when the next family starts. Only a page already refused pays for this.
    """
    from prometheus_client.parser import text_string_to_metric_families

    for number, line in enumerate(text.split("\n"), 1):  # lines as the parser splits them: at \n only
        try:
            list(text_string_to_metric_families(line))
        except ValueError:
            return number, line
    return None


def _reason(exc: Exception) -> str:
    # Some of the parser's errors carry no message, some repeat the whole line: keep the line short.
    said = " ".join(str(exc).split())
    return said[:80] if said else "unreadable"


def bucket_bound(labels: Mapping[str, str]) -> float:
    """A histogram bucket's upper bound, from its `le` label ("+Inf" for the last); BadMetrics without one."""
    try:
        bound = float(labels["le"])
    except (KeyError, ValueError):
        bound = math.nan
    if math.isnan(bound):
        raise BadMetrics(f"a histogram bucket without a numeric le label: {dict(labels)}")
    return bound


# --- histogram quantile --------------------------------------------------------------------------

def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile (0..1) of a histogram's cumulative buckets {le: count}, as Prometheus's
    histogram_quantile computes it; None wherever Prometheus would answer NaN (no answer from these
    buckets: none, no +Inf bucket, only the +Inf bucket, no observations).

    Linear within the bucket the rank falls in, from 0 for the first bucket (or its bound, when that
    is 0 or below); in the +Inf bucket, the last finite bound, the most that is known. q below 0 or
    above 1 gives -Inf or +Inf, as in Prometheus.

    This replaces two copies (top's and the autoscaler's) that agreed on every case their tests pin
    and differed from Prometheus, and a little from each other, elsewhere. Prometheus won throughout,
    because the recording rules (swarmml/observe/prometheus.py) compute the same figures with it and top, the
    autoscaler and a dashboard should show one number:
    - only a +Inf bucket: both copies said 0.0, which reads as "instant" (and would let a p95 target
      scale a service down); Prometheus, and now this, has no answer;
    - no +Inf bucket: both copies took the highest finite bucket as the total; Prometheus does not;
    - non-monotonic buckets (top adds up the replicas' histograms; replicas of two versions with
      different bounds do not add up): both copies interpolated nonsense; Prometheus, and now this,
      takes the running maximum;
    - q above 1: top's copy said +Inf, the autoscaler's the last finite bound; Prometheus says +Inf.
    """
    if math.isnan(q):
        return None
    if q < 0 or q > 1:
        return -math.inf if q < 0 else math.inf
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts = _running_max([buckets[le] for le in bounds])
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    for i, (le, count) in enumerate(zip(bounds[:-1], counts)):
        if count < rank:
            continue
        if i == 0 and le <= 0:
            return le  # no natural lower bound below a bucket that ends at 0 or under it
        lower, below = (bounds[i - 1], counts[i - 1]) if i else (0.0, 0.0)
        if count == below:  # only q == 0 over an empty first bucket: Prometheus's 0/0
            return None
        return lower + (le - lower) * (rank - below) / (count - below)
    return bounds[-2]


def _running_max(counts: list[float]) -> list[float]:
    out: list[float] = []
    for c in counts:
        out.append(max(c, out[-1]) if out else c)
    return out


# --- HAProxy statistics CSV ----------------------------------------------------------------------

def read_haproxy_stats(text: str) -> list[dict[str, str]]:
    """HAProxy's statistics CSV (`/stats;csv`) -> one dict per row (frontend, backend or server), keyed
    by the header's column names; a row shorter than the header lacks the keys it does not reach.

    BadMetrics when the text is not that CSV: its first line is `# pxname,svname,...`.
    """
    body = text.lstrip()
    if not body.startswith("# "):
        raise BadMetrics("not HAProxy statistics CSV")
    try:
        table = list(csv.reader(io.StringIO(body[2:])))
    except csv.Error as exc:
        raise BadMetrics(f"unreadable HAProxy statistics CSV: {exc}") from None
    if not table or table[0][:2] != ["pxname", "svname"]:
        raise BadMetrics("not HAProxy statistics CSV: its header does not start with pxname,svname")
    header = table[0]
    return [dict(zip(header, row)) for row in table[1:] if row]
