"""Prometheus metrics, labelled by model name and version."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


class _Off:
    """A metric that counts nothing: SWARMML_METRICS=off (how scripts/bench_inference.py measures what
    the metrics cost). The request path calls the same methods either way: no branch to measure."""

    def inc(self, amount=1):
        pass

    def dec(self, amount=1):
        pass

    def observe(self, value):
        pass

    def labels(self, *values):
        return self


OFF = _Off()


class Metrics:
    def __init__(self, enabled=True):
        self.enabled = enabled
        self.registry = CollectorRegistry()
        labels = ("model", "version")
        r = self.registry
        self.success = Counter("swarmml_infer_success", "Successful inference requests", labels, registry=r)
        self.failure = Counter("swarmml_infer_failure", "Failed inference requests", labels + ("code",), registry=r)
        self.request = Histogram("swarmml_infer_request_seconds", "Request duration", labels,
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("swarmml_infer_queue_seconds", "Time waiting for a batch", labels,
                               buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram("swarmml_infer_compute_seconds", "Time in predict per call", labels,
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch = Histogram("swarmml_infer_batch_rows", "Rows per predict call", labels,
                               buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("swarmml_infer_in_flight", "Inference requests in flight", labels, registry=r)
        self.log_dropped = Counter("swarmml_inference_log_dropped", "Inference log lines not written", registry=r)

    def for_model(self, name, version):
        """Label children bound once per model: labels() is too slow per request."""
        return ModelMetrics(self, name, version) if self.enabled else OffMetrics(name, version)

    def render(self):
        return generate_latest(self.registry)


class ModelMetrics:
    def __init__(self, m, name, version):
        self.parent, self.name, self.version = m, name, version
        self.success = m.success.labels(name, version)
        self.request = m.request.labels(name, version)
        self.queue = m.queue.labels(name, version)
        self.compute = m.compute.labels(name, version)
        self.batch = m.batch.labels(name, version)
        self.in_flight = m.in_flight.labels(name, version)

    def failed(self, code):
        self.parent.failure.labels(self.name, self.version, str(code)).inc()


class OffMetrics:
    def __init__(self, name, version):
        self.name, self.version = name, version
        self.success = self.request = self.queue = self.compute = self.batch = self.in_flight = OFF

    def failed(self, code):
        pass
