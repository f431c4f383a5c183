#!/usr/bin/env bash
# A throwaway demo: builds secretctl, then runs a session against a temp
# vault that is deleted afterwards. Touches nothing in ~/.secretctl.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release"
DEMO="$(mktemp -d /tmp/secretctl-demo.XXXXXX)"
export SECRETCTL_HOME="$DEMO/home" SECRETCTL_SOCKET="$DEMO/run/secretctld.sock"
cleanup() {
  # Stop the daemon this demo started (SIGTERM locks and zeroizes), then forget everything.
  if [ -s "$DEMO/pid" ]; then kill "$(cat "$DEMO/pid")" 2>/dev/null || true; fi
  rm -rf "$DEMO"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "secretctl init   # demo-only tiny KDF; the default is Argon2id m=64MiB t=3 p=4"
SECRETCTL_PASSWORD=demo-password "$BIN/secretctl" init --kdf-memory 8 --kdf-iterations 1 --kdf-parallelism 1
"$BIN/secretctl" status --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p' > "$DEMO/pid"

step "printf 'sk-demo-0123456789abcdef' | secretctl set demo/api_key --tags demo"
printf 'sk-demo-0123456789abcdef' | "$BIN/secretctl" set demo/api_key --tags demo

step "secretctl set demo/db --template database --field host=db.local --field port=5432 --field username=app --field password=... --field database=main"
"$BIN/secretctl" set demo/db --template database --field host=db.local --field port=5432 \
  --field username=app --field password=pg-demo-secret-987 --field database=main

step "secretctl list --json"
"$BIN/secretctl" list --json
step "secretctl get demo/db --show-metadata   # never prints sensitive values"
"$BIN/secretctl" get demo/db --show-metadata
step "secretctl get demo/api_key"
"$BIN/secretctl" get demo/api_key; echo
step "secretctl status"
"$BIN/secretctl" status
step "secretctl run -k demo/api_key -- sh -c 'echo \"key=\$DEMO_API_KEY\"; printf %s \"\$DEMO_API_KEY\" | base64'"
"$BIN/secretctl" run -k 'demo/api_key' -- sh -c 'echo "key=$DEMO_API_KEY"; printf %s "$DEMO_API_KEY" | base64'

step "MCP: an agent (here: raw JSON-RPC on stdin) runs a command with the key and sees only [REDACTED]"
umask 077; printf 'version: 1\nallowed_commands: [sh]\n' > "$SECRETCTL_HOME/mcp-policy.yaml"
"$BIN/secretctl" policy apply
CALL='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"secret_run","arguments":{"keys":["demo/api_key"],"command":"sh -c '"'"'echo token=$DEMO_API_KEY'"'"'"}}}'
{ printf '%s\n' \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"demo","version":"0"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$CALL"
  sleep 2; } | "$BIN/secretctl" mcp-server 2>/dev/null | sed -n 2p

step "CLAUDECODE=1 secretctl get demo/api_key   # an agent's shell: refused, exit 5"
CLAUDECODE=1 "$BIN/secretctl" get demo/api_key </dev/null || echo "(exit $?)"

step "secretctl lock && secretctl get demo/api_key   # exit 3: locked"
"$BIN/secretctl" lock
"$BIN/secretctl" get demo/api_key || echo "(exit $?)"
