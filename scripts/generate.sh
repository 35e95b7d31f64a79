#!/usr/bin/env bash
# Regenerates everything under gen/ from proto/: the ts-proto stubs, and the
# exact descriptor set that the reflection service serves. CI runs this and
# fails when the committed gen/ differs from the result.
set -euo pipefail
cd "$(dirname "$0")/.."

buf=./node_modules/.bin/buf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# buf.gen.yaml has clean: true, so this empties gen/ first.
"$buf" generate

# grpc.health.v1 is served by grpc-health-check; build its proto under its
# canonical path so that reflection clients see the usual file name.
mkdir -p "$work/health/grpc/health/v1"
cp node_modules/grpc-health-check/proto/health/v1/health.proto \
  "$work/health/grpc/health/v1/health.proto"
"$buf" build proto -o "$work/registry.binpb"
"$buf" build "$work/health" -o "$work/health.binpb"

node scripts/write-descriptor-module.mjs gen/descriptor-set.ts \
  "$work/registry.binpb" "$work/health.binpb"
