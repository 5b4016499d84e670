#!/usr/bin/env bash
# System packages the tests need (see bindep.txt): mariadbd for the sandbox's
# real MariaDB servers, shellcheck for ansible-test sanity. Install them with
# apt-get when we can (root), otherwise name the missing package.
set -euo pipefail
missing=()
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/local/sbin/mariadbd ]; then
  missing+=(mariadb-server mariadb-client)
fi
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
for package in "${missing[@]}"; do
  case $package in
    mariadb-server) echo "mariadbd not found: install the package 'mariadb-server' (e.g. sudo apt-get install mariadb-server), then run make again." >&2; exit 1 ;;
    shellcheck) echo "note: shellcheck not found (package 'shellcheck'); ansible-test sanity skips its shell checks." >&2 ;;
  esac
done
