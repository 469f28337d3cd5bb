#!/usr/bin/env bash
# Installs the Debian packages the project needs, if any is missing.
# Uses sudo when not root. Safe to run again: it does nothing when all are there.
# A Java runtime and Maven run the local Apache Kafka (scripts/kafka.sh); a
# machine that has them already (another JDK) keeps its own.
# --test: also what the tests use (a browser, promtool, nngcat, kcat, iproute2
# for the chaos verifier's network partitions, Node.js
# and npm for the tools in tests/tools, which `make test` then installs with
# npm ci).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librdkafka-dev libnng-dev libkyotocabinet-dev libprotobuf-c-dev protobuf-c-compiler
  libjansson-dev libmicrohttpd-dev
  protobuf-compiler python3 curl procps wrk openssl
  clang libclang-rt-14-dev
)
command -v java >/dev/null || packages+=(default-jre-headless)
command -v mvn >/dev/null || packages+=(maven)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium prometheus nng-utils kcat mandoc docker-compose iproute2)
  # Node.js 20 where the machine has it; Debian's own otherwise.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
