#!/usr/bin/env bash
# Start a Docker engine if none answers (the same script `swarmml cluster up` runs).
exec bash "$(dirname "$0")/../swarmml/data/bootstrap/engine-up.sh" "$@"
