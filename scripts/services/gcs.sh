#!/usr/bin/env bash
# A Google Cloud Storage emulator (PyPI gcp-storage-emulator) on loopback, in memory, with one
# bucket, for the GCS storage tests.
#   eval "$(scripts/services/gcs.sh start)"   # prints export lines for BREAKWATER_TEST_*
#   scripts/services/gcs.sh stop
# Only the export lines go to stdout; progress goes to stderr. State lives in $SERVICES_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES_DIR="${SERVICES_DIR:-.services}"
mkdir -p "$SERVICES_DIR"
pidfile="$SERVICES_DIR/gcs.pid"
envfile="$SERVICES_DIR/gcs.env"
logfile="$SERVICES_DIR/gcs.log"

# Sets $python: one with the emulator and the client installed, else installed with pip, else in a venv under
# $SERVICES_DIR (for a system Python that refuses global installs, PEP 668). The official
# google-cloud-storage client creates the bucket and reads objects back in the tests.
find_emulator() {
  venv="$SERVICES_DIR/gcs-venv"
  for candidate in python3 "$venv/bin/python"; do
    if "$candidate" -c 'import gcp_storage_emulator, google.cloud.storage' 2>/dev/null; then
      python="$candidate"
      return
    fi
  done
  echo "installing gcp-storage-emulator and google-cloud-storage with pip" >&2
  if python3 -m pip install --quiet gcp-storage-emulator google-cloud-storage >&2; then
    python=python3
  else
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet gcp-storage-emulator google-cloud-storage >&2
    python="$venv/bin/python"
  fi
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if running && [ -f "$envfile" ]; then
    cat "$envfile"
    return
  fi
  find_emulator
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  endpoint="http://127.0.0.1:$port"
  # The emulator serves one connection at a time, so a client's idle pooled connection (an HTTP
  # client opens one for a request that then timed out) stalls it until that connection closes.
  # Run it threaded, one request handled at a time (its store is not thread-safe), so an idle
  # connection only holds its own thread.
  cat >"$SERVICES_DIR/gcs-emulator.py" <<'PY'
import sys
import threading
from http import server as http_server

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.__main__ import main

http_server.HTTPServer = http_server.ThreadingHTTPServer
one_at_a_time = threading.Lock()


def serialised(handler):
    def run(self):
        with one_at_a_time:
            return handler(self)
    return run


for name in ("do_GET", "do_POST", "do_PUT", "do_PATCH", "do_DELETE", "do_HEAD"):
    if hasattr(emulator.RequestHandler, name):
        setattr(emulator.RequestHandler, name, serialised(getattr(emulator.RequestHandler, name)))
sys.argv = ["gcp-storage-emulator"] + sys.argv[1:]
main()
PY
  setsid "$python" "$SERVICES_DIR/gcs-emulator.py" start --host=127.0.0.1 --port="$port" --in-memory </dev/null >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  STORAGE_EMULATOR_HOST="$endpoint" "$python" - >&2 <<'PY'
import time
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
deadline = time.time() + 30
while True:
    try:
        storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket("breakwater-test")
        break
    except Exception as error:
        if time.time() > deadline:
            raise SystemExit(f"gcp-storage-emulator did not start: {error}")
        time.sleep(0.2)
PY
  {
    echo "export BREAKWATER_TEST_GCS_EMULATOR_HOST=$endpoint"
    echo "export BREAKWATER_TEST_GCS_BUCKET=breakwater-test"
    echo "export BREAKWATER_TEST_GCS_PYTHON=$python"
  } >"$envfile"
  echo "gcp-storage-emulator running at $endpoint (pid $(cat "$pidfile"))" >&2
  cat "$envfile"
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    echo "gcp-storage-emulator stopped" >&2
  fi
  rm -f "$pidfile" "$envfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
