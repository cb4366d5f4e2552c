#!/usr/bin/env bash
# Set up Labour Atlas on a Debian or Ubuntu machine: PostgreSQL server binaries
# and PostGIS (from apt, only if missing), then a virtualenv in .venv with the
# project and its test tools. Safe to run again: it skips what is there.
#
#   bash scripts/setup.sh          # to run the app
#   bash scripts/setup.sh --test   # also the test tools and headless Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=0
if [ "${1:-}" = "--test" ]; then WITH_TESTS=1; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pg_major() {
  # The newest PostgreSQL server installed in the Debian layout, if any.
  ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1
}

have_server() {
  local major; major=$(pg_major)
  [ -n "$major" ] && [ -x "/usr/lib/postgresql/$major/bin/initdb" ] \
    && [ -f "/usr/share/postgresql/$major/extension/postgis.control" ]
}

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  echo "==> apt-get install $*"
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! have_server; then
  if [ -z "$(pg_major)" ] || [ ! -x "/usr/lib/postgresql/$(pg_major)/bin/initdb" ]; then
    apt_install postgresql
  fi
  apt_install "postgresql-$(pg_major)-postgis-3"
fi
# Headless Chromium drives the web pages in the tests (never a downloaded browser).
if [ "$WITH_TESTS" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
echo "==> PostgreSQL $(pg_major) with PostGIS: ok"

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Labour Atlas needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> installing Python packages into .venv"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
extras=""
if [ "$WITH_TESTS" = 1 ]; then extras="[test]"; fi
.venv/bin/python -m pip install -q -e ".$extras" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import api, geodata, etl, geopandas, fastapi' || { echo "Python install failed" >&2; exit 1; }
echo "==> ready"
