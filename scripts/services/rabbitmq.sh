#!/usr/bin/env bash
# A private RabbitMQ node for tests and local runs: its own node name, ports and data folder
# under $SERVICES_DIR (default .services/), so it never collides with a system broker or
# another checkout. No systemd: the Erlang binaries are called directly.
#
#   eval "$(scripts/services/rabbitmq.sh start)"   start (installing rabbitmq-server if missing), print exports
#   scripts/services/rabbitmq.sh stop              stop the node and its epmd
#   scripts/services/rabbitmq.sh stop-app|start-app  take the broker down and up again, node kept (tests)
#   scripts/services/rabbitmq.sh status
#
# `start` prints, for `eval`:
#   BREAKWATER_TEST_RABBITMQ_URL        amqp://breakwater:<password>@127.0.0.1:<port>/breakwater
#   BREAKWATER_TEST_RABBITMQ_TLS_URL    the same over TLS: amqps://breakwater:<password>@localhost:<tls port>/breakwater
#   BREAKWATER_TEST_RABBITMQ_CA         the CA (PEM) that signed the node's TLS certificate
#   BREAKWATER_TEST_RABBITMQ_STOP_APP   shell command stopping the broker (node stays up)
#   BREAKWATER_TEST_RABBITMQ_START_APP  shell command starting it again and waiting until it answers
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVICES_DIR="${SERVICES_DIR:-.services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
D="$SERVICES_DIR/rabbitmq"
BIN=/usr/lib/rabbitmq/bin
VHOST=breakwater
USER_NAME=breakwater

log() { echo "rabbitmq.sh: $*" >&2; }

install_if_missing() {
    if [ -x "$BIN/rabbitmq-server" ] && [ -f /usr/include/amqp.h ]; then return; fi
    log "installing rabbitmq-server librabbitmq-dev"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rabbitmq-server librabbitmq-dev >&2
}

port_free() { [ -z "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if port_free "$p"; then echo "$p"; return; fi
    done
    log "no free port found"; exit 1
}

# The node's environment; ports are chosen once and kept in $D/ports.
node_env() {
    if ! grep -q TLS_PORT "$D/ports" 2>/dev/null; then
        mkdir -p "$D"
        echo "AMQP_PORT=$(free_port) TLS_PORT=$(free_port) DIST_PORT=$(free_port) EPMD_PORT=$(free_port)" > "$D/ports"
    fi
    # shellcheck disable=SC1091
    eval "$(cat "$D/ports")"
    NODE="breakwater-$(echo -n "$D" | cksum | cut -d' ' -f1)@localhost"
    export HOME="$D" RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_MNESIA_BASE="$D/mnesia" RABBITMQ_LOG_BASE="$D/log" RABBITMQ_PID_FILE="$D/pid" \
        RABBITMQ_CONFIG_FILE="$D/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$D/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins" RABBITMQ_CONF_ENV_FILE="$D/rabbitmq-env.conf" \
        RABBITMQ_PLUGINS_EXPAND_DIR="$D/plugins-expand"
}

ctl() { "$BIN/rabbitmqctl" -q -n "$NODE" "$@"; }

# The OS pid of a node started from $D that is still alive, if any: two nodes on one data
# folder corrupt each other's message store, so it is found even when it does not answer.
node_pid() {
    local pid
    pid=$(cat "$D/node.pid" 2>/dev/null) || return 1
    { tr '\0' '\n' < "/proc/$pid/environ" | grep -x "HOME=$D" >/dev/null; } 2>/dev/null && echo "$pid"
}

# The Erlang node answers (its broker app may be stopped: see stop-app).
running() { ctl ping >/dev/null 2>&1; }

password() {
    [ -f "$D/password" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/password"
    cat "$D/password"
}

# A throwaway CA and a certificate for localhost signed by it, for the TLS listener.
make_tls() {
    local t="$D/tls"
    [ -f "$t/server.pem" ] && return
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=breakwater test CA" \
        -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$t/san.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
        -extfile "$t/san.ext" -out "$t/server.pem" 2>/dev/null
}

print_exports() {
    echo "export BREAKWATER_TEST_RABBITMQ_URL='amqp://$USER_NAME:$(password)@127.0.0.1:$AMQP_PORT/$VHOST'"
    echo "export BREAKWATER_TEST_RABBITMQ_TLS_URL='amqps://$USER_NAME:$(password)@localhost:$TLS_PORT/$VHOST'"
    echo "export BREAKWATER_TEST_RABBITMQ_CA='$D/tls/ca.pem'"
    echo "export BREAKWATER_TEST_RABBITMQ_STOP_APP='SERVICES_DIR=$SERVICES_DIR $SCRIPT stop-app'"
    echo "export BREAKWATER_TEST_RABBITMQ_START_APP='SERVICES_DIR=$SERVICES_DIR $SCRIPT start-app'"
}

start() {
    install_if_missing
    node_env
    if running; then
        # A test run killed between stop-app and start-app leaves the broker app stopped.
        # (start_app only then: calling it on a running broker is not a clean no-op.)
        if ! "$BIN/rabbitmq-diagnostics" -q -n "$NODE" is_running | grep "fully booted and running" >/dev/null; then
            ctl start_app >&2 && ctl await_startup >&2
        fi
        log "already running ($NODE, port $AMQP_PORT)"
        print_exports
        return
    fi
    if pid=$(node_pid); then
        log "a node using $D is still running (pid $pid) but does not answer; run: $0 stop"; exit 1
    fi
    mkdir -p "$D/mnesia" "$D/log"
    echo '[].' > "$D/enabled_plugins"
    make_tls
    cat > "$D/rabbitmq.conf" <<CONF
loopback_users = none
listeners.ssl.1 = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $D/tls/ca.pem
ssl_options.certfile = $D/tls/server.pem
ssl_options.keyfile = $D/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    touch "$D/rabbitmq-env.conf"
    # From its own folder, so an erl_crash.dump lands there and not in the checkout.
    (cd "$D" && "$BIN/rabbitmq-server" -detached >"$D/log/start.out" 2>&1)
    if ! ctl wait "$D/pid" --timeout 60 >&2; then
        log "node did not start; see $D/log"; exit 1
    fi
    ctl await_startup >&2
    ctl eval 'list_to_integer(os:getpid()).' > "$D/node.pid"
    ctl add_vhost "$VHOST" >/dev/null 2>&1 || true
    ctl add_user "$USER_NAME" "$(password)" >/dev/null 2>&1 || ctl change_password "$USER_NAME" "$(password)" >/dev/null
    ctl set_permissions -p "$VHOST" "$USER_NAME" '.*' '.*' '.*' >/dev/null
    log "running ($NODE, amqp port $AMQP_PORT, data $D)"
    print_exports
}

stop() {
    node_env
    if running; then ctl stop >&2 || true; fi
    if pid=$(node_pid); then
        kill "$pid"
        for _ in $(seq 1 50); do node_pid >/dev/null || break; sleep 0.2; done
    fi
    rm -f "$D/node.pid"
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    stop-app) node_env; ctl stop_app >&2 ;;
    start-app) node_env; ctl start_app >&2; ctl await_startup >&2 ;;
    status) node_env; if running; then echo "running $NODE port $AMQP_PORT"; else echo "stopped"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|stop-app|start-app|status" >&2; exit 2 ;;
esac
