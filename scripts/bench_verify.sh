#!/usr/bin/env bash
# Benchmark: the scaling curve (1, 2, 4, 6 replicas at 0.25 CPU each) and the
# node-loss drill, on the local 3-node cluster. Writes the report to $1.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-verify}
swarmml cluster up --nodes 3 >/dev/null
swarmml build --push >/dev/null
swarmml deploy docker-stack.yml >/dev/null
swarmml scale predictor 6 >/dev/null
swarmml verify predictor --steps 1,2,4,6 --cpus 0.25 --duration "${DURATION:-15}" --drill node-loss --report "$OUT"
