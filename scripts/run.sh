#!/usr/bin/env bash
# Set up what is missing, then start the assistant: scripts/run.sh --user you [options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
exec .venv/bin/perslm-voice "$@"
