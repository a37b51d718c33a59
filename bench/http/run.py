"""bench/http: requests/s and latency of GET /api/v1/status and of the
accounts list with 10,000 accounts, at 1 and 32 concurrent keep-alive TLS
clients. Usage (Release build):

    /usr/bin/python3 bench/http/run.py BUILD_DIR [SECONDS]

BUILD_DIR holds `roost` and `bench/http/bench-http`."""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def sign_in(port, address, password):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context())
    conn.request("POST", "/api/v1/session", json.dumps({"address": address, "password": password}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
    return r.getheader("Set-Cookie").split(";")[0]


def main():
    build = os.path.abspath(sys.argv[1])
    seconds = sys.argv[2] if len(sys.argv) > 2 else "10"
    import conftest
    conftest.ROOST_BIN = os.path.join(build, "roost")
    base = tempfile.mkdtemp(prefix="roost-bench-http-")
    os.chmod(base, 0o755)
    r = conftest.Roost(base, "bench", extra={"server.log_level": "warn",
                                             "limits.connections_per_ip": "200"})
    try:
        r.start(wait=False)
        r.wait_for_log("event=setup_link", 60)  # warn level: no event=ready line
        r.cli("domain", "add", "bench.example", check=True)
        r.cli("user", "add", "admin@bench.example", input="bench-password\n", check=True)
        r.cli("admin", "add", "admin@bench.example", check=True)
        r.psql("INSERT INTO accounts (domain_id, localpart, address, display_name, used_bytes) "
               "SELECT d.id, 'user' || g, 'user' || g || '@bench.example', 'Bench User ' || g, "
               "g * 1000 FROM generate_series(1, 9999) g, domains d WHERE d.name = 'bench.example'")
        r.psql("ANALYZE accounts")  # as autovacuum would soon after a bulk load
        print("accounts:", r.psql("SELECT count(*) FROM accounts")[0][0])
        cookie = sign_in(r.ports["https"], "admin@bench.example", "bench-password")
        for path in ["/api/v1/status", "/api/v1/accounts?limit=50&offset=5000",
                     "/api/v1/accounts?q=user12&sort=used_bytes&order=desc&limit=50"]:
            for clients in ("1", "32"):
                p = subprocess.run([os.path.join(build, "bench", "http", "bench-http"), "127.0.0.1",
                                    str(r.ports["https"]), path, cookie, clients, seconds],
                                   capture_output=True, text=True)
                print(p.stdout.strip() or p.stderr.strip())
    finally:
        r.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
