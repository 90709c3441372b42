#!/usr/bin/env bash
# Start a local PostgreSQL for layerlab's store tests and print the URL to use.
#
#   eval "$(sudo scripts/postgres.sh --export)"   # sets LAYERLAB_TEST_PG_URL
#   .venv/bin/pytest tests/test_store*.py -q
#
# Idempotent, for Debian, run as root: installs the `postgresql` package when missing
# (apt-get update once, then apt-get install), creates/starts the cluster listening on
# 127.0.0.1 only, creates the role and database, and prints a SQLAlchemy URL on stdout.
# Everything else goes to stderr. Settings (environment):
#   LAYERLAB_PG_PORT (5432)  LAYERLAB_PG_USER (layerlab)  LAYERLAB_PG_PASSWORD (layerlab)
#   LAYERLAB_PG_DB (layerlab_test)
set -euo pipefail

PORT="${LAYERLAB_PG_PORT:-5432}"
PGUSER_NAME="${LAYERLAB_PG_USER:-layerlab}"
PGPASS="${LAYERLAB_PG_PASSWORD:-layerlab}"
PGDB="${LAYERLAB_PG_DB:-layerlab_test}"
CLUSTER=main
EXPORT=0
[[ "${1:-}" == "--export" ]] && EXPORT=1

log() { echo "postgres.sh: $*" >&2; }

for v in "$PGUSER_NAME" "$PGDB"; do
    [[ "$v" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "bad identifier '$v' (need [a-z_][a-z0-9_]*)"; exit 2; }
done
[[ "$PGPASS" != *"'"* ]] || { log "the password must not contain a single quote"; exit 2; }
[[ "$PORT" =~ ^[0-9]+$ ]] || { log "bad port '$PORT'"; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
    log "run as root (it installs packages and manages the cluster as user postgres)"
    exit 2
fi

# 1. Install the server when it is not there.
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q postgresql >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# 2. A cluster for that version, listening on 127.0.0.1 only.
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {found=1} END {exit !found}'; then
    log "creating cluster $VERSION/$CLUSTER on port $PORT"
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
mkdir -p "$CONF_DIR/conf.d"
WANT_CONF="# written by layerlab scripts/postgres.sh
listen_addresses = '127.0.0.1'
port = $PORT
"
RESTART=0
if [[ "$(cat "$CONF_DIR/conf.d/layerlab.conf" 2>/dev/null || true)" != "$(printf '%s' "$WANT_CONF")" ]]; then
    printf '%s' "$WANT_CONF" >"$CONF_DIR/conf.d/layerlab.conf"
    RESTART=1
fi
# Debian's postgresql.conf includes conf.d, but make sure (older hand-made clusters may not).
if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf.d'" "$CONF_DIR/postgresql.conf"; then
    echo "include_dir = 'conf.d'" >>"$CONF_DIR/postgresql.conf"
    RESTART=1
fi

STATUS=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}')
if [[ "$STATUS" == online* ]]; then
    if [[ $RESTART -eq 1 ]]; then
        log "restarting cluster $VERSION/$CLUSTER (settings changed)"
        pg_ctlcluster "$VERSION" "$CLUSTER" restart >&2
    fi
else
    log "starting cluster $VERSION/$CLUSTER"
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || { log "server did not come up on 127.0.0.1:$PORT"; exit 1; }

# 3. Role and database (CREATEDB so tests may make scratch databases; schemas are enough).
psql_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
if [[ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PGUSER_NAME'")" ]]; then
    log "creating role $PGUSER_NAME"
    psql_admin -c "CREATE ROLE $PGUSER_NAME LOGIN CREATEDB PASSWORD '$PGPASS'"
else
    psql_admin -c "ALTER ROLE $PGUSER_NAME LOGIN CREATEDB PASSWORD '$PGPASS'"
fi
if [[ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PGDB'")" ]]; then
    log "creating database $PGDB"
    psql_admin -c "CREATE DATABASE $PGDB OWNER $PGUSER_NAME"
fi

# 4. Check the password login over TCP really works, then print the URL.
PGPASSWORD="$PGPASS" psql -X -q -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" -d "$PGDB" -tAc "SELECT 1" >/dev/null
URL="postgresql+psycopg://$PGUSER_NAME:$PGPASS@127.0.0.1:$PORT/$PGDB"
if [[ $EXPORT -eq 1 ]]; then
    echo "export LAYERLAB_TEST_PG_URL='$URL'"
else
    echo "$URL"
fi
