#!/usr/bin/env bash
# Install Valkey 8 (Debian bookworm-backports) when it is missing, so that
# make test also runs the suite against valkey-server. Used by CI; on a
# workstation, make test skips the Valkey pass when valkey-server is absent.
set -euo pipefail
if command -v valkey-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "valkey-server is missing and this user cannot install packages; the Valkey pass will be skipped." >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! grep -q bookworm /etc/os-release 2>/dev/null; then
  echo "valkey-server is missing and this is not Debian bookworm; the Valkey pass will be skipped." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
# The package may start a system service on 6379; filecast's tests never use it.
echo "installed $(valkey-server --version | cut -d' ' -f1-3)" >&2
