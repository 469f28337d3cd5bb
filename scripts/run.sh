#!/usr/bin/env bash
# Starts the whole service in the foreground: the local Kafka broker, NODES
# core nodes and the gateway. Ctrl-C (or SIGTERM) stops everything, in order,
# and returns once all of it has exited.
#
# Variables: PORT (gateway, 8080), RPC_PORT (first core node, 7001; node i
# listens on RPC_PORT+i-1), NODES (3), STATE (partitioned or replicated),
# STANDBYS (0: in partitioned mode, how many other nodes follow each partition),
# DATA (all state, ./var), BUILD (build), PARTITIONS (12, fixed once the
# broker's journal exists), BROKERS (use this Kafka instead of starting the
# local broker), SESSION_MS (4000) and HEARTBEAT_MS (300): the group session
# against the local broker. RESTART (always or never): what happens when a
# core node or the gateway exits without being asked to: with always (the
# default) the launcher says so and starts it again after RESTART_DELAY
# seconds (2), while the others keep serving; with never it stays down. The
# local broker is the one part whose exit stops everything (the cores find it
# by the address it chose at start). TLS=1: every hop over TLS: a private CA
# and certificates for the gateway, each node and a client are made under
# DATA/tls (scripts/tls-certs.sh; kept and reused), the nodes serve
# tls+tcp:// with mutual TLS and the gateway serves HTTPS. TOKENS: bearer
# tokens for the REST API: a file (profile-gateway --tokens), or 1 to make
# DATA/tokens once with a read and a write token, printed at start.
set -uo pipefail

PORT=${PORT:-8080}
RPC_PORT=${RPC_PORT:-7001}
NODES=${NODES:-3}
STATE=${STATE:-partitioned}
STANDBYS=${STANDBYS:-0}
SESSION_MS=${SESSION_MS:-4000}
HEARTBEAT_MS=${HEARTBEAT_MS:-300}
DATA=${DATA:-./var}
BUILD=${BUILD:-build}
PARTITIONS=${PARTITIONS:-12}
BROKERS=${BROKERS:-}
RESTART=${RESTART:-always}
RESTART_DELAY=${RESTART_DELAY:-2}
TLS=${TLS:-0}
TOKENS=${TOKENS:-}

case "$RESTART" in
  always|never) ;;
  *) echo "run: RESTART must be always or never, not '$RESTART'" >&2; exit 2 ;;
esac

case "$TLS" in
  0|1) ;;
  *) echo "run: TLS must be 0 or 1, not '$TLS'" >&2; exit 2 ;;
esac

mkdir -p "$DATA"
pids=()

# TOKENS: the gateway's token file (made with TOKENS=1).
token_args=() token_help=()
case "$TOKENS" in
  ""|0) ;;
  1)
    tokens_file=$(cd "$DATA" && pwd)/tokens
    if [ ! -s "$tokens_file" ]; then
      (umask 077; printf '%s read reader\n%s write writer\n' "$(openssl rand -hex 24)" "$(openssl rand -hex 24)" \
        > "$tokens_file") || { echo "run: cannot make $tokens_file" >&2; exit 1; }
    fi
    token_args=(--tokens "$tokens_file")
    token_help=("$(awk '$2 == "write" { print $1; exit }' "$tokens_file")")
    ;;
  *)
    [ -r "$TOKENS" ] || { echo "run: TOKENS names no readable file: $TOKENS" >&2; exit 2; }
    token_args=(--tokens "$TOKENS")
    ;;
esac

# With TLS=1: the certificates, and each part's TLS options.
scheme=tcp http=http
node_tls=() gateway_tls=()
if [ "$TLS" = 1 ]; then
  tls=$(cd "$DATA" && pwd)/tls
  certs=(gateway client)
  for i in $(seq 1 "$NODES"); do certs+=("node$i"); done
  "$(dirname "$0")/tls-certs.sh" "$tls" "${certs[@]}" || { echo "run: cannot make the certificates" >&2; exit 1; }
  scheme=tls+tcp http=https
  gateway_tls=(--https-cert "$tls/gateway.crt" --https-key "$tls/gateway.key"
               --tls-ca "$tls/ca.crt" --tls-cert "$tls/gateway.crt" --tls-key "$tls/gateway.key")
