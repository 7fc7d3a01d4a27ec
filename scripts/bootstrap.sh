#!/usr/bin/env bash
# Set up (or refresh) the virtual environment in .venv: torch 2.13.0 first, then reprlab.
# Idempotent: a second run only checks what is installed.
#   bash scripts/bootstrap.sh        # runtime dependencies
#   bash scripts/bootstrap.sh test   # plus the test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip's own lines (Collecting / Installing / Successfully installed) show the progress; the rest is noise.
pip_install() {
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 \
    | grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR|error)' \
    | sed -u 's/^/  pip: /' || true
}
# torch must come before anything that depends on it, pinned, so pip takes the local CPU build.
if ! .venv/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
  echo "bootstrap: installing torch 2.13.0 (CPU build; about a minute)"
  pip_install torch==2.13.0
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
stamp=".venv/.reprlab-installed${extras}"
digest="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "bootstrap: installing reprlab${extras} and its dependencies at the versions in constraints.txt"
  pip_install -c constraints.txt -e ".${extras}"
  .venv/bin/python -c 'import reprlab, torch' || { echo "bootstrap: reprlab does not import; see the pip lines above" >&2; exit 1; }
  echo "$digest" > "$stamp"
fi
echo "bootstrap: .venv is ready"
# The report's browser test needs Debian's chromium (tests/test_report_browser.py).
if [ "${1:-}" = "test" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's chromium for the report's browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "bootstrap: could not install chromium; the browser test will fail until it is installed" >&2
  else
    echo "bootstrap: /usr/bin/chromium is missing; install it (as root: apt-get install chromium) for the report's browser test" >&2
  fi
fi
# The shared-study test starts a throwaway PostgreSQL server (tests/test_search_postgres.py): Debian's postgresql.
if [ "${1:-}" = "test" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's postgresql for the shared-study test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
      || echo "bootstrap: could not install postgresql; the PostgreSQL search test will fail until it is installed" >&2
  else
    echo "bootstrap: PostgreSQL (initdb, pg_ctl) is missing; install it (as root: apt-get install postgresql) for the PostgreSQL search test" >&2
  fi
fi
