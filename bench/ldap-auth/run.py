#!/usr/bin/python3
"""Runs bench-ldap-auth against a real slapd and a throw-away Roost.

    /usr/bin/python3 bench/ldap-auth/run.py BUILD_DIR [seconds] [starttls|ldaps|plain]

BUILD_DIR holds `roost` and `bench/ldap-auth/bench-ldap-auth` (a Release
build). Starts slapd (tests/integration/ldap_fixture.py, 50 users), a
`roost serve` with its managed PostgreSQL, stores the LDAP settings, runs
the benchmark, then IMAP logins over TLS (imaps: TCP + TLS handshake + LOGIN
+ LOGOUT per login, Python clients) against the server at 1 and 32 clients,
and removes everything."""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
seconds = sys.argv[2] if len(sys.argv) > 2 else "5"
mode = sys.argv[3] if len(sys.argv) > 3 else "starttls"
os.environ["ROOST_BIN"] = os.path.join(build, "roost")

import conftest  # noqa: E402  (the Roost class of the integration tests)
from ldap_fixture import Slapd, stop_roost  # noqa: E402


base = tempfile.mkdtemp(prefix="roost-bench-ldap-")
os.chmod(base, 0o755)
slapd = Slapd("bench-%s.test" % uuid.uuid4().hex[:6], "ad-bench.test", base_dir=base)
roost = conftest.Roost(base, "roost")
try:
    slapd.start()
    roost.start()
    roost.cli("domain", "add", slapd.domain, check=True)
    url = slapd.ldaps_url if mode == "ldaps" else slapd.url
    settings = slapd.settings_openldap(url=url, starttls="no" if mode == "plain" else "yes")
    args = ["preset=openldap"] + ["%s=%s" % kv for kv in settings.items() if kv[0] != "preset"]
    roost.cli("ldap", "set", *args, check=True)
    dsn = "host=%s dbname=roost user=roost" % os.path.join(roost.data_dir, "run")
    print("slapd on loopback, %s, 50 users, %s s per run" % (mode, seconds), flush=True)
    subprocess.run([os.path.join(build, "bench", "ldap-auth", "bench-ldap-auth"), dsn, "50",
                    slapd.domain, seconds], check=True)
    subprocess.run([os.path.join(build, "bench", "ldap-auth", "bench-ldap-auth"), "--imaps",
                    str(roost.ports["imaps"]), "50", slapd.domain, seconds], check=True)
finally:
    stop_roost(roost)
    slapd.cleanup()
    shutil.rmtree(base, ignore_errors=True)
