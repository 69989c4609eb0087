#!/usr/bin/env bash
# Install what the tests need, then lint and run the test suite.
#   bash tools/test.sh [extra pytest arguments]
# Hercules 3.13 utilities (dasdinit, dasdload, dasdls, dasdcat, ...) are the test oracle;
# they are installed from the distribution when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dasdinit >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y hercules
fi

python -m pip install -e '.[test]'
ruff check .
ruff format --check .
exec python -m pytest -q "$@"
