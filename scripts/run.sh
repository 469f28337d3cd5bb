#!/usr/bin/env bash
# Starts the whole service in the foreground: Apache Kafka (KAFKA_NODES
# brokers, scripts/kafka.sh), NODES core nodes and the gateway. Ctrl-C (or
# SIGTERM) stops everything, in order (Kafka last), and returns once all of
# it has exited.
#
# Variables: PORT (gateway, 8080), RPC_PORT (first core node, 7001; node i
# listens on RPC_PORT+i-1), NODES (3), STATE (partitioned or replicated),
# STANDBYS (0: in partitioned mode, how many other nodes follow each partition),
# DATA (all state, ./var), BUILD (build), PARTITIONS (12, fixed once the
# topic exists), BROKERS (use this Kafka instead of starting one),
# KAFKA_NODES (1, or 3: replication factor 3 and min.insync.replicas 2, as
# docker-compose.yml deploys), KAFKA_PORT (9092; broker i listens on
# KAFKA_PORT+2(i-1), its controller on the port after), KAFKA_HEAP (512m
# per broker), SESSION_MS (6000, the least a stock broker allows) and
# HEARTBEAT_MS (500): the group session. RESTART (always or never): what
# happens when a part exits without being asked to, a Kafka broker included
# (its data is on disk): with always (the default) the launcher says so and
# starts it again after RESTART_DELAY seconds (2), while the others keep
# serving; with never it stays down. TLS=1: every hop over TLS: a private CA
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
SESSION_MS=${SESSION_MS:-6000}
HEARTBEAT_MS=${HEARTBEAT_MS:-500}
DATA=${DATA:-./var}
BUILD=${BUILD:-build}
PARTITIONS=${PARTITIONS:-12}
BROKERS=${BROKERS:-}
KAFKA_NODES=${KAFKA_NODES:-1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
RESTART=${RESTART:-always}
RESTART_DELAY=${RESTART_DELAY:-2}
TLS=${TLS:-0}
TOKENS=${TOKENS:-}

case "$RESTART" in
  always|never) ;;
  *) echo "run: RESTART must be always or never, not '$RESTART'" >&2; exit 2 ;;
esac

case "$KAFKA_NODES" in
  1|3) ;;
  *) echo "run: KAFKA_NODES must be 1 or 3, not '$KAFKA_NODES'" >&2; exit 2 ;;
esac

case "$TLS" in
  0|1) ;;
  *) echo "run: TLS must be 0 or 1, not '$TLS'" >&2; exit 2 ;;
esac

mkdir -p "$DATA"

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

kafka=$(dirname "$0")/kafka.sh
# Every part has a slot: 1..K the Kafka brokers started here (K = 0 when
# BROKERS names a Kafka of the user's), then the NODES core nodes, then the
# gateway. pids[slot] is its process, names[slot] what messages call it.
K=0
pids=("")
names=(none)
kdirs=("")  # broker b's data directory at kdirs[b]
kargs=("")  # broker b's kafka.sh run options, space-separated

# SIGTERM to the parts in slots $@, then waits for all of them.
stop_slots() {
  local slot
  for slot; do [ -n "${pids[$slot]:-}" ] && kill -TERM "${pids[$slot]}" 2>/dev/null; done
  for slot; do [ -n "${pids[$slot]:-}" ] && wait "${pids[$slot]}" 2>/dev/null; done
}

# Stops every part: the gateway and the cores first (they flush to Kafka),
# then Kafka; exits with $1 (0).
stop_all() {
  trap - INT TERM
  echo "run: stopping" >&2
  local slot service=() brokers=()
  for slot in "${!pids[@]}"; do
    if [ "$slot" -gt "$K" ]; then service+=("$slot"); elif [ "$slot" -ge 1 ]; then brokers+=("$slot"); fi
  done
  stop_slots "${service[@]}"
  stop_slots "${brokers[@]}"
  echo "run: stopped" >&2
  exit "${1:-0}"
}
trap stop_all INT TERM

# Why Kafka could not be had, what to do instead, and out (non-zero).
no_kafka() {
  echo "run: $*" >&2
  echo "run: to use a Kafka you already run instead: make run BROKERS=host:port[,host:port...]" >&2
  stop_all 1
}

