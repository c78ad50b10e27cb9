#!/usr/bin/env bash
# The example pipeline across two runner processes over a local nats-server (JetStream, file storage in a temp
# dir): `make demo-nats`. Everything it starts is stopped when it ends.
set -euo pipefail
NATS_SERVER=${NATS_SERVER:-nats-server}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
"$NATS_SERVER" -a 127.0.0.1 -p "$port" -js -sd "$dir/jetstream" >"$dir/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export JOBCHAIN_NATS_URL="nats://127.0.0.1:$port" JOBCHAIN_LOG_LEVEL=warn
echo "nats-server on $JOBCHAIN_NATS_URL; runner 1 serves 'clean', runner 2 the other three nodes" >&2
node bin/jobchain.js runner examples/pipeline --graph text_report/brief --nodes clean &
pids+=($!)
node bin/jobchain.js runner examples/pipeline --graph text_report/brief --nodes analyse_words,analyse_tone,report &
pids+=($!)
# With the configuration, submit knows the graph's heads before any runner has announced it: tasks wait in
# JetStream until a runner takes them.
node bin/jobchain.js submit examples/pipeline --graph text_report/brief --inputs examples/pipeline/tasks.jsonl "$@"
