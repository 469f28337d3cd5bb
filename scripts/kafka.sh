#!/usr/bin/env bash
# The local Apache Kafka broker: the real broker from Maven Central, run as a
# KRaft node (broker and controller in one process) with no Docker.
#
#   scripts/kafka.sh libs
#       Fetches the broker's jars (scripts/kafka/pom.xml) once into
#       KAFKA_CACHE (default .cache/kafka-VERSION under the repository) and
#       prints that folder. Later calls, and Maven itself (~/.m2), are offline
#       (until the pom changes).
#   scripts/kafka.sh mirror-libs
#       The same for MirrorMaker 2 (scripts/kafka/mirror/pom.xml).
#   scripts/kafka.sh mirror PROPERTIES [HEAP]
#       Runs MirrorMaker 2 in dedicated mode with those settings, in the
#       foreground (exec); its log on stderr (default heap 256m).
#   scripts/kafka.sh run DIR [--port P] [--controller-port C] [--node-id N]
#                            [--voters LIST] [--cluster-id ID] [--replication R]
#                            [--min-isr M] [--heap SIZE] [--set KEY=VALUE]...
#       Runs one node in the foreground (exec: the process is the JVM, so
#       signals reach the broker itself). Storage in DIR/logs is formatted
#       on first start and kept; DIR/server.log is the broker's log and
#       DIR/server.properties the settings it ran with. Ready when the log
#       says "Kafka Server started" after this start's mark
#       (scripts/kafka.sh wait DIR SECONDS PID).
#       --voters (default N@127.0.0.1:C) makes a cluster: every node gets the
#       same list and cluster id. --replication (1) is the default replication
#       factor of new topics, the offsets and the transaction log;
#       --min-isr (1) their min.insync.replicas.
#   scripts/kafka.sh properties DIR [options of run]
#       Writes and prints the settings `run` would start the node with.
#   scripts/kafka.sh cluster-id
#       Prints a new cluster id, for the nodes of a cluster to share.
#   scripts/kafka.sh wait DIR [SECONDS] [PID]
#       Waits until the node that process PID (the `run`) started in DIR is
#       ready (default 60 s; without PID, the newest start in DIR); prints
#       the milliseconds it took; fails with the log's last lines if it died.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pom=$here/kafka/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
cache=${KAFKA_CACHE:-$root/.cache/kafka-$version}

die() { echo "kafka: $*" >&2; exit 1; }

# The broker's jars, fetched once; prints the folder.
# Jars fetched once with Maven from a pom (the broker's, or MirrorMaker's)
# into a folder of the cache; fetched again when the pom changed. Prints the
# folder.
fetch() {
  local pom=$1 dir=$2 what=$3 stamp
  stamp=$(sha256sum "$pom" | cut -d' ' -f1)
  if [ "$(cat "$dir/.complete" 2>/dev/null)" != "$stamp" ]; then
    command -v java >/dev/null || die "java is not installed (make deps installs it; or use a Kafka of yours: BROKERS=host:port)"
    command -v mvn >/dev/null || die "mvn is not installed (make deps installs it; or use a Kafka of yours: BROKERS=host:port)"
    echo "kafka: fetching $what $version from Maven Central into $dir" >&2
    rm -rf "$dir.tmp"
    mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir.tmp" >&2 ||
      die "Maven could not fetch $what $version (is Maven Central reachable?); or use a Kafka of yours: BROKERS=host:port"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    echo "$stamp" > "$dir/.complete"
  fi
  echo "$dir"
}

libs() { fetch "$pom" "$cache/libs" "Apache Kafka"; }
mirror_libs() { fetch "$here/kafka/mirror/pom.xml" "$cache/mirror-libs" "Kafka's MirrorMaker 2"; }

