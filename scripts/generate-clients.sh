#!/usr/bin/env bash
# Generates the Python and Go clients from proto/ with Debian's protoc and
# plugins, into clients/python/gen and clients/go/gen, which git ignores.
# Debian packages: protobuf-compiler, protobuf-compiler-grpc (Python), and
# protoc-gen-go (1.28, not the older golang-goprotobuf-dev, which lacks proto3 optional) and
# protoc-gen-go-grpc (Go). Each language is
# skipped with a notice when its plugin is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
  echo "protoc not found: apt-get install protobuf-compiler" >&2
  exit 1
fi
# protobuf-compiler installs the well-known types, such as google/protobuf/any.proto, here.
well_known=/usr/include
mapfile -t protos < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)

if command -v grpc_python_plugin >/dev/null; then
  rm -rf clients/python/gen
  mkdir -p clients/python/gen
  protoc -I proto -I "$well_known" \
    --python_out=clients/python/gen \
    --grpc_out=clients/python/gen \
    --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
    "${protos[@]}"
  echo "generated the Python client in clients/python/gen"
else
  echo "NOTICE: grpc_python_plugin not found (apt-get install protobuf-compiler-grpc); Python client skipped" >&2
fi

if command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null; then
  rm -rf clients/go/gen
  mkdir -p clients/go/gen
  # Each proto folder becomes a Go package; the module path is only a name.
  go_options=()
  for proto in "${protos[@]}"; do
    package="example.invalid/imageregistry/gen/$(dirname "$proto")"
    go_options+=("--go_opt=M${proto}=${package}" "--go-grpc_opt=M${proto}=${package}")
  done
  protoc -I proto -I "$well_known" \
    --go_out=clients/go/gen --go_opt=paths=source_relative \
    --go-grpc_out=clients/go/gen --go-grpc_opt=paths=source_relative \
    "${go_options[@]}" \
    "${protos[@]}"
  echo "generated the Go client in clients/go/gen"
else
  echo "NOTICE: protoc-gen-go or protoc-gen-go-grpc not found (apt-get install protoc-gen-go protoc-gen-go-grpc); Go client skipped" >&2
fi
