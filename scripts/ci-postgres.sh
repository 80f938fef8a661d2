#!/usr/bin/env bash
# A throwaway PostgreSQL server for the indexer's PostgreSQL tests.
#
#   eval "$(scripts/ci-postgres.sh)"
#
# Installs Debian's postgresql package when no server binaries are present (CI runs as root),
# creates a cluster in a temporary directory (as the postgres user when run as root: initdb
# refuses root), starts it on 127.0.0.1:$GRIDCELL_PG_PORT (default 55432), creates the
# database gridcell_test, and prints shell lines that export GRIDCELL_TEST_DATABASE_URL and
# stop the server when the calling shell exits. Progress goes to stderr.
set -euo pipefail

log() { echo "ci-postgres: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

PG_BIN="$(find_bin)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "no PostgreSQL server binaries under /usr/lib/postgresql and not root: install the postgresql package"
    exit 1
  fi
  log "installing Debian's postgresql package"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
  PG_BIN="$(find_bin)"
fi
log "using $PG_BIN"

PORT="${GRIDCELL_PG_PORT:-55432}"
DIR="$(mktemp -d /tmp/gridcell-pg.XXXXXX)"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$DIR"
  as_pg() { runuser -u postgres -- "$@"; }
  STOP="runuser -u postgres -- $PG_BIN/pg_ctl -D $DIR/data -m fast stop"
else
  as_pg() { "$@"; }
  STOP="$PG_BIN/pg_ctl -D $DIR/data -m fast stop"
fi

as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-sync >&2
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >&2
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres gridcell_test
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $DIR)"

echo "export GRIDCELL_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/gridcell_test"
echo "trap '$STOP >/dev/null 2>&1 || true' EXIT"
