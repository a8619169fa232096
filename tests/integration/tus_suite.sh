#!/usr/bin/env bash
# Runs one TUS protocol suite (tests/integration/tus/suites.mjs) against the test harness.
# Usage: tus_suite.sh <suite> [case-filter]; needs TUS_HARNESS (set by tests/tus.cmake).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node (Node.js) is not installed; the TUS suites need it" >&2
    exit 0
fi
: "${TUS_HARNESS:?TUS_HARNESS must point at the test_tus_harness binary}"
exec timeout 110 node "$here/tus/suites.mjs" "$@"
