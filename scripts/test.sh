#!/usr/bin/env bash
# make test: every check and every test, with one command (CI runs exactly this).
#
#   1. go vet ./...
#   2. gofmt: no file would change
#   3. workflowcheck ./workflows/...   (Temporal's determinism check)
#   4. go test ./... -count=1 -timeout 25m, the end-to-end tests included
#
# The end-to-end tests in e2e/ start their own Temporal dev server and emulator
# on free loopback ports; they find the Temporal CLI through $TEMPORAL_CLI,
# which this script installs first if it is missing (make tools). One of them
# (TestPostgres_twoWorkersOneKilled) runs the Temporal server on PostgreSQL
# (scripts/temporal-postgres.sh): this script builds the server if it is
# missing (make temporal-server; minutes, once) and needs PostgreSQL installed
# (.ci/run installs it).
#
# Without Chromium the usage report's browser tests skip (see README, Test it):
# this script says so before go test, whose output hides a passing skip.
#
# Every step runs even when an earlier one fails, so one run shows every
# problem; the last line says which steps failed. Exit status 1 if any did.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
gobin=$("$GO" env GOBIN)
gobin=${gobin:-$("$GO" env GOPATH)/bin}

step() { printf '\n==> %s\n' "$*"; }
join() { local IFS=,; printf '%s' "$*" | sed 's/,/, /g'; }
passed=()
failed=()
record() { # record NAME EXIT_STATUS
  if [ "$2" -eq 0 ]; then
    passed+=("$1")
  else
    failed+=("$1")
    printf '%s: FAILED\n' "$1"
  fi
}

step "tools (Temporal CLI, workflowcheck, Temporal server; installed only if missing)"
make --no-print-directory -s tools temporal-server
export TEMPORAL_POSTGRES_TEST=1
export TEMPORAL_CLI=${TEMPORAL_CLI:-$gobin/temporal}
"$TEMPORAL_CLI" --version

step "go vet ./..."
rc=0
"$GO" vet ./... || rc=$?
record "go vet" "$rc"

step "gofmt -l"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t gofiles < <(git ls-files --cached --others --exclude-standard -- '*.go')
else
  mapfile -t gofiles < <(find . -name '*.go' -not -path './.git/*' -not -path './data/*')
fi
rc=0
if [ ${#gofiles[@]} -gt 0 ]; then
  unformatted=$(gofmt -l "${gofiles[@]}") || rc=$?
  if [ -n "$unformatted" ]; then
    printf 'not gofmt-ed (gofmt -w them):\n%s\n' "$unformatted"
    rc=1
  fi
fi
record "gofmt" "$rc"

step "workflowcheck ./workflows/..."
wfc_flags=()
if [ -f workflowcheck.config.yaml ]; then wfc_flags=(-config workflowcheck.config.yaml); fi
rc=0
"$gobin/workflowcheck" "${wfc_flags[@]}" ./workflows/... || rc=$?
record "workflowcheck" "$rc"

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  # go test shows a passing package's skips only with -v: say it here.
  printf '\nWARNING: no chromium, chromium-browser or google-chrome on PATH: the usage report'"'"'s browser tests (usagehtml) are SKIPPED (with CI=true they fail); install it: apt-get install -y chromium\n'
fi

step "go test ./... -count=1 -timeout 25m -parallel 3"
rc=0
# -parallel 3: the end-to-end scenarios mostly wait (see e2e/doc.go).
"$GO" test ./... -count=1 -timeout 25m -parallel 3 || rc=$?
record "go test" "$rc"

echo
if [ ${#failed[@]} -gt 0 ]; then
  printf 'make test: FAILED: %s (passed: %s)\n' "$(join "${failed[@]}")" "$(join "${passed[@]}")"
  exit 1
fi
printf 'make test: all passed (%s)\n' "$(join "${passed[@]}")"
