#!/usr/bin/env bash
# Install the Debian 12 packages p2p-sharer needs to build and test. Idempotent; quiet when all
# are present. Set P2P_DEPS_EXTRA to a list of extra packages (benchmarks use this).
set -euo pipefail
pkgs=(build-essential cmake pkg-config curl ca-certificates
      libuv1-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev
      libhttp-parser-dev libcmocka-dev libhiredis-dev jq)
# shellcheck disable=SC2206
pkgs+=(${P2P_DEPS_EXTRA:-})
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
