#!/usr/bin/env bash
# Make sure the PostgreSQL *server* binaries (initdb, pg_ctl) exist: the NAS tests start a throwaway
# server with them (tests/test_nas_postgres.py). Installs the distribution's package only when they are
# missing, so it is cheap to call before every `make test`. Debian/Ubuntu (apt-get) only; elsewhere it
# says what to install. Needs root or sudo for the install itself.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || { command -v initdb && command -v pg_ctl; } > /dev/null; then
    exit 0
fi
if ! command -v apt-get > /dev/null; then
    echo "ensure_postgres: initdb/pg_ctl not found and no apt-get here; install the PostgreSQL server" \
         "(e.g. 'brew install postgresql' or 'dnf install postgresql-server') and put its bin/ on PATH" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ensure_postgres: installing the PostgreSQL server with apt-get" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql > /dev/null
