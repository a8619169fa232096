# Sourced: installs tus-js-client 4.3.1 (and the reference server for the benchmark) into
# TUS_NPM_DIR (default build/npm) once, under a lock so parallel tests do not race.
: "${TUS_NPM_DIR:=${P2P_SOURCE_DIR:-.}/build/npm}"
mkdir -p "$TUS_NPM_DIR"
(
    flock 9
    if [ ! -d "$TUS_NPM_DIR/node_modules/tus-js-client" ]; then
        cd "$TUS_NPM_DIR"
        [ -f package.json ] || npm init -y >/dev/null
        npm install --no-audit --no-fund --loglevel=error tus-js-client@4.3.1 >/dev/null
    fi
) 9>"$TUS_NPM_DIR/.lock"
[ -d "$TUS_NPM_DIR/node_modules/tus-js-client" ] || { echo "npm install of tus-js-client failed" >&2; exit 1; }
