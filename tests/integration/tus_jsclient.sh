#!/usr/bin/env bash
# Real TUS client: tus-js-client 4.3.1 (npm, installed here into a cache dir) against the TUS
# module (the harness from tests/tus.cmake): abort + resume from a second process, and
# parallelUploads: 4. Needs node and npm; skips with a message only if they are absent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "SKIP: node/npm not installed; tus-js-client tests need them" >&2
    exit 0
fi
: "${TUS_HARNESS:?TUS_HARNESS must point at the test_tus_harness binary}"
source "$here/tus/npm_setup.sh"
export TUS_NPM_DIR
exec timeout 280 node "$here/tus/jsclient.mjs" "$@"
