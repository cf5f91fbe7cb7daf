#!/usr/bin/env bash
# The real Sentry clients the end-to-end tests drive (Tests/CollectorTests/Clients/send_event.py).
# `start` installs them when missing and prints nothing for scripts/test to eval; `stop` has nothing to stop.
set -euo pipefail
case "${1:-}" in
  start)
    if ! python3 -c 'import raven, sentry_sdk' >/dev/null 2>&1 \
       || [ "$(python3 -c 'import raven; print(raven.VERSION)')" != "6.10.0" ]; then
      python3 -m pip install --quiet --disable-pip-version-check 'raven==6.10.0' sentry-sdk >&2
    fi
    ;;
  stop) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
