"""Server settings from the environment (the image sets the defaults)."""
import os
from dataclasses import dataclass, field


def _env(name, default):
    return os.environ.get(name, default)


@dataclass
class Settings:
    models_dir: str = field(default_factory=lambda: _env("SWARMML_MODELS_DIR", "/models"))
    models: list = field(default_factory=lambda: [m for m in _env("SWARMML_MODELS", "").split(",") if m])
    host: str = field(default_factory=lambda: _env("SWARMML_HOST", "0.0.0.0"))
    port: int = field(default_factory=lambda: int(_env("SWARMML_PORT", "8080")))
    trusted_types_file: str = field(default_factory=lambda: _env("SWARMML_TRUSTED_TYPES_FILE",
                                                                 "/etc/swarmml/trusted-types.txt"))
    trusted_types: str = field(default_factory=lambda: _env("SWARMML_TRUSTED_TYPES", ""))
    allow_pickle: bool = field(default_factory=lambda: _env("SWARMML_ALLOW_PICKLE", "0") == "1")
    batching: str = field(default_factory=lambda: _env("SWARMML_BATCHING", "auto"))  # auto|on|off
    max_batch_size: int = field(default_factory=lambda: int(_env("SWARMML_MAX_BATCH_SIZE", "64")))
    max_batch_wait_ms: float = field(default_factory=lambda: float(_env("SWARMML_MAX_BATCH_WAIT_MS", "0.5")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("SWARMML_MAX_BODY_BYTES", str(4 << 20))))
    # The health port: see health.py for why it is not the serving port.
    health_port: int = field(default_factory=lambda: int(_env("SWARMML_HEALTH_PORT", "8081")))
    health_stall_s: float = field(default_factory=lambda: float(_env("SWARMML_HEALTH_STALL_S", "10")))
    drain_timeout_s: int = field(default_factory=lambda: int(_env("SWARMML_DRAIN_TIMEOUT_S", "25")))
    # A JSON-lines file per replica on a volume (inference_log.py); empty: no inference log.
    inference_log: str = field(default_factory=lambda: _env("SWARMML_INFERENCE_LOG", ""))
    inference_log_sample: float = field(default_factory=lambda: float(_env("SWARMML_INFERENCE_LOG_SAMPLE", "0")))
    inference_log_max_bytes: int = field(default_factory=lambda: int(_env("SWARMML_INFERENCE_LOG_MAX_BYTES",
                                                                          str(64 << 20))))
    inference_log_keep: int = field(default_factory=lambda: int(_env("SWARMML_INFERENCE_LOG_KEEP", "3")))
    # off: count nothing (/metrics stays empty): what scripts/bench_inference.py compares the default with.
    metrics: bool = field(default_factory=lambda: _env("SWARMML_METRICS", "on") != "off")
