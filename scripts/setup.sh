#!/usr/bin/env bash
# Install what Amparo needs on Debian/Ubuntu, only what is missing (safe to run
# again). `setup.sh` is enough to build and run the app; `setup.sh --test` adds
# what the tests need (Xvfb, WebKitWebDriver, tauri-driver, axe-core, PostgreSQL);
# `setup.sh --hub` is only what the hub needs (no window toolkit on a server).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_hub=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--hub" ] && want_hub=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Build: a C toolchain, OpenSSL's libcrypto (SQLCipher), WebKitGTK (Tauri).
# libgl1-mesa-dri is only a Recommends of WebKitGTK, but without it the window
# aborts with "Could not create surfaceless EGL display".
packages=(build-essential pkg-config libssl-dev libwebkit2gtk-4.1-dev libgl1-mesa-dri fonts-dejavu-core ca-certificates curl)
if [ "$want_hub" = 1 ]; then packages=(build-essential pkg-config libssl-dev ca-certificates curl); fi
if [ "$want_test" = 1 ]; then
  # xclip: the quick-exit test reads the X clipboard to see it was cleared.
  packages+=(xvfb xauth webkit2gtk-driver xclip)
  # The hub's storage suite runs against a real PostgreSQL: the tests start a
  # throwaway server of their own on loopback with these binaries.
  packages+=(postgresql)
  # Node.js may come from elsewhere (NodeSource, nvm); Debian's only when absent.
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "Installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
fi

if [ "$want_test" = 1 ]; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
  # Pinned: the unpinned install takes a 3.0 alpha.
  if ! tauri-driver --help >/dev/null 2>&1 || ! cargo install --list | grep -q "^tauri-driver v2.1.0"; then
    echo "Installing tauri-driver 2.1.0"
    cargo install tauri-driver --version 2.1.0 --locked
  fi
  if [ ! -f tests/e2e/node_modules/axe-core/axe.min.js ]; then
    echo "Installing axe-core for the accessibility checks"
    npm ci --prefix tests/e2e --no-audit --no-fund
  fi
fi
