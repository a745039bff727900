#!/usr/bin/env bash
# Make sure redis-server is installed: filecast's tests and demo start a
# private one (never the one on port 6379). Installs it with apt-get when
# missing, as root or through sudo; otherwise says what to do.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server not found; installing it with apt-get..." >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "error: redis-server is missing and this user cannot install packages." >&2
  echo "Install it (Debian/Ubuntu: sudo apt-get install -y redis-server), then run this again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: redis-server is missing and apt-get is not available; install redis-server (7.0 or newer) with your package manager." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
# The package may start a system service on 6379; filecast never uses it.
command -v redis-server >/dev/null 2>&1 || { echo "error: redis-server still missing after apt-get install" >&2; exit 1; }
echo "installed $(redis-server --version | cut -d' ' -f1-3)" >&2
