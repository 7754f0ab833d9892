#!/usr/bin/env bash
# Runs the test suite on the upstream uWebSockets.js build (v20.57.0, glibc >= 2.38) from a
# Debian 13 root filesystem, on a Debian 12 host whose glibc only loads the compat build.
# Needs root and Debian's package mirror. Usage: sudo scripts/test-upstream.sh [vitest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${WSGATE_TRIXIE_ROOT:-/tmp/wsgate-trixie}
if [ ! -x "$root/usr/bin/node" ]; then
  command -v mmdebstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq mmdebstrap; }
  mmdebstrap --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=nodejs,redis-server,ca-certificates stable "$root" "deb http://deb.debian.org/debian stable main"
fi
npm run build
mkdir -p "$root/work/main" "$root/proc"
mountpoint -q "$root/work/main" || mount --bind "$PWD" "$root/work/main"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/work/main" "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" sh -c "cd /work/main && HOME=/tmp node node_modules/vitest/vitest.mjs run $*"
