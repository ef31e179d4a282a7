#!/bin/sh
# Restart authsocket@PORT units one at a time, each only after the previous
# one answers /readyz, so nginx always has a live upstream and every client
# closed with 4503 finds a process to reconnect to.
#   deploy/rolling-restart.sh 8001 8002
# READY_TIMEOUT (seconds, default 30): how long one unit may take to be ready.
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 PORT [PORT...]" >&2; exit 2; }
ready_timeout=${READY_TIMEOUT:-30}
for port in "$@"; do
    echo "restarting authsocket@$port"
    systemctl restart "authsocket@$port"
    deadline=$(($(date +%s) + ready_timeout))
    # --max-time: a process that accepts but never answers must not hang the
    # roll (/readyz itself answers within its 2 s check timeout).
    until curl -fs --max-time 5 -o /dev/null "http://127.0.0.1:$port/readyz"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "authsocket@$port not ready after $ready_timeout s; stopping here" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "authsocket@$port ready"
done
