#!/usr/bin/env bash
# Set up what is missing, then lint and run the whole test suite: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check perslm_voice tests scripts
.venv/bin/ruff format --check perslm_voice tests scripts
.venv/bin/python scripts/gen_default_config.py --check
# pytest exits 5 when it collected no test: that is a failure here too.
set +e
.venv/bin/python -m pytest -q -ra "$@"
rc=$?
[ "$rc" = 5 ] && echo "no tests were collected" >&2
exit "$rc"
