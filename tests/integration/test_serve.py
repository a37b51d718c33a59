"""`roost serve`: start-up, TLS on a listener, limits, SIGHUP and SIGTERM,
start-up errors."""
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import free_port


def https_get(port, path="/healthz", host="127.0.0.1", timeout=10):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as raw:
        raw.settimeout(timeout)
        raw.connect((host, port))
        with ctx.wrap_socket(raw, server_hostname="mail.test.example") as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode("utf-8", "replace"), s.version(), s.getpeercert(binary_form=True)


def test_healthz_over_tls(server):
    body, version, _ = https_get(server.ports["https"])
    assert body.startswith("HTTP/1.1 200")
    assert version in ("TLSv1.2", "TLSv1.3")
    payload = json.loads(body.split("\r\n\r\n", 1)[1])
    assert payload["status"] == "ok"
    assert "content-security-policy" in body.lower()
    assert "strict-transport-security" in body.lower()


def test_healthz_with_curl(server):
    r = subprocess.run(["curl", "-sk", "--max-time", "10",
                        "https://127.0.0.1:%d/healthz" % server.ports["https"]],
                       capture_output=True, text=True)
    assert r.returncode == 0 and '"status":"ok"' in r.stdout


def test_self_signed_certificate_for_hostname(server):
    cert = os.path.join(server.data_dir, "tls", "cert.pem")
    key = os.path.join(server.data_dir, "tls", "key.pem")
    assert os.path.exists(cert)
    assert os.stat(key).st_mode & 0o077 == 0
    r = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
                       capture_output=True, text=True)
    assert "DNS:mail.test.example" in r.stdout


def test_old_tls_versions_refused(server):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.ports["https"],
                        "-tls1_1"], input="", capture_output=True, text=True, timeout=20)
    assert "Cipher is (NONE)" in r.stdout or r.returncode != 0
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.ports["https"],
                        "-tls1_2", "-brief"], input="", capture_output=True, text=True, timeout=20)
    assert "Protocol version: TLSv1.2" in r.stderr


def test_garbage_then_still_serving(server):
    port = server.ports["https"]
    # Plain bytes to a TLS listener, a half-open connection, a TLS client that
    # sends a broken request: each is dropped, the next client is served.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n\x00\xff" * 100)
        try:
            s.recv(100)
        except (ConnectionResetError, socket.timeout):
            pass
    s2 = socket.create_connection(("127.0.0.1", port), timeout=5)
    s2.shutdown(socket.SHUT_WR)
    body, _, _ = https_get(port, "/" + "A" * 100000)
    assert body.startswith("HTTP/1.1 4")
    body, _, _ = https_get(port, "/no-such-route")
    assert body.startswith("HTTP/1.1 404")
    s2.close()
    assert https_get(port)[0].startswith("HTTP/1.1 200")


def test_runs_as_unprivileged_user(server):
    if os.geteuid() != 0:
        pytest.skip("privilege drop applies when started as root")
    with open("/proc/%d/status" % server.proc.pid) as f:
        uid_line = [l for l in f if l.startswith("Uid:")][0].split()
    import pwd
    roost_uid = pwd.getpwnam("roost").pw_uid
    assert all(int(u) == roost_uid for u in uid_line[1:]), uid_line
    assert "uid=%d" % roost_uid in server.log_text()


def test_sigterm_stops_cleanly_and_stops_cluster(fresh):
    r = fresh()
    r.start()
    assert https_get(r.ports["https"])[0].startswith("HTTP/1.1 200")
    t = time.time()
    rc = r.stop(signal.SIGTERM)
    assert rc == 0
    assert time.time() - t < 15
    assert "event=stopped" in r.log_text()
    assert not os.path.exists(os.path.join(r.data_dir, "pgdata", "postmaster.pid"))
    # Starts again on the same data.
    r.start()
    assert https_get(r.ports["https"])[0].startswith("HTTP/1.1 200")
    assert r.stop() == 0


