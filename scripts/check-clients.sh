#!/usr/bin/env bash
# Generates the Python and Go clients, compiles the Go client with Debian's
# Go packages (GOPATH mode, offline), starts the service on a new SQLite
# file, and runs clients/python/walkthrough.py against it with Debian's
# python3.
set -euo pipefail
cd "$(dirname "$0")/.."

python=/usr/bin/python3
if ! "$python" -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "Debian's python3-grpcio and python3-protobuf are missing: apt-get install python3-grpcio python3-protobuf" >&2
  exit 1
fi
bash scripts/generate-clients.sh

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if command -v go >/dev/null && [ -d clients/go/gen ]; then
  # Debian installs Go libraries under /usr/share/gocode for GOPATH builds.
  mkdir -p "$work/gopath/src/example.invalid/imageregistry"
  ln -s "$PWD/clients/go/gen" "$work/gopath/src/example.invalid/imageregistry/gen"
  (cd "$work/gopath/src/example.invalid/imageregistry/gen" &&
    GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" go build ./...)
  echo "compiled the Go client with $(go version | cut -d' ' -f3)"
else
  echo "NOTICE: go or the generated Go client is missing (apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev); Go client not compiled" >&2
fi

secret="python-client-check-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AUTH_JWT_SECRET="$secret"
# node itself, not an npx wrapper, so that the kill below reaches the server.
GRPC_LISTEN=127.0.0.1:0 DATABASE_URL="sqlite:$work/registry.sqlite" IMAGE_STORE_DIR="$work/images" \
  node --import tsx src/main.ts >"$work/server.log" 2>&1 &
server_pid=$!

address=""
for _ in $(seq 1 100); do
  address="$(grep -o '"address":"[^"]*"' "$work/server.log" | head -1 | cut -d'"' -f4 || true)"
  [ -n "$address" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.2
done
if [ -z "$address" ]; then
  echo "the server did not log its address:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

owner_token="$(npx tsx src/cli/mint-token.ts --project python-owner)"
consumer_token="$(npx tsx src/cli/mint-token.ts --project python-consumer)"
"$python" clients/python/walkthrough.py "$address" "$owner_token" "$consumer_token" python-consumer
