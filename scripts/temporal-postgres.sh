#!/usr/bin/env bash
# A Temporal server on a local PostgreSQL, as docker-compose.yml runs it, without Docker.
#
#   scripts/temporal-postgres.sh --data DIR --port PORT [--pg-port PORT]
#
# Frontend on 127.0.0.1:PORT, namespace `default` (30 days' retention, as in compose);
# PostgreSQL 15 (the Debian package) on 127.0.0.1:--pg-port (default: the first free port
# from 5433), its data and both servers' logs kept in DIR, so a second run on the same DIR
# finds everything again. Runs in the foreground, prints a line starting with `ready` once
# the frontend answers in the namespace, and stops what it started on SIGTERM or Ctrl-C.
#
# What it uses:
#   - the server version pinned in the Makefile (TEMPORAL_SERVER_VERSION), installed with
#     `make temporal-server` if missing, and the Temporal CLI (`make tools`) for the namespace;
#   - the database schema created and upgraded by the server's own SQL tool
#     (temporal-sql-tool) from the schema files of that same server module;
#   - scripts/temporal-dynamicconfig.yaml, the dynamic config docker-compose.yml mounts too.
# The server's internal services (history, matching, worker) take the first free ports
# above PORT; PORT must be below 32761, as the server keeps ports in a smallint column. PostgreSQL refuses to run as root: as root, it runs as the `postgres` user,
# which owns DIR/postgresql and must be able to reach DIR (its parents traversable).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() { echo "usage: $0 --data DIR --port PORT [--pg-port PORT]" >&2; exit 2; }
data="" port="" pg_port=""
while [ $# -gt 0 ]; do
  case $1 in
    --data) data=${2:-}; shift 2 || usage ;;
    --port) port=${2:-}; shift 2 || usage ;;
    --pg-port) pg_port=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[ -n "$data" ] && [ -n "$port" ] || usage
