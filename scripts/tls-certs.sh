#!/usr/bin/env bash
# Makes a private CA and certificates signed by it, for a cluster on one
# machine (make run TLS=1) or for tests:
#
#   scripts/tls-certs.sh DIR NAME...
#
# DIR/ca.crt and DIR/ca.key are made once and reused; each NAME gets
# DIR/NAME.crt and DIR/NAME.key (made again when missing or not signed by
# DIR/ca.crt). Every certificate names localhost and 127.0.0.1 (as a DNS
# name too: mbed TLS 2, behind nng, matches IP addresses against DNS names
# only) and may serve and call (serverAuth, clientAuth). TLS_HOSTS adds
# names (space-separated; addresses are added as both). Keys are EC P-256,
# readable by their owner only. For nodes on separate machines, make each
# certificate name the host in that node's --advertise address.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 DIR NAME..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
chmod 700 "$dir"
umask 077
days=${TLS_DAYS:-825}

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" -subj "/CN=profile-service local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt" 2>/dev/null
  chmod 644 "$dir/ca.crt"
fi

san="DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1"
for h in ${TLS_HOSTS:-}; do
  if [[ $h =~ ^[0-9.]+$ ]]; then san="$san,DNS:$h,IP:$h"; else san="$san,DNS:$h"; fi
done

for name in "$@"; do
  crt="$dir/$name.crt" key="$dir/$name.key"
  if [ -s "$crt" ] && [ -s "$key" ] && openssl verify -CAfile "$dir/ca.crt" "$crt" >/dev/null 2>&1; then
    continue
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null
  ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
    "$san" > "$ext"
  openssl req -new -key "$key" -subj "/CN=$name" 2>/dev/null |
    openssl x509 -req -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -sha256 -days "$days" \
      -extfile "$ext" -out "$crt" 2>/dev/null
  rm -f "$ext"
  chmod 644 "$crt"
done
