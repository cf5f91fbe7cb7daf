#!/usr/bin/env bash
# A Google Cloud Storage emulator (PyPI gcp-storage-emulator) on loopback, in memory, with one
# bucket, for the GCS storage tests.
#   eval "$(scripts/services/gcs.sh start)"   # prints export lines for BREAKWATER_TEST_*
#   scripts/services/gcs.sh stop
# Only the export lines go to stdout; progress goes to stderr. State lives in $SERVICES_DIR.
set -euo pipefail
service=gcs
. "$(dirname "$0")/lib/service.sh"

# The official google-cloud-storage client creates the bucket and reads objects back in the tests.
start() {
  if running && [ -f "$envfile" ]; then
    cat "$envfile"
    return
  fi
  python_with 'import gcp_storage_emulator, google.cloud.storage' gcp-storage-emulator google-cloud-storage
  port=$(free_port)
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

dispatch "$@"
