#!/usr/bin/env bash
# Set up (first time) and run Stagekeeper on the embedded default: SQLite event store in
# ./stagekeeper.db, simulated vCenter, local admin. Extra arguments go to `stagekeeper serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/stagekeeper serve "$@"
