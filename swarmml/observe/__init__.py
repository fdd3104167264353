"""Seeing what runs: live status, logs and inference logs, and Prometheus.

- top.py: the model service's /metrics and the gateway's stats -> per-replica rates (pure);
- topview.py: one `swarmml top` snapshot from the engine, the replicas and the gateway;
- logs.py, logstream.py: service logs, merged across replicas in time order, and followed;
- inference_logs.py, inference_fetch.py: the model service's inference log, parsed and fetched from replicas;
- prometheus.py: the scrape configuration and recording rules for the Prometheus swarmml deploys.
"""
