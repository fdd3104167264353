#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what it needs, start a
# Docker engine if none answers, then run unit and integration tests against a
# real 3-node swarmml cluster (made and removed by the session).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
bash scripts/engine-up.sh
# Lint and the public API's types first: seconds, and they name the line (rules in pyproject.toml).
python3 -m ruff check .
python3 -m mypy
# The documentation (docs/, mkdocs.yml) in strict mode: a broken link or nav entry fails the run.
site=$(mktemp -d) && python3 -m mkdocs build --strict --quiet --site-dir "$site" && rm -rf "$site"
# Integration tests always run (the cluster fixture fails, never skips, when no engine starts).
exec python3 -m pytest -v --durations=40 "$@"
