#!/bin/bash
# Installs what Roost needs, builds it, and runs it with a managed local
# PostgreSQL and a demo domain, on unprivileged ports.
#   sudo packaging/demo.sh
# Data lives in ./demo/ (remove it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash packaging/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

DEMO=$ROOT/demo
mkdir -p "$DEMO"
chmod 755 "$DEMO"
# When run as root, Roost (and its PostgreSQL) run as the `roost` user,
# which must be able to reach the data directory.
d=$DEMO
while [ "$d" != / ]; do
	if [ "$(id -u)" -eq 0 ] && [ -d "$d" ] && [ "$(stat -c %a "$d" | cut -c3)" = 0 ]; then
		echo "note: $d is not reachable for the roost user; using /var/lib/roost-demo"
		DEMO=/var/lib/roost-demo
		mkdir -p "$DEMO"
		break
	fi
	d=$(dirname "$d")
done

CONF=$DEMO/roost.conf
if [ ! -f "$CONF" ]; then
	cat >"$CONF" <<CONF
; Roost demo configuration (made by packaging/demo.sh)
[server]
hostname = localhost
data_dir = ./data
allow_plaintext_loopback = yes

[listen]
smtp = 127.0.0.1:2525
submission = 127.0.0.1:5587
submissions = 127.0.0.1:4465
imap = 127.0.0.1:1143
imaps = 127.0.0.1:1993
pop3 = 127.0.0.1:1110
pop3s = 127.0.0.1:1995
https = 127.0.0.1:8443
CONF
fi

ROOST="$ROOT/build/roost"
PWFILE=$DEMO/demo-password.txt
if ! "$ROOST" domain list -c "$CONF" | grep -q '^demo.test'; then
	"$ROOST" domain add demo.test -c "$CONF"
fi
if ! "$ROOST" user list demo.test -c "$CONF" | grep -q '^demo@demo.test'; then
	( umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$PWFILE" )
	"$ROOST" user add demo@demo.test --name "Demo User" -c "$CONF" <"$PWFILE"
	"$ROOST" admin add demo@demo.test -c "$CONF"
fi

cat <<EOT

Roost is starting with its data in $DEMO/data.
  Account:        demo@demo.test   password: $(cat "$PWFILE")   (an administrator)
  Browser admin:  https://127.0.0.1:8443/   (self-signed certificate)
  IMAP:           127.0.0.1:1143 (STARTTLS) or 1993 (TLS)
  POP3:           127.0.0.1:1110 (STLS) or 1995 (TLS)
  Sending:        127.0.0.1:5587 (STARTTLS) or 4465 (TLS), with the account's password
  Receiving:      127.0.0.1:2525, e.g.  swaks --server 127.0.0.1:2525 --to demo@demo.test
Stop with Ctrl-C.

EOT
exec "$ROOST" serve -c "$CONF"
