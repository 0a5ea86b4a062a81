#!/usr/bin/env bash
# The one lint command: ruff (lint + format check) and mypy --strict.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
