#!/usr/bin/env bash
# make run: Cohort's whole job on this machine, with one command.
#
#   1. installs the Temporal CLI and workflowcheck if missing (make tools), builds bin/
#   2. Temporal dev server: state in data/temporal.db, gRPC 127.0.0.1:7233,
#      Web UI http://localhost:8233, retention 30 days
#   3. the Databricks emulator (state in data/emulator-state.jsonl), unless
#      COHORT_CONFIG_REAL names a config for a real workspace
#   4. the worker (log: data/worker.log)
#   5. starter submit --wait examples/participants.csv (progress bar), then the
#      report (also saved as data/report-BATCH.csv) and the Web UI URL of the batch
#
# Ctrl-C stops everything this script started, and nothing else. data/ is kept:
# a second run reuses the Temporal history and the emulator's state, so every
# participant shows as already provisioned.
#
# Environment (all optional):
#   COHORT_ROSTER                roster CSV to submit (examples/participants.csv)
#   COHORT_CONFIG_REAL           config file naming a real workspace, layered over
#                                examples/cohort.yaml instead of the emulator. Databricks
#                                auth must come from the environment (DATABRICKS_TOKEN,
#                                DATABRICKS_CONFIG_PROFILE, DATABRICKS_CLIENT_ID and
#                                DATABRICKS_CLIENT_SECRET, ARM_CLIENT_ID...) or from a
#                                ~/.databrickscfg profile named in that file (profile:)
#   COHORT_EMULATOR_LISTEN       127.0.0.1:8765
#   COHORT_EMULATOR_TOKEN        dapi-emulator-admin; exported as DATABRICKS_TOKEN
#   COHORT_EMULATOR_ACCOUNT_ID   the emulator's default account id
#   COHORT_EMULATOR_WORKSPACE_ID the emulator's default workspace id
#   COHORT_EMULATOR_LATENCY      realistic (or none)
#   COHORT_EMULATOR_RATE_LIMITS  azure (or none)
#   COHORT_EMULATOR_TIME_SCALE   20 (emulated latencies and cluster transitions run 20x faster)
#   COHORT_RETENTION             720h: how long Temporal keeps closed workflows
#   COHORT_KEEP_RUNNING          1: after the report, keep everything up for the Web UI
#                                until Ctrl-C (default when run from a terminal); 0: stop
#   TEMPORAL_NAMESPACE           default
#   TEMPORAL_CLI                 the temporal binary ($(go env GOPATH)/bin/temporal)
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_PORT=7233
UI_PORT=8233
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
ROSTER=${COHORT_ROSTER:-examples/participants.csv}
REAL_CONFIG=${COHORT_CONFIG_REAL:-}
EMU_LISTEN=${COHORT_EMULATOR_LISTEN:-127.0.0.1:8765}
EMU_TOKEN=${COHORT_EMULATOR_TOKEN:-dapi-emulator-admin}
RETENTION=${COHORT_RETENTION:-720h}
if [ -t 0 ]; then KEEP_RUNNING=${COHORT_KEEP_RUNNING:-1}; else KEEP_RUNNING=${COHORT_KEEP_RUNNING:-0}; fi

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nrun-local: %s\n' "$*" >&2; exit 1; }

# --- processes this script started, stopped in reverse order on exit ---------
names=()
pids=()
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
  local status=$? i
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping what this script started (data/ is kept)"
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      stop "${names[i]}" "${pids[i]}"
    done
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop NAME PID: SIGTERM, then SIGKILL after 30 s; waits so nothing is left behind.
# shellcheck disable=SC2317 # reached through the trap
stop() {
  kill -0 "$2" 2>/dev/null || return 0
  printf '  %s (pid %s)\n' "$1" "$2"
  kill -TERM "$2" 2>/dev/null || true
  (
    trap 'kill "$timer" 2>/dev/null; exit 0' TERM
    sleep 30 &
    timer=$!
    wait "$timer"
    kill -KILL "$2" 2>/dev/null && echo "  $1 did not stop within 30 s: killed"
  ) &
  local killer=$!
  wait "$2" 2>/dev/null || true
  kill "$killer" 2>/dev/null || true
  wait "$killer" 2>/dev/null || true
}

# start NAME LOG CMD...: runs CMD in the background, in its own session so that
# Ctrl-C reaches only this script, which then stops everything in order.
start() {
  local name=$1 log=$2
  shift 2
  if command -v setsid >/dev/null; then
    setsid "$@" >"$log" 2>&1 </dev/null &
  else
    "$@" >"$log" 2>&1 </dev/null &
  fi
  names+=("$name")
  pids+=("$!")
}

