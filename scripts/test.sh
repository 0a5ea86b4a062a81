#!/usr/bin/env bash
# Set up (first time) and run every check: lint, then all test tiers
# (unit, contract, integration on PostgreSQL, e2e over HTTP). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
scripts/postgres.sh
scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
