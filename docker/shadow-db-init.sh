#!/bin/sh
# shadow-db's docker-entrypoint-initdb.d hook (docker-compose.shadow.yml): creates overlord_ro, the
# read-only role overlord-watch reads dereth_ts with (docker/readonly-role.sql). The entrypoint runs
# it once, when the data volume is first initialised. For a volume that already existed, run it once
# by hand (the container has everything it needs):
#   docker compose -f docker-compose.yml -f docker-compose.shadow.yml exec shadow-db \
#     sh /docker-entrypoint-initdb.d/50-overlord-readonly.sh
# SHADOW_DB_READONLY_USER and OVERLORD_READONLY_SQL exist for the tests; leave them unset.
set -e
: "${SHADOW_DB_READONLY_PASSWORD:?set SHADOW_DB_READONLY_PASSWORD (the password of overlord_ro on dereth_ts)}"
psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-dereth_ts}" \
  -v reader="${SHADOW_DB_READONLY_USER:-overlord_ro}" \
  -v reader_password="$SHADOW_DB_READONLY_PASSWORD" \
  -v owner="${POSTGRES_USER:-postgres}" \
  -f "${OVERLORD_READONLY_SQL:-/overlord/readonly-role.sql}"
