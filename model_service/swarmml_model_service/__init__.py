"""An Open Inference Protocol (KServe V2) REST server for scikit-learn models."""

__version__ = "0.1.0"
