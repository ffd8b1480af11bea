#!/bin/sh
# Runs once, when the PostgreSQL volume is initialised. The service refuses to run as a superuser
# or BYPASSRLS role (row-level security would not apply), so it gets a plain role that owns its
# database and nothing else.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v role="$AUTH_SERVICE_DB_USER" -v password="$AUTH_SERVICE_DB_PASSWORD" -v db="$AUTH_SERVICE_DB_NAME" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