# MirrorMaker 2 in dedicated mode, in the foreground (exec), with the
# settings in PROPERTIES; its log on stderr.
mirror() {
  local props=${1:?mirror PROPERTIES} heap=${2:-256m} lib
  lib=$(mirror_libs)
  exec java "-Xmx$heap" -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$here/kafka/mirror/log4j.properties" -cp "$lib/*" \
    org.apache.kafka.connect.mirror.MirrorMaker "$props"
}

# A fresh cluster id: 16 random bytes, base64url without padding (Kafka's
# Uuid), drawn again when it starts with "-" (a tool would read it as an
# option; Kafka's own generator does the same).
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [ "${id:0:1}" != - ] && { echo "$id"; return; }
  done
}

# Whether process $1 runs (a zombie, exited but not yet reaped, does not).
running() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st:0:1}" != Z ]
}

# Parses run's options into the globals below and writes
# DIR/server.properties and DIR/log4j.properties.
configure() {
  dir=${1:?run DIR}
  shift
  port=9092 cport=9093 node=1 voters="" cluster="" rf=1 isr=1 heap=512m
  local -a extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --controller-port) cport=$2; shift 2 ;;
      --node-id) node=$2; shift 2 ;;
      --voters) voters=$2; shift 2 ;;
      --cluster-id) cluster=$2; shift 2 ;;
      --replication) rf=$2; shift 2 ;;
      --min-isr) isr=$2; shift 2 ;;
      --heap) heap=$2; shift 2 ;;
      --set) extra+=("$2"); shift 2 ;;
      *) die "run: unknown option $1" ;;
    esac
  done
  [ -n "$voters" ] || voters="$node@127.0.0.1:$cport"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)

  # The cluster id is chosen once per data directory (or given, for a
  # cluster) and kept with it: a restart finds its storage formatted.
  if [ -z "$cluster" ]; then
    [ -s "$dir/cluster.id" ] || new_cluster_id > "$dir/cluster.id"
    cluster=$(cat "$dir/cluster.id")
  fi

  cat > "$dir/server.properties" <<EOF
# Written by scripts/kafka.sh at each start; edit the script, not this file.
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
# Topics are created by the service with the settings it needs, never by a
# client that merely names one.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=3
# A group forms as soon as its first member joins (the stock 3 s wait is for
# fleets of consumers starting together).
group.initial.rebalance.delay.ms=0
# The controller fences a broker that stopped heartbeating after this long
# (stock 9 s): a broker killed and started again waits it out before it
# serves, and in a cluster leadership moves off a dead broker after it.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
# Sized for a laptop, not a server: fewer threads, a small cleaner buffer.
num.network.threads=2
num.io.threads=4
log.cleaner.threads=1
log.cleaner.backoff.ms=2000
log.cleaner.dedupe.buffer.size=8388608
EOF
  if [[ $voters == *,* ]]; then
    cat >> "$dir/server.properties" <<EOF
# A cluster started here is stopped whole: a broker that asked its
# controller to approve a controlled shutdown would wait (5 min) for a quorum
# whose other nodes are already gone. Without it, the controller moves a
# stopped broker's leadership after broker.session.timeout.ms; acks=all,
# min.insync.replicas and no unclean election keep every write safe.
controlled.shutdown.enable=false
EOF
  fi
  local kv
  for kv in "${extra[@]}"; do echo "$kv" >> "$dir/server.properties"; done

  cat > "$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.state.change.logger=WARN
EOF
}

run() {
  configure "$@"
  local lib
  lib=$(libs)

  local -a jvm=(java "-Xmx$heap" "-Xms64m" -XX:+UseSerialGC -XX:TieredStopAtLevel=1
                -Djava.awt.headless=true "-Dlog4j.configuration=file:$dir/log4j.properties"
                "-Dkafka.logs.dir=$dir" -cp "$lib/*")
  if [ ! -f "$dir/logs/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties" \
      --ignore-formatted >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "cannot format $dir/logs"; }
  fi
  # A start is recognized by the log lines after this mark (scripts/kafka.sh
  # wait); exec keeps the pid, so the mark names the broker's process.
  echo "[$(date -u '+%F %T')] profile-service: starting Kafka $version node $node on 127.0.0.1:$port, pid $$" \
    >> "$dir/server.log"
  exec "${jvm[@]}" kafka.Kafka "$dir/server.properties"
}

wait_ready() {
  local dir=${1:?wait DIR} limit=${2:-60} pid=${3:-}
  local log=$dir/server.log mark="profile-service: starting Kafka" start now since
  [ -n "$pid" ] && mark="$mark .*, pid $pid\$"
  start=$(date +%s%N)
  while :; do
    # This start's lines only: a restarted node's log holds older starts.
    since=""
    if [ -f "$log" ]; then
      since=$(awk -v m="$mark" '$0 ~ m { found = 1; buf = "" } found { buf = buf $0 "\n" } END { printf "%s", buf }' "$log")
    fi
    if [ -n "$since" ] && grep -q 'Kafka Server started' <<<"$since"; then
      now=$(date +%s%N)
      echo "$(( (now - start) / 1000000 ))"
      return 0
    fi
    if { [ -n "$pid" ] && ! running "$pid"; } ||
       { [ -n "$since" ] && grep -q 'Exiting Kafka\|FATAL\|Fatal error' <<<"$since"; }; then
      [ -n "$since" ] && tail -n 20 <<<"$since" >&2
      die "the broker in $dir failed to start (its log: $log)"
    fi
    now=$(date +%s%N)
    if [ $(( (now - start) / 1000000000 )) -ge "$limit" ]; then
      [ -n "$since" ] && tail -n 20 <<<"$since" >&2
      die "the broker in $dir is not ready after $limit s (its log: $log)"
    fi
    sleep 0.1
  done
}

case "${1:-}" in
  libs) libs ;;
  mirror-libs) mirror_libs ;;
  mirror) shift; mirror "$@" ;;
  run) shift; run "$@" ;;
  properties) shift; configure "$@"; cat "$dir/server.properties" ;;
  wait) shift; wait_ready "$@" ;;
  version) echo "$version" ;;
  cluster-id) new_cluster_id ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