# wait_for NAME PID LOG SECONDS CHECK...: polls CHECK until it succeeds; fails
# with the end of LOG if the process exits or time runs out.
wait_for() {
  local name=$1 pid=$2 log=$3 secs=$4 i
  shift 4
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      printf '%s exited; the end of %s:\n' "$name" "$log" >&2
      tail -n 20 "$log" >&2
      die "$name did not start"
    fi
    sleep 0.5
  done
  printf 'the end of %s:\n' "$log" >&2
  tail -n 20 "$log" >&2
  die "$name was not ready after $secs s"
}

# port_free PORT: fails, naming the process to stop, if something listens on PORT.
port_free() {
  local port=$1 owner="" pid=""
  if command -v ss >/dev/null; then
    [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
    read -r owner pid < <(ss -Hltnp "sport = :$port" 2>/dev/null |
      sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 \2/p') || true
  elif (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    read -r owner pid < <(lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | awk 'NR == 2 {print $1, $2}') || true
  else
    return 0
  fi
  if [ -n "$pid" ]; then
    printf 'port %s is in use by %s (pid %s): stop it (kill %s) and run again\n' "$port" "$owner" "$pid" "$pid" >&2
  else
    printf 'port %s is in use by another process (see: ss -ltnp "sport = :%s"): stop it and run again\n' \
      "$port" "$port" >&2
  fi
  return 1
}

urlencode() {
  local LC_ALL=C s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}

# --- preflight: input, tools, binaries, ports ---------------------------------
[ -f "$ROSTER" ] || die "$ROSTER not found (COHORT_ROSTER names the roster to submit)"
if [ -n "$REAL_CONFIG" ]; then
  [ -f "$REAL_CONFIG" ] || die "COHORT_CONFIG_REAL=$REAL_CONFIG: no such file"
  if ! env | grep -qE '^(DATABRICKS_(TOKEN|CLIENT_ID|CONFIG_PROFILE|AUTH_TYPE|AZURE_CLIENT_ID)|ARM_CLIENT_ID)=' &&
    ! grep -qE '^[[:space:]]*(account_)?profile:[[:space:]]*[^[:space:]#]' "$REAL_CONFIG"; then
    die "a real workspace needs Databricks credentials: set DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, ARM_CLIENT_ID..., DATABRICKS_CONFIG_PROFILE), or name a ~/.databrickscfg profile in $REAL_CONFIG"
  fi
fi

say "tools"
make --no-print-directory -s tools
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
TEMPORAL_CLI=${TEMPORAL_CLI:-$gobin/temporal}
echo "Temporal CLI: $TEMPORAL_CLI ($("$TEMPORAL_CLI" --version))"

say "building the worker, the starter and the emulator into bin/"
go build -o bin/ ./worker ./starter ./emulator/cmd/databricks-emulator

busy=0
port_free "$TEMPORAL_PORT" || busy=1
port_free "$UI_PORT" || busy=1
if [ -z "$REAL_CONFIG" ]; then port_free "${EMU_LISTEN##*:}" || busy=1; fi
[ "$busy" -eq 0 ] || die "ports are busy (a previous make run still running?)"

mkdir -p data
for f in temporal emulator worker; do
  if [ -s "data/$f.log" ]; then mv "data/$f.log" "data/$f.log.prev"; fi
done

# --- Temporal dev server ------------------------------------------------------
say "Temporal dev server (state: data/temporal.db; log: data/temporal.log)"
# SQLite in WAL mode, synchronous=normal: the dev server's one connection then commits without
# waiting for the disk on every write (a crash of the process loses nothing; a power cut may
# lose the last moments). Measured with bench (N=300, seven activities per participant): 86 s
# instead of 141 s, 200 ms of server CPU per participant instead of 291 ms.
temporal_flags=(--db-filename data/temporal.db --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$UI_PORT" --log-level warn
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal)
if [ "$NAMESPACE" != default ]; then temporal_flags+=(--namespace "$NAMESPACE"); fi
start "Temporal dev server" data/temporal.log "$TEMPORAL_CLI" server start-dev "${temporal_flags[@]}"
temporal_pid=${pids[-1]}
address=127.0.0.1:$TEMPORAL_PORT
wait_for "Temporal dev server" "$temporal_pid" data/temporal.log 90 \
  "$TEMPORAL_CLI" operator namespace describe -n "$NAMESPACE" --address "$address"
"$TEMPORAL_CLI" operator namespace update -n "$NAMESPACE" --retention "$RETENTION" --address "$address" >/dev/null
echo "gRPC $address, namespace $NAMESPACE (retention $RETENTION), Web UI http://localhost:$UI_PORT"
export TEMPORAL_ADDRESS=$address TEMPORAL_NAMESPACE=$NAMESPACE

# --- Databricks: the emulator, or a real workspace -----------------------------
configs=(--config examples/cohort.yaml)
if [ -n "$REAL_CONFIG" ]; then
  say "Databricks: the real workspace in $REAL_CONFIG (credentials from the environment)"
  configs+=(--config "$REAL_CONFIG")
else
  say "Databricks emulator on $EMU_LISTEN (state: data/emulator-state.jsonl; log: data/emulator.log)"
  # Only the emulator's token: other Databricks credentials in this shell would
  # make the SDK refuse to choose, or point it elsewhere.
  while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(DATABRICKS|ARM)_' || true)
  export DATABRICKS_TOKEN=$EMU_TOKEN
  emu_flags=(--listen "$EMU_LISTEN" --token "$EMU_TOKEN"
    --state data/emulator-state.jsonl
    --latency "${COHORT_EMULATOR_LATENCY:-realistic}"
    --rate-limits "${COHORT_EMULATOR_RATE_LIMITS:-azure}"
    --time-scale "${COHORT_EMULATOR_TIME_SCALE:-20}"
    --write-config data/emulator.yaml
    --catalog cohort)   # strict as Azure: no metastore storage, so the admin made the catalog beforehand
  if [ -n "${COHORT_EMULATOR_ACCOUNT_ID:-}" ]; then emu_flags+=(--account-id "$COHORT_EMULATOR_ACCOUNT_ID"); fi
  if [ -n "${COHORT_EMULATOR_WORKSPACE_ID:-}" ]; then emu_flags+=(--workspace-id "$COHORT_EMULATOR_WORKSPACE_ID"); fi
  rm -f data/emulator.yaml
  start "emulator" data/emulator.log bin/databricks-emulator "${emu_flags[@]}"
  wait_for "emulator" "${pids[-1]}" data/emulator.log 60 grep -q '^listening on http://' data/emulator.log
  [ -s data/emulator.yaml ] || die "the emulator wrote no data/emulator.yaml"
  grep '^listening on' data/emulator.log
  # The emulator runs time-scale times faster: so do Cohort's waits and rates.
  awk -v x="${COHORT_EMULATOR_TIME_SCALE:-20}" 'BEGIN {
    printf "# Written by run-local.sh: Cohort paced for an emulator at time-scale %s.\n", x
    printf "cluster: {stop_poll_interval: %dms}\n", 5000/x
    printf "rate_limits: {scim_write: %g, scim_list: %g, scim_get: %g, scim_patch: %g, permissions_write: %g, permissions_read: %g, assignments: %g, unity_catalog: %g, clusters: %g}\n", 5*x, 4*x, 20*x, 2*x, 30*x, 100*x, 10*x, 25*x, 30*x
  }' > data/rehearsal.yaml
  configs+=(--config data/emulator.yaml --config data/rehearsal.yaml)
fi

# --- worker -------------------------------------------------------------------
say "worker (log: data/worker.log)"
start "worker" data/worker.log bin/worker "${configs[@]}"
wait_for "worker" "${pids[-1]}" data/worker.log 60 grep -q '"msg":"worker started"' data/worker.log
echo "worker started (pid ${pids[-1]})"

# --- submit, report, Web UI ---------------------------------------------------
say "starter submit --wait $ROSTER"
# In the background and waited for, so that Ctrl-C interrupts the wait and
# reaches the trap (the starter handles SIGINT itself and exits 1, which a
# foreground wait would take for an ordinary failure).
bin/starter submit --wait "${configs[@]}" "$ROSTER" > >(trap '' INT; tee data/submit.out) &
names+=("starter")
pids+=("$!")
submit_status=0
wait "${pids[-1]}" || submit_status=$?
unset 'names[-1]' 'pids[-1]'
case $submit_status in
  0) ;;
  1) echo "some participants failed: see the report below and 'bin/starter status BATCH'" ;;
  2) die "$ROSTER was rejected (exit 2): fix the file as the message above says; nothing was started" ;;
  *) die "starter submit exited with status $submit_status" ;;
esac
batch=$(sed -n 's/.*-> batch \([^[:space:]]*\).*/\1/p;T;q' data/submit.out)
[ -n "$batch" ] || die "could not read the batch id from the submit output (data/submit.out)"

report=data/report-$(tr -c 'A-Za-z0-9._-' '_' <<<"$batch" | sed 's/_$//').csv
say "starter report $batch --format csv (saved as $report)"
bin/starter report --format csv "${configs[@]}" "$batch" | tee "$report"

ui="http://localhost:$UI_PORT/namespaces/$(urlencode "$NAMESPACE")/workflows?query=$(urlencode "CohortBatch='$batch'")"
say "batch $batch in the Temporal Web UI (the batch and every participant's workflow):"
echo "$ui"

if [ "$KEEP_RUNNING" = 1 ]; then
  say "still running for the Web UI; press Ctrl-C to stop everything (data/ is kept)"
  set +e
  wait -n "${pids[@]}"
  set -e
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || die "${names[i]} exited unexpectedly; see its log in data/"
  done
fi
exit "$submit_status"
