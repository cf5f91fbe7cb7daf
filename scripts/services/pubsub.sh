#!/usr/bin/env bash
# Google's Pub/Sub emulator on loopback, for the Pub/Sub crash queue tests.
#   eval "$(scripts/services/pubsub.sh start)"   # prints export lines for BREAKWATER_TEST_*
#   scripts/services/pubsub.sh stop
# Only the export lines go to stdout; progress goes to stderr. State lives in $SERVICES_DIR.
# Tests create their own topics and subscriptions (REST, no credentials) in project `test`.
set -euo pipefail
service=pubsub
. "$(dirname "$0")/lib/service.sh"

install() {
  command -v gcloud >/dev/null && dpkg -s google-cloud-cli-pubsub-emulator >/dev/null 2>&1 && return
  echo "installing google-cloud-cli-pubsub-emulator with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! apt-cache policy google-cloud-cli-pubsub-emulator 2>/dev/null | grep Candidate >/dev/null; then
    # Google's apt repository, as documented at https://cloud.google.com/sdk/docs/install#deb
    $SUDO apt-get install -y -qq apt-transport-https ca-certificates gnupg curl >&2
    curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | $SUDO gpg --dearmor --yes -o /usr/share/keyrings/cloud.google.gpg
    echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main" \
      | $SUDO tee /etc/apt/sources.list.d/google-cloud-sdk.list >/dev/null
  fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq google-cloud-cli google-cloud-cli-pubsub-emulator >&2
}

start() {
  if running && [ -f "$envfile" ]; then
    cat "$envfile"
    return
  fi
  install
  port=$(free_port)
  # Its own session, so stop reaches the gcloud wrapper and the java server it spawns.
  CLOUDSDK_CORE_DISABLE_PROMPTS=1 setsid gcloud beta emulators pubsub start --host-port="127.0.0.1:$port" --project=test \
    </dev/null >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/v1/projects/test/topics" >/dev/null 2>&1; then break; fi
    if ! running; then echo "the Pub/Sub emulator exited; see $logfile" >&2; exit 1; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/v1/projects/test/topics" >/dev/null || { echo "the Pub/Sub emulator did not start; see $logfile" >&2; exit 1; }
  echo "export BREAKWATER_TEST_PUBSUB_EMULATOR_HOST=127.0.0.1:$port" >"$envfile"
  echo "export BREAKWATER_TEST_PUBSUB_PROJECT=test" >>"$envfile"
  echo "Pub/Sub emulator running at 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
  cat "$envfile"
}

dispatch "$@"