def test_sigterm_waits_for_request_in_flight(fresh):
    r = fresh()
    r.start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", r.ports["https"]), timeout=10)
    s = ctx.wrap_socket(raw)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # request not finished yet
    time.sleep(0.3)
    r.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    s.sendall(b"\r\n")
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    s.close()
    assert r.proc.wait(timeout=30) == 0
    r.stop()


def test_stale_state_after_kill_9(fresh):
    r = fresh()
    r.start()
    pid_file = os.path.join(r.data_dir, "pgdata", "postmaster.pid")
    with open(pid_file) as f:
        pg_pid = int(f.readline())
    r.proc.kill()
    r.proc.wait()
    os.kill(pg_pid, signal.SIGKILL)
    time.sleep(0.5)
    assert os.path.exists(pid_file)   # stale
    r.proc = None
    r.log.close()
    r.start()
    assert https_get(r.ports["https"])[0].startswith("HTTP/1.1 200")
    r.stop()


def test_ipv6_listener(fresh):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    r = fresh()
    port = free_port()
    r.extra["listen.https"] = "127.0.0.1:%d, [::1]:%d" % (r.ports["https"], port)
    r.write_config()
    r.start()
    assert https_get(port, host="::1")[0].startswith("HTTP/1.1 200")
    assert https_get(r.ports["https"])[0].startswith("HTTP/1.1 200")
    r.stop()


def test_port_in_use_is_a_clear_error(fresh):
    r = fresh()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", r.ports["https"]))
    blocker.listen()
    try:
        res = subprocess.run([__import__("conftest").ROOST_BIN, "serve", "-c", r.conf],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1
        assert "https" in res.stderr and "127.0.0.1:%d" % r.ports["https"] in res.stderr
        assert "Address already in use" in res.stderr
    finally:
        blocker.close()
    assert not os.path.exists(os.path.join(r.data_dir, "pgdata", "postmaster.pid"))


def test_missing_postgres_binaries(fresh, tmp_path):
    r = fresh()
    r.extra["database.pg_bindir"] = str(tmp_path)
    r.write_config()
    res = r.cli("migrate")
    assert res.returncode == 1
    assert "PostgreSQL server programs not found" in res.stderr


def test_bad_dsn_is_a_clear_error(fresh):
    r = fresh()
    r.extra["database.dsn"] = "host=/nonexistent dbname=x connect_timeout=2"
    r.write_config()
    res = r.cli("migrate")
    assert res.returncode == 75  # EX_TEMPFAIL: the database may come back
    assert res.stderr.startswith("roost: database:")


def test_connection_limit_per_ip(fresh):
    r = fresh(extra={"limits.connections_per_ip": "2"})
    r.start()
    held = [socket.create_connection(("127.0.0.1", r.ports["https"])) for _ in range(2)]
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", r.ports["https"]), timeout=5) as s:
        # implicit TLS listener: no plain-text reply, just closed
        assert s.recv(100) == b""
    for h in held:
        h.close()
    time.sleep(0.3)
    assert https_get(r.ports["https"])[0].startswith("HTTP/1.1 200")
    assert "event=busy" in r.log_text()
    r.stop()


def test_plain_http_redirects_to_https(fresh):
    port = free_port()
    r = fresh(extra={"listen.http": "127.0.0.1:%d" % port})
    r.start()
    out = subprocess.run(["curl", "-s", "-i", "--max-time", "10", "http://127.0.0.1:%d/healthz?x=1" % port],
                         capture_output=True, text=True).stdout
    assert out.startswith("HTTP/1.1 301")
    assert "Location: https://127.0.0.1:%d/healthz?x=1" % r.ports["https"] in out
    r.stop()


def test_sighup_reloads_certificate(fresh):
    r = fresh()
    # In the installation's directory: readable by the unprivileged user.
    cert, key = os.path.join(r.dir, "c.pem"), os.path.join(r.dir, "k.pem")

    def make_cert(cn):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=" + cn], check=True, capture_output=True)
        os.chmod(key, 0o644)
    make_cert("first.example")
    r.extra["tls.cert"] = cert
    r.extra["tls.key"] = key
    r.write_config()
    r.start()
    _, _, der1 = https_get(r.ports["https"])
    make_cert("second.example")
    r.proc.send_signal(signal.SIGHUP)
    r.wait_for_log("event=tls_reload status=ok")
    _, _, der2 = https_get(r.ports["https"])
    assert der1 != der2
    # A broken certificate on reload is refused and the old one kept.
    with open(cert, "w") as f:
        f.write("not a certificate")
    r.proc.send_signal(signal.SIGHUP)
    r.wait_for_log("event=tls_reload status=failed")
    _, _, der3 = https_get(r.ports["https"])
    assert der3 == der2
    r.stop()


def test_relative_certificate_paths_follow_the_config_file(fresh):
    """cert and key as relative paths mean beside roost.conf, whatever the
    working directory (under systemd it is /)."""
    r = fresh()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", os.path.join(r.dir, "k.pem"),
                    "-out", os.path.join(r.dir, "c.pem"), "-days", "2",
                    "-subj", "/CN=relative.example"], check=True, capture_output=True)
    os.chmod(os.path.join(r.dir, "k.pem"), 0o644)
    r.extra["tls.cert"] = "c.pem"
    r.extra["tls.key"] = "./k.pem"
    r.write_config()
    assert os.getcwd() != r.dir
    r.start()
    _, _, der = https_get(r.ports["https"])
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                         capture_output=True, check=True).stdout
    assert b"relative.example" in out
    r.stop()


