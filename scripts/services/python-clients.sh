#!/usr/bin/env bash
# The real Sentry clients the end-to-end tests drive (Tests/CollectorTests/Clients/send_event.py).
# `start` makes sure python3 can import raven 6.10.0 and sentry-sdk: it uses python3 as it is when
# it already can, else installs them into a virtualenv under $SERVICES_DIR (a system python may
# refuse global installs, PEP 668) and prints the `export BREAKWATER_PYTHON=…` line the tests use.
# `stop` has nothing to stop.
set -euo pipefail
check='import raven, sentry_sdk; assert raven.VERSION == "6.10.0"'
case "${1:-}" in
  start)
    python3 -c "$check" >/dev/null 2>&1 && exit 0
    venv="${SERVICES_DIR:-$PWD/.services}/python-clients"
    if ! "$venv/bin/python3" -c "$check" >/dev/null 2>&1; then
      if ! python3 -m venv "$venv" >&2; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >&2
        python3 -m venv "$venv" >&2
      fi
      "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check 'raven==6.10.0' sentry-sdk >&2
    fi
    echo "export BREAKWATER_PYTHON='$venv/bin/python3'"
    ;;
  stop) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
