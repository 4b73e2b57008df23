#!/bin/sh
# Installs what coffer needs to build and run on Debian 12 (root or sudo).
#   install-deps.sh          build + runtime packages
#   install-deps.sh --package   also what packaging/build-deb.sh uses
#   install-deps.sh --test   also what the test suite and benchmarks use (the
#                            package's build and checks included)
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
pkgs="build-essential cmake pkg-config libarchive-dev libzstd-dev libsodium-dev
  libcurl4-openssl-dev libssl-dev liblmdb-dev libjansson-dev libinih-dev libexpat1-dev
  libsqlite3-dev libyaml-dev libpq-dev zstd age tar"
if [ "${1:-}" = "--package" ] || [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs scdoc dpkg-dev file"
fi
if [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs libcmocka-dev zlib1g-dev valgrind lmdb-utils attr acl python3 hyperfine time jq tzdata
    radosgw ceph-mon ceph-osd ceph-common awscli curl
    postgresql-15 postgresql-contrib mariadb-server mariadb-client redis-server redis-tools
    sqlite3 libsqlite3-dev pgbackrest python3-yaml python3-jsonschema openssl procps iproute2 clang-format
    prometheus lintian man-db groff-base systemd adduser"
fi
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