def test_external_dsn_and_two_nodes_on_one_database(fresh):
    """Node B uses node A's database through a DSN: migrations under the
    advisory lock are a no-op for B, and both serve the same data."""
    a = fresh()
    a.start()
    b = fresh()
    b.extra["database.dsn"] = "host=%s dbname=roost user=roost" % os.path.join(a.data_dir, "run")
    b.write_config()
    r = b.cli("migrate", check=True)
    assert "(0 migrations applied now)" in r.stdout
    b.start()
    b.cli("domain", "add", "shared-by-nodes.test", check=True)
    assert "shared-by-nodes.test" in a.cli("domain", "list", check=True).stdout
    assert https_get(b.ports["https"])[0].startswith("HTTP/1.1 200")
    assert not os.path.exists(os.path.join(b.data_dir, "pgdata"))
    assert b.stop() == 0
    assert https_get(a.ports["https"])[0].startswith("HTTP/1.1 200")
    assert a.stop() == 0


def https_raw(port, request, timeout=10):
    """Sends request bytes as they are; returns everything the server sent
    until it closed (or the timeout)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="mail.test.example") as s:
            s.sendall(request)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ssl.SSLError, ConnectionResetError):
                pass
            return data


@pytest.mark.parametrize("headers,status", [
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
    (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: gzip, chunked\r\n", 501),
    (b"Transfer-Encoding: identity\r\n", 501),
])
def test_http_body_framing_is_unambiguous(server, headers, status):
    """RFC 9112 6: a body's length is told one way only; anything else is
    refused at once (a proxy in front could read it another way)."""
    req = (b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           + headers + b"Connection: close\r\n\r\n{}\r\n")
    t0 = time.time()
    data = https_raw(server.ports["https"], req)
    assert time.time() - t0 < 5
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert data.count(b"HTTP/1.1 ") == 1, data
    assert https_get(server.ports["https"])[0].startswith("HTTP/1.1 200")


@pytest.mark.parametrize("length,status", [(b"-1", 400), (b"12345678901234567890123", 413)])
def test_http_broken_content_length(server, length, status):
    """libmicrohttpd refuses these itself, before Roost sees the request
    (and 0.9.75 sends its answer twice); the server goes on serving."""
    req = (b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\nContent-Length: " + length
           + b"\r\nConnection: close\r\n\r\n{}")
    assert https_raw(server.ports["https"], req).startswith(b"HTTP/1.1 %d " % status)
    assert https_get(server.ports["https"])[0].startswith("HTTP/1.1 200")


def test_http_chunked_body_still_taken(server):
    req = (b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    # past the framing check: refused for want of a session, not for its body
    assert https_raw(server.ports["https"], req).startswith(b"HTTP/1.1 401 ")
