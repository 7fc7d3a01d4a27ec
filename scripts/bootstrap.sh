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
MODE="${1:-}"
extras=""
[ "${MODE}" = "test" ] && extras="[test]"
stamp=".venv/.reprlab-installed${extras}"
digest="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "bootstrap: installing reprlab${extras} and its dependencies at the versions in constraints.txt"
  pip_install -c constraints.txt -e ".${extras}"
  .venv/bin/python -c 'import reprlab, torch' || { echo "bootstrap: reprlab does not import; see the pip lines above" >&2; exit 1; }
  echo "$digest" > "$stamp"
fi
echo "bootstrap: .venv is ready"
# Services and programs the tests need, from Debian's packages (installed as root; otherwise say how).
#   apt_need PACKAGE CHECK-COMMAND WHAT-NEEDS-IT
apt_need() {
  [ "${MODE}" = "test" ] || return 0
  if bash -c "$2" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's $1 for $3"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null) \
      || echo "bootstrap: could not install $1; $3 will fail until it is installed" >&2
  else
    echo "bootstrap: $1 is missing; install it (as root: apt-get install $1) for $3" >&2
  fi
}
apt_need chromium "test -x /usr/bin/chromium" "the report's browser test (tests/test_report_browser.py)"
apt_need postgresql "ls /usr/lib/postgresql/*/bin/initdb" "the shared-study test (tests/test_search_postgres.py)"
