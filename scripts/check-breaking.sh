#!/usr/bin/env bash
# Checks the protos for changes that would break generated clients: first
# against the previous commit, then on a copy with a field removed, which
# must be caught, so that a check that stopped working does not pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if git rev-parse --verify --quiet HEAD~1 >/dev/null; then
  echo "buf breaking against the previous commit ($(git rev-parse --short HEAD~1))"
  npx buf breaking --against '.git#ref=HEAD~1'
else
  echo "no previous commit to compare with; skipping that comparison"
fi

canary="$(mktemp -d)"
trap 'rm -rf "$canary"' EXIT
cp -r buf.yaml proto "$canary/"
# Removes Image.name without reserving its number: a breaking change.
sed -i '/^message Image {/,/^}/{/^  string name = 2;$/d}' "$canary/proto/imageregistry/v1/image.proto"
if grep -q '^  string name = 2;$' "$canary/proto/imageregistry/v1/image.proto"; then
  echo "the canary edit did not apply: update scripts/check-breaking.sh to the current image.proto" >&2
  exit 1
fi
if output="$(cd "$canary" && npx --prefix "$OLDPWD" buf breaking --against "$OLDPWD" 2>&1)"; then
  echo "buf breaking passed a copy of the protos with Image.name removed: the check is not working" >&2
  exit 1
fi
if ! grep -q 'name' <<<"$output"; then
  echo "buf breaking failed on the canary, but not for the removed field:" >&2
  echo "$output" >&2
  exit 1
fi
echo "buf breaking caught the removed field in the canary copy:"
echo "$output"
