#!/usr/bin/env bash
# Run a hub: install what is missing, build amparo-hub (release), and serve. The
# data folder is AMPARO_HUB_DATA (default ~/.local/share/amparo-hub); the address
# AMPARO_HUB_LISTEN (default 0.0.0.0:8443). Further arguments go to `serve`, e.g.
# --database postgres://amparo@localhost/amparo_hub. The first start prints the
# certificate's fingerprint and a one-time setup code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --hub
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p amparo-hub
exec target/release/amparo-hub serve \
  --data "${AMPARO_HUB_DATA:-$HOME/.local/share/amparo-hub}" \
  --listen "${AMPARO_HUB_LISTEN:-0.0.0.0:8443}" "$@"
