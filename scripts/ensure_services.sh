#!/usr/bin/env bash
# The distributed profile runs PostgreSQL and Redis from Debian's packages on loopback; install them
# where missing (the tests and `make distributed-up` need them), like ensure_chromium.sh does for Chromium.
set -euo pipefail
missing=()
if ! command -v pg_ctl >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  missing+=(postgresql)
fi
if ! command -v redis-server >/dev/null; then
  missing+=(redis-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "missing ${missing[*]} and this is not root: install Debian's ${missing[*]} package(s)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# PostgreSQL refuses to run as root: as root, the loopback cluster runs as 'postgres' (the package
# creates it; a PostgreSQL installed otherwise may not have).
if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
