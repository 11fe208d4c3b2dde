#!/usr/bin/env bash
# Starts or stops the local AWS world (moto_world.py) on a free loopback port.
#   scripts/emulator.sh start   -> prints the base URL; state in .keyrotor/
#   scripts/emulator.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
state=.keyrotor
mkdir -p "$state"

case "${1:-}" in
  start)
    scripts/setup.sh
    if [[ -f $state/emulator.pid ]] && kill -0 "$(cat "$state/emulator.pid")" 2>/dev/null; then
      echo "http://127.0.0.1:$(cat "$state/emulator.port")"
      exit 0
    fi
    rm -f "$state/emulator.port"
    nohup .venv/bin/python tests/emulator/moto_world.py --port 0 --port-file "$state/emulator.port" \
      >"$state/emulator.log" 2>&1 &
    echo $! > "$state/emulator.pid"
    for _ in $(seq 1 300); do
      [[ -s $state/emulator.port ]] && break
      kill -0 "$(cat "$state/emulator.pid")" 2>/dev/null || { cat "$state/emulator.log" >&2; exit 1; }
      sleep 0.1
    done
    [[ -s $state/emulator.port ]] || { echo "emulator: did not start within 30s" >&2; exit 1; }
    echo "http://127.0.0.1:$(cat "$state/emulator.port")"
    ;;
  stop)
    if [[ -f $state/emulator.pid ]]; then
      kill "$(cat "$state/emulator.pid")" 2>/dev/null || true
      rm -f "$state/emulator.pid" "$state/emulator.port"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
