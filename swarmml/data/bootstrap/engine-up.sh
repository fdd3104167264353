#!/usr/bin/env bash
# Make sure a Docker engine answers. Installs Debian's docker.io and starts
# dockerd in the background when none does; a second run does nothing.
set -euo pipefail

LOG=${SWARMML_DOCKERD_LOG:-/var/log/swarmml-dockerd.log}

if docker info >/dev/null 2>&1; then
    echo "engine: already answering ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi

if [ -n "${DOCKER_HOST:-}" ]; then
    echo "engine: DOCKER_HOST=$DOCKER_HOST is set but does not answer; unset it or start that engine" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "engine: no Docker engine answers and starting one needs root; run this script with sudo, or start Docker yourself" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "engine: no Docker engine and no apt-get to install one; install Docker (https://docs.docker.com/engine/install/) and start it" >&2
        exit 1
    fi
    echo "engine: installing Debian's docker.io ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "engine: starting dockerd (log: $LOG)"
    # setsid: the engine must outlive the shell (and the test run) that started it
    setsid nohup dockerd >"$LOG" 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "engine: ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "engine: dockerd did not answer within 60 s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
