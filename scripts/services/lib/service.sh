# Sourced by the service scripts in ../ (moto, gcs, pubsub), after they set $service: the state
# files of the service in $SERVICES_DIR, whether its process runs, a free loopback port, a Python
# with given modules, stop, and the start|stop dispatch. Each script defines its own `start`.
# (A folder of its own, so `scripts/test`'s loop over scripts/services/*.sh never runs it.)
cd "$(dirname "$0")/../.."
SERVICES_DIR="${SERVICES_DIR:-.services}"
mkdir -p "$SERVICES_DIR"
pidfile="$SERVICES_DIR/$service.pid"
envfile="$SERVICES_DIR/$service.env"
logfile="$SERVICES_DIR/$service.log"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Sets $python to a Python that runs the import statement $1: python3, else one in
# $SERVICES_DIR/$service-venv, else python3 after `pip install` of the packages $2…, else a new
# venv with them (for a system Python that refuses global installs, PEP 668).
python_with() {
  local imports=$1 venv="$SERVICES_DIR/$service-venv" candidate
  shift
  for candidate in python3 "$venv/bin/python"; do
    if "$candidate" -c "$imports" 2>/dev/null; then
      python="$candidate"
      return
    fi
  done
  echo "installing $* with pip" >&2
  if python3 -m pip install --quiet "$@" >&2; then
    python=python3
  else
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "$@" >&2
    python="$venv/bin/python"
  fi
}

# Every service is started in a session of its own (setsid): stopping it reaches the children too.
stop() {
  if running; then
    kill -- "-$(cat "$pidfile")" 2>/dev/null || kill "$(cat "$pidfile")"
    echo "$service stopped" >&2
  fi
  rm -f "$pidfile" "$envfile"
}

dispatch() {
  case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
  esac
}
