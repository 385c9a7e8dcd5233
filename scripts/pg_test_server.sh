#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the team-mode tests and print its URL.
#   eval "$(scripts/pg_test_server.sh start)"   # exports CURATION_TEST_PG_URL
#   scripts/pg_test_server.sh stop
# Installs Debian's postgresql when it is missing (needs root and the package registry). The data
# folder lives under ${PG_TEST_DIR:-/tmp/curation-pg}; trust authentication on 127.0.0.1 only, so
# no password is stored anywhere.
set -euo pipefail
DIR="${PG_TEST_DIR:-/tmp/curation-pg}"
PORT="${PG_TEST_PORT:-54329}"

bindir() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$b" ] && echo "$b"
}

as_owner() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if [ -z "$(bindir)" ]; then
      echo "installing postgresql (Debian)..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    BIN=$(bindir)
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      rm -rf "$DIR"
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres "$DIR"
      as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c fsync=off" start >/dev/null
    fi
    echo "export CURATION_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    BIN=$(bindir)
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
