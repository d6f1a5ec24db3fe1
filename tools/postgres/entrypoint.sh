#!/bin/sh
# The PostgreSQL image's entrypoint (tools/postgres/Dockerfile): makes the cluster on first
# start, then runs the server as PID 1 (`exec`), so the engine's stop signal reaches it.
#
# First start (no $PGDATA/PG_VERSION): initdb into $PGDATA.partial (UTF-8, C locale,
# passwords as SCRAM), the role POSTGRES_USER (a login that is no superuser, with the
# password in the file POSTGRES_PASSWORD_FILE) and its database POSTGRES_DB, made in
# single-user mode (no server listens before it is ready); then renamed to $PGDATA. A start
# that dies half-way leaves only the .partial directory, made again next time.
#
# Access: over TCP only (no Unix socket: the root filesystem is read-only), from any
# address, with a password; the superuser `postgres` has none, so it cannot log in at all.
#
# Environment: PGDATA (set by the image), POSTGRES_USER (pilothouse), POSTGRES_DB
# (pilothouse), POSTGRES_PASSWORD_FILE (required on first start). Arguments are passed to
# `postgres` (e.g. `-c shared_buffers=256MB`).
set -eu

POSTGRES_USER=${POSTGRES_USER:-pilothouse}
POSTGRES_DB=${POSTGRES_DB:-pilothouse}

say() { printf 'pilothouse-postgres: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# Names and the password go into SQL text: allow only what needs no quoting.
check_word() {
    case "$2" in
        "" | *[!A-Za-z0-9_]*) die "$1 must be letters, digits and _ only (got '$2')" ;;
    esac
}

make_cluster() {
    partial="$PGDATA.partial"
    [ -n "${POSTGRES_PASSWORD_FILE:-}" ] || die "POSTGRES_PASSWORD_FILE is not set"
    [ -r "$POSTGRES_PASSWORD_FILE" ] || die "cannot read $POSTGRES_PASSWORD_FILE"
    password=$(tr -d '\r\n' <"$POSTGRES_PASSWORD_FILE")
    check_word POSTGRES_USER "$POSTGRES_USER"
    check_word POSTGRES_DB "$POSTGRES_DB"
    check_word "the password in $POSTGRES_PASSWORD_FILE" "$password"
    rm -rf "$partial"
    say "making the cluster in $PGDATA"
    initdb --pgdata="$partial" --username=postgres --encoding=UTF8 --locale=C \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    cat >>"$partial/postgresql.conf" <<EOF
# pilothouse-postgres
listen_addresses = '*'
unix_socket_directories = ''
jit = off
EOF
    cat >>"$partial/pg_hba.conf" <<EOF
# pilothouse-postgres: every address, with a password
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
EOF
    # Single-user mode reads one statement per line.
    postgres --single -D "$partial" postgres >/dev/null <<EOF
CREATE ROLE $POSTGRES_USER LOGIN PASSWORD '$password';
CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER;
EOF
    mv "$partial" "$PGDATA"
    say "made role $POSTGRES_USER and database $POSTGRES_DB"
}

[ -s "$PGDATA/PG_VERSION" ] || make_cluster
exec postgres -D "$PGDATA" "$@"
