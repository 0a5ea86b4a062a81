#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use answers on 127.0.0.1:5432.
set -euo pipefail
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "postgres: no cluster under /etc/postgresql; creating one" >&2
  pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
conf=/etc/postgresql/$version/main
# Tests connect over TCP as postgres with trust auth (a throwaway local cluster).
if ! grep -q "stagekeeper-tests" "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust # stagekeeper-tests' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -h 127.0.0.1 -p 5432
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
# The suite runs three pytest workers, each with its own event stores, read stores, pools and
# process-manager workers: the Debian default of 100 connections is too few for it.
wanted=400
current=$(psql -h 127.0.0.1 -U postgres -tAc "SHOW max_connections")
if [ "$current" -lt "$wanted" ]; then
  echo "postgres: raising max_connections from $current to $wanted (restart)" >&2
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = $wanted"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main restart
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
  done
  pg_isready -h 127.0.0.1 -p 5432
fi
