#!/usr/bin/env bash
# Starts the whole service in the foreground: the local Kafka broker, NODES
# core nodes and the gateway. Ctrl-C (or SIGTERM) stops everything, in order,
# and returns once all of it has exited.
#
# Variables: PORT (gateway, 8080), RPC_PORT (first core node, 7001; node i
# listens on RPC_PORT+i-1), NODES (3), STATE (partitioned or replicated),
# DATA (all state, ./var), BUILD (build), PARTITIONS (12, fixed once the
# broker's journal exists), BROKERS (use this Kafka instead of starting the
# local broker), SESSION_MS (4000) and HEARTBEAT_MS (300): the group session
# against the local broker.
set -uo pipefail

PORT=${PORT:-8080}
RPC_PORT=${RPC_PORT:-7001}
NODES=${NODES:-3}
STATE=${STATE:-partitioned}
SESSION_MS=${SESSION_MS:-4000}
HEARTBEAT_MS=${HEARTBEAT_MS:-300}
DATA=${DATA:-./var}
BUILD=${BUILD:-build}
PARTITIONS=${PARTITIONS:-12}
BROKERS=${BROKERS:-}

mkdir -p "$DATA"
pids=()

stop_all() {
  trap - INT TERM
  echo "run: stopping" >&2
  # Gateway and cores first (they flush to Kafka), the broker last (it
  # journals what it holds before it exits).
  local broker_pid=${pids[0]:-}
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null; done
  if [ -n "$broker_pid" ]; then  # empty when BROKERS named a Kafka of the user's
    kill -TERM "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null
  fi
  echo "run: stopped" >&2
  exit 0
}
trap stop_all INT TERM

kafka_opts=()
if [ -z "$BROKERS" ]; then
  rm -f "$DATA/kafka/bootstrap"
  "$BUILD/tests/profile-kafka-broker" --data "$DATA/kafka" --partitions "$PARTITIONS" >/dev/null &
  pids+=($!)
  for _ in $(seq 300); do
    [ -s "$DATA/kafka/bootstrap" ] && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "run: the local broker failed to start" >&2; exit 1; }
    sleep 0.1
  done
  BROKERS=$(head -n1 "$DATA/kafka/bootstrap")
  # The local broker answers an empty fetch only after fetch.wait.max.ms and
  # needs a session of at least ~3.5 s (see the README).
  kafka_opts=(--consumer fetch.wait.max.ms=1 --consumer session.timeout.ms="$SESSION_MS"
              --consumer heartbeat.interval.ms="$HEARTBEAT_MS" --kafka reconnect.backoff.max.ms=1000)
else
  pids+=("")
fi

cores=()
for i in $(seq 1 "$NODES"); do
  addr="tcp://127.0.0.1:$((RPC_PORT + i - 1))"
  cores+=(--core "$addr")
  "$BUILD/profiled" --listen "$addr" --brokers "$BROKERS" --data "$DATA/core$i" \
    --node-id "node$i" --partitions "$PARTITIONS" --state "$STATE" "${kafka_opts[@]}" &
  pids+=($!)
done
"$BUILD/profile-gateway" --address 127.0.0.1 --port "$PORT" "${cores[@]}" &
pids+=($!)

echo "Kafka bootstrap: $BROKERS"
echo "Gateway:         http://localhost:$PORT/   (Ctrl-C stops everything)"

# Exit when any part dies (and take the rest down), or on a signal.
while :; do
  for pid in "${pids[@]}"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "run: process $pid exited; stopping the rest" >&2
      stop_all
    fi
  done
  sleep 0.5 &
  wait $! 2>/dev/null
done
