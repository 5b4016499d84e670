#!/usr/bin/env bash
# The sandbox runs real MariaDB servers from the mariadbd binary. Install the
# Debian/Ubuntu package when we can (root), otherwise say which one is missing.
set -euo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/local/sbin/mariadbd ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "mariadbd not found: installing mariadb-server with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
  exit 0
fi
echo "mariadbd not found: install the package 'mariadb-server' (e.g. sudo apt-get install mariadb-server), then run make again." >&2
exit 1