mkdir -p "$data"
data=$(cd "$data" && pwd)
log() { printf 'temporal-postgres: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------
make --no-print-directory -s tools temporal-server >&2
GO=${GO:-go}
gobin=$("$GO" env GOBIN)
gobin=${gobin:-$("$GO" env GOPATH)/bin}
temporal_cli=${TEMPORAL_CLI:-$gobin/temporal}
server_dir=$(make --no-print-directory -s temporal-server-dir)
version=${server_dir##*/temporal-server-}
schema_dir=$("$GO" env GOMODCACHE)/go.temporal.io/server@$version/schema/postgresql/v12
[ -d "$schema_dir" ] || (cd / && "$GO" mod download go.temporal.io/server@"$version")
[ -d "$schema_dir" ] || { log "no schema files at $schema_dir"; exit 1; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
  log "PostgreSQL is not installed: apt-get install postgresql"
  exit 1
fi

# --- ports -------------------------------------------------------------------------------
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
free="" # set by next_free
next_free() { # next_free FROM: the first port >= FROM neither listening nor taken here
  free=$1
  while in_use "$free" || [[ $taken == *" $free "* ]]; do free=$((free + 1)); done
  taken+="$free "
}
# The server records its services' ports in PostgreSQL as a smallint.
if [ "$port" -gt 32760 ]; then log "--port must be below 32761 (the server keeps ports as smallint)"; exit 2; fi
if in_use "$port"; then log "port $port is in use"; exit 1; fi
taken+="$port "
if [ -z "$pg_port" ]; then next_free 5433; pg_port=$free; fi
taken+="$pg_port "
next_free $((port + 1)); front_member=$free
next_free $((port + 1)); hist_grpc=$free
next_free $((port + 1)); hist_member=$free
next_free $((port + 1)); match_grpc=$free
next_free $((port + 1)); match_member=$free
next_free $((port + 1)); worker_grpc=$free
next_free $((port + 1)); worker_member=$free

# --- PostgreSQL --------------------------------------------------------------------------
pgdata=$data/postgresql
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  if ! "${as_pg[@]}" test -x "$data"; then
    log "the postgres user cannot reach $data: make its parent folders traversable (chmod o+x)"
    exit 1
  fi
fi
pg_user=temporal pg_password=temporal # as in docker-compose.yml; the server listens on 127.0.0.1 only
if [ ! -f "$pgdata/PG_VERSION" ]; then
  mkdir -p "$pgdata"
  [ ${#as_pg[@]} -eq 0 ] || chown postgres: "$pgdata"
  chmod 700 "$pgdata"
  printf '%s\n' "$pg_password" >"$data/.pgpass-init"
  [ ${#as_pg[@]} -eq 0 ] || chown postgres: "$data/.pgpass-init"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pgdata" -U "$pg_user" --pwfile="$data/.pgpass-init" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >"$data/initdb.log" 2>&1 ||
    { cat "$data/initdb.log" >&2; rm -f "$data/.pgpass-init"; exit 1; }
  rm -f "$data/.pgpass-init"
fi

pg_pid="" server_pid=""
stop_all() {
  trap - TERM INT EXIT
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_pid" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$pgdata" -m fast -w >/dev/null 2>&1 || true
    wait "$pg_pid" 2>/dev/null || true
  fi
}
trap 'stop_all; exit 0' TERM INT
trap stop_all EXIT

# No Unix socket (its path under DIR could exceed the 107-byte limit): TCP on 127.0.0.1 only.
"${as_pg[@]}" "$pg_bin/postgres" -D "$pgdata" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories= -c max_connections=200 >>"$data/postgresql.log" 2>&1 &
pg_pid=$!
for _ in $(seq 1 100); do
  if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then break; fi
  kill -0 "$pg_pid" 2>/dev/null || { tail -n 20 "$data/postgresql.log" >&2; exit 1; }
  sleep 0.2
done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { log "PostgreSQL not ready on $pg_port"; exit 1; }

sqltool() { "$server_dir/sql" --plugin postgres12 --ep 127.0.0.1 -p "$pg_port" -u "$pg_user" --pw "$pg_password" "$@"; }
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal ] || dir=visibility
  exists=$(PGPASSWORD=$pg_password "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'")
  if [ "$exists" != 1 ]; then
    sqltool --db "$db" create-database >>"$data/schema.log" 2>&1
    sqltool --db "$db" setup-schema -v 0.0 >>"$data/schema.log" 2>&1
  fi
  # Upgrades an existing schema to this server's version; a no-op when current.
  sqltool --db "$db" update-schema -d "$schema_dir/$dir/versioned" >>"$data/schema.log" 2>&1 ||
    { tail -n 20 "$data/schema.log" >&2; exit 1; }
done

# --- Temporal ----------------------------------------------------------------------------
mkdir -p "$data/temporal/config"
cat >"$data/temporal/config/cohort.yaml" <<EOF
# Written by scripts/temporal-postgres.sh on every start.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4 # as docker-compose.yml's auto-setup image (NUM_HISTORY_SHARDS)
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: 127.0.0.1:$pg_port
        connectProtocol: tcp
        user: $pg_user
        password: $pg_password
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: 127.0.0.1:$pg_port
        connectProtocol: tcp
        user: $pg_user
        password: $pg_password
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc: {grpcPort: $port, membershipPort: $front_member, bindOnLocalHost: true}
  history:
    rpc: {grpcPort: $hist_grpc, membershipPort: $hist_member, bindOnLocalHost: true}
  matching:
    rpc: {grpcPort: $match_grpc, membershipPort: $match_member, bindOnLocalHost: true}
  worker:
    rpc: {grpcPort: $worker_grpc, membershipPort: $worker_member, bindOnLocalHost: true}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:$port
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $repo/scripts/temporal-dynamicconfig.yaml
  pollInterval: 10s
EOF
"$server_dir/server" --root "$data/temporal" --config config --env cohort --allow-no-auth start \
  >>"$data/temporal.log" 2>&1 &
server_pid=$!

address=127.0.0.1:$port
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || { log "the Temporal server exited"; tail -n 30 "$data/temporal.log" >&2; exit 1; }
  if "$temporal_cli" operator cluster health --address "$address" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
if ! "$temporal_cli" operator namespace describe --address "$address" -n default >/dev/null 2>&1; then
  "$temporal_cli" operator namespace create --address "$address" --retention 720h -n default >&2
fi
# The frontend knows a new namespace once its registry refreshes (up to 10 s).
until "$temporal_cli" workflow count --address "$address" -n default >/dev/null 2>&1; do
  kill -0 "$server_pid" 2>/dev/null || { log "the Temporal server exited"; tail -n 30 "$data/temporal.log" >&2; exit 1; }
  sleep 0.5
done
echo "ready: Temporal $version on PostgreSQL, frontend $address, namespace default, postgres 127.0.0.1:$pg_port, logs in $data"

# Runs until SIGTERM (trap above) or until a server exits on its own.
status=0
wait -n "$server_pid" "$pg_pid" || status=$?
log "a server exited on its own (status $status); stopping"
tail -n 30 "$data/temporal.log" >&2
exit 1
