#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and open Amparo. The store lives in
# the OS data folder (~/.local/share/amparo), or in AMPARO_DATA_DIR if set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --package amparo-app --bin amparo-app