fi

stop_all() {
  trap - INT TERM
  echo "run: stopping" >&2
  # Gateway and cores first (they flush to Kafka), the broker last (it
  # journals what it holds before it exits).
  local broker_pid=${pids[0]:-} pid
  for pid in "${pids[@]:1}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]:1}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null; done
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

# Slot 0 is the broker; slots 1..NODES the core nodes; the last the gateway.
names=(broker)
cores=()
for i in $(seq 1 "$NODES"); do
  cores+=(--core "$scheme://127.0.0.1:$((RPC_PORT + i - 1))")
  names+=("node$i")
done
names+=(gateway)

# Starts the part in slot $1 in the background and records its pid.
start() {
  local i=$1
  if [ "$i" -le "$NODES" ]; then
    local addr="$scheme://127.0.0.1:$((RPC_PORT + i - 1))"
    [ "$TLS" = 1 ] && node_tls=(--tls-ca "$tls/ca.crt" --tls-cert "$tls/node$i.crt" --tls-key "$tls/node$i.key")
    "$BUILD/profiled" --listen "$addr" --brokers "$BROKERS" --data "$DATA/core$i" \
      --node-id "node$i" --partitions "$PARTITIONS" --state "$STATE" --standbys "$STANDBYS" "${kafka_opts[@]}" \
      "${node_tls[@]}" &
  else
    "$BUILD/profile-gateway" --address 127.0.0.1 --port "$PORT" "${cores[@]}" "${gateway_tls[@]}" "${token_args[@]}" &
  fi
  pids[$i]=$!
}

for i in $(seq 1 $((NODES + 1))); do start "$i"; done

echo "Kafka bootstrap: $BROKERS"
echo "Gateway:         $http://localhost:$PORT/   (Ctrl-C stops everything)"
echo "Cluster page:    $http://localhost:$PORT/   metrics: /metrics   API description: /openapi.json"
auth=""
if [ ${#token_args[@]} -gt 0 ]; then
  echo "Tokens:          ${token_args[1]} (a request without one is 401)"
  [ ${#token_help[@]} -gt 0 ] && auth="-H 'Authorization: Bearer ${token_help[0]}' "
fi
if [ "$TLS" = 1 ]; then
  echo "TLS:             every hop; the CA and certificates are in $tls"
  echo "  curl ${auth}--cacert $tls/ca.crt https://localhost:$PORT/api/search?email=a@b.com"
  echo "  profilectl --core tls+tcp://127.0.0.1:$RPC_PORT --tls-ca $tls/ca.crt \\"
  echo "    --tls-cert $tls/client.crt --tls-key $tls/client.key get UID"
elif [ -n "$auth" ]; then
  echo "  curl ${auth}http://localhost:$PORT/api/search?email=a@b.com"
fi

# A part that exits is started again (RESTART=always) or left down; the
# broker's exit stops everything. Signals are served between checks.
declare -A due=()  # slot -> when (epoch seconds) it is started again
while :; do
  if [ -n "${pids[0]}" ] && ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "run: the local broker (pid ${pids[0]}) exited; stopping the rest" >&2
    stop_all
  fi
  for i in $(seq 1 $((NODES + 1))); do
    pid=${pids[$i]}
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      status=$?
      pids[$i]=""
      if [ "$RESTART" = always ]; then
        echo "run: ${names[$i]} (pid $pid) exited with status $status; starting it again in ${RESTART_DELAY} s" >&2
        due[$i]=$(( $(date +%s) + RESTART_DELAY ))
      else
        echo "run: ${names[$i]} (pid $pid) exited with status $status; left down (RESTART=never)" >&2
      fi
    elif [ -z "$pid" ] && [ -n "${due[$i]:-}" ] && [ "$(date +%s)" -ge "${due[$i]}" ]; then
      unset "due[$i]"
      start "$i"
      echo "run: ${names[$i]} started again (pid ${pids[$i]})" >&2
    fi
  done
  sleep 0.5 &
  wait $! 2>/dev/null
done
