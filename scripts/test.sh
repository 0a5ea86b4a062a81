#!/usr/bin/env bash
# Set up (first time) and run every check: lint, then all test tiers
# (unit, contract, integration on PostgreSQL, e2e over HTTP). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
scripts/postgres.sh
scripts/lint.sh
# Three workers on two cores: much of the suite waits on vCenter (vcsim), PostgreSQL and browsers.
# Each worker takes whole test files (module fixtures stay in one process).
exec .venv/bin/python -m pytest -n "${STAGEKEEPER_TEST_WORKERS:-3}" --dist loadfile "$@"
