#!/bin/sh
# The one list of Debian packages Roost needs to build, run and test.
# Usage: packaging/install-deps.sh [build|test]   (default: test, which is a superset)
set -eu
what="${1:-test}"

BUILD="build-essential cmake pkg-config git ca-certificates
  libssl-dev libpq-dev libmicrohttpd-dev libldap-dev libical-dev
  libargon2-dev libjansson-dev libcrypt-dev zlib1g-dev"
RUN="postgresql postgresql-contrib openssl"
TEST="python3 python3-pytest python3-psycopg2 python3-dnslib python3-aiosmtpd
  python3-dkim python3-ldap3 python3-caldav python3-cryptography
  slapd ldap-utils swaks curl procps libclang-rt-14-dev clang"
BROWSER="chromium"
# Node.js and npm only when the machine has none (playwright-core comes from npm).
if ! command -v npm >/dev/null 2>&1; then BROWSER="$BROWSER nodejs npm"; fi

case "$what" in
  build) pkgs="$BUILD $RUN" ;;
  test)  pkgs="$BUILD $RUN $TEST $BROWSER" ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $pkgs

# The system user Roost drops to when started as root (and that owns the
# managed PostgreSQL cluster, which refuses to run as root).
if [ "$(id -u)" -eq 0 ] && ! getent passwd roost >/dev/null; then
	useradd --system --home-dir /var/lib/roost --no-create-home \
		--shell /usr/sbin/nologin roost
fi