# Starts the part in slot $1 in the background and records its pid.
start() {
  local slot=$1 i
  if [ "$slot" -le "$K" ]; then
    # shellcheck disable=SC2086 # kargs holds options, split on purpose
    "$kafka" run "${kdirs[$slot]}" ${kargs[$slot]} >>"${kdirs[$slot]}/stdout.log" 2>&1 &
  elif [ "$slot" -le $((K + NODES)) ]; then
    i=$((slot - K))
    local addr="$scheme://127.0.0.1:$((RPC_PORT + i - 1))"
    [ "$TLS" = 1 ] && node_tls=(--tls-ca "$tls/ca.crt" --tls-cert "$tls/node$i.crt" --tls-key "$tls/node$i.key")
    "$BUILD/profiled" --listen "$addr" --brokers "$BROKERS" --data "$DATA/core$i" \
      --node-id "node$i" --partitions "$PARTITIONS" --state "$STATE" --standbys "$STANDBYS" "${kafka_opts[@]}" \
      "${node_tls[@]}" &
  else
    "$BUILD/profile-gateway" --address 127.0.0.1 --port "$PORT" "${cores[@]}" "${gateway_tls[@]}" "${token_args[@]}" &
  fi
  pids[$slot]=$!
}

# The group session against the Kafka started here (a Kafka of the user's
# gets the cores' defaults).
kafka_opts=()
if [ -z "$BROKERS" ]; then
  kafka_opts=(--consumer session.timeout.ms="$SESSION_MS" --consumer heartbeat.interval.ms="$HEARTBEAT_MS"
              --kafka reconnect.backoff.max.ms=1000)
  "$kafka" libs >/dev/null || no_kafka "cannot get Apache Kafka $("$kafka" version) (Java and Maven from make deps, the jars from Maven Central)"
  K=$KAFKA_NODES
  voters="" list="" rf=1 isr=1 cluster=""
  if [ "$K" = 3 ]; then
    rf=3 isr=2
    mkdir -p "$DATA/kafka$K"
    [ -s "$DATA/kafka$K/cluster.id" ] || "$kafka" cluster-id > "$DATA/kafka$K/cluster.id"
    cluster="--cluster-id $(cat "$DATA/kafka$K/cluster.id")"
  fi
  for b in $(seq 1 "$K"); do
    voters+="${voters:+,}$b@127.0.0.1:$((KAFKA_PORT + 2 * (b - 1) + 1))"
    list+="${list:+,}127.0.0.1:$((KAFKA_PORT + 2 * (b - 1)))"
  done
  t0=$(date +%s%N)
  for b in $(seq 1 "$K"); do
    if [ "$K" = 1 ]; then kdirs[b]="$DATA/kafka"; else kdirs[b]="$DATA/kafka$K/node$b"; fi
    mkdir -p "${kdirs[b]}"
    kargs[b]="--node-id $b --port $((KAFKA_PORT + 2 * (b - 1))) --controller-port $((KAFKA_PORT + 2 * (b - 1) + 1))
      --voters $voters --replication $rf --min-isr $isr --heap $KAFKA_HEAP $cluster"
    names[b]="Kafka broker $b"
    start "$b"
  done
  for b in $(seq 1 "$K"); do
    "$kafka" wait "${kdirs[b]}" 90 "${pids[b]}" >/dev/null ||
      { tail -n 5 "${kdirs[b]}/stdout.log" >&2; no_kafka "Kafka broker $b did not start (port $((KAFKA_PORT + 2 * (b - 1))) taken? a damaged ${kdirs[b]}?); its log: ${kdirs[b]}/server.log"; }
  done
  echo "Kafka:           $K broker(s), Apache Kafka $("$kafka" version), ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms; data and logs in ${kdirs[*]:1}"
  BROKERS=$list
fi

cores=()
for i in $(seq 1 "$NODES"); do
  cores+=(--core "$scheme://127.0.0.1:$((RPC_PORT + i - 1))")
  names[K + i]="node$i"
done
names[K + NODES + 1]=gateway
last=$((K + NODES + 1))

for slot in $(seq $((K + 1)) "$last"); do start "$slot"; done

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

# A part that exits, a Kafka broker included (its data is on disk), is
# started again (RESTART=always) or left down. Signals are served between
# checks.
declare -A due=()  # slot -> when (epoch seconds) it is started again
while :; do
  for slot in $(seq 1 "$last"); do
    pid=${pids[$slot]}
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      status=$?
      pids[$slot]=""
      if [ "$RESTART" = always ]; then
        echo "run: ${names[$slot]} (pid $pid) exited with status $status; starting it again in ${RESTART_DELAY} s" >&2
        due[$slot]=$(( $(date +%s) + RESTART_DELAY ))
      else
        echo "run: ${names[$slot]} (pid $pid) exited with status $status; left down (RESTART=never)" >&2
      fi
    elif [ -z "$pid" ] && [ -n "${due[$slot]:-}" ] && [ "$(date +%s)" -ge "${due[$slot]}" ]; then
      unset "due[$slot]"
      start "$slot"
      echo "run: ${names[$slot]} started again (pid ${pids[$slot]})" >&2
    fi
  done
  sleep 0.5 &
  wait $! 2>/dev/null
done
