#!/bin/sh
# Restart authsocket@PORT units one at a time, each only after the previous
# one answers /readyz, so nginx always has a live upstream and every client
# closed with 4503 finds a process to reconnect to.
#   deploy/rolling-restart.sh 8001 8002
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 PORT [PORT...]" >&2; exit 2; }
for port in "$@"; do
    echo "restarting authsocket@$port"
    systemctl restart "authsocket@$port"
    tries=0
    until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            echo "authsocket@$port not ready after 30 s; stopping here" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "authsocket@$port ready"
done
