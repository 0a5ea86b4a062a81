#!/usr/bin/env bash
# Build (once) and run vcsim, govmomi's vCenter simulator, for the pyvmomi driver's tests.
#   scripts/vcsim.sh build              -> var/vcsim/vcsim (rebuilt when a scripts/vcsim/*.go changes)
#   scripts/vcsim.sh run [vcsim flags]  -> builds if needed, then runs in the foreground,
#                                          e.g. scripts/vcsim.sh run -l 127.0.0.1:8989
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/vcsim
binary=$out/vcsim
build() {
  if [ ! -x "$binary" ] || [ -n "$(find scripts/vcsim -name '*.go' -newer "$binary")" ]; then
    mkdir -p "$out"
    echo "vcsim: building (Go $(go version | awk '{print $3}'), govmomi from Debian)" >&2
    (cd scripts/vcsim && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/../../$out/gocache" \
      go build -o "../../$binary" .)
  fi
}
case "${1:-}" in
  build) build ;;
  run) shift; build; exec "$binary" "$@" ;;
  *) echo "usage: scripts/vcsim.sh build | run [flags]" >&2; exit 2 ;;
esac
