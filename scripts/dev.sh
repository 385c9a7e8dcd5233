#!/usr/bin/env bash
# One entry point for people and CI: sets up .venv once (again when pyproject.toml changes), then
#   scripts/dev.sh app [streamlit args]   start the app on the bundled demo project
#   scripts/dev.sh test [pytest args]     run the test suite (starts a loopback PostgreSQL for the
#                                         team-mode tests when Debian's postgresql is installed)
#   scripts/dev.sh curation ...           any console script of the venv (curation, python, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

setup() {
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  [ -f "$stamp" ] && return 0
  echo "setting up $VENV (first run only; a few minutes)..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first, pinned: the CPU build these machines hold; an unpinned torch pulls a multi-GB CUDA build
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  # dev-only reference for Gwet's AC1 and alpha (tests/test_agreement.py); it pins pandas < 3 and
  # scipy 1.12, which this project does not need, so its own dependencies are left out
  "$VENV/bin/python" -m pip install -q --no-deps "irrCAC==0.4.4"
  touch "$stamp"
}

setup
cmd="${1:-app}"
[ $# -gt 0 ] && shift
case "$cmd" in
  app) exec "$VENV/bin/streamlit" run streamlit_app.py "$@" ;;
  test)
    # team mode: run the store tests on PostgreSQL too, when its server binaries are installed
    if [ -z "${CURATION_TEST_PG_URL:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      eval "$(scripts/pg_test_server.sh start)"
    fi
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) exec "$VENV/bin/$cmd" "$@" ;;
esac
