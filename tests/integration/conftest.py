"""Fixtures for integration tests: a real `roost serve` on free loopback
ports over a managed PostgreSQL cluster made for the test run.

Everything lives under one temporary directory that is removed at the end.
When the tests run as root, Roost drops to the `roost` system user, so the
directory is made traversable for it.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOST_BIN = os.environ.get("ROOST_BIN", os.path.join(ROOT, "build", "roost"))

PORT_KEYS = ["smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "https"]


_handed_out = set()


def free_port():
    """A loopback port nobody listens on, never the same one twice in a run
    (the kernel may hand a just-closed ephemeral port out again)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def write_config(path, data_dir, ports, extra=None):
    """Writes a roost.conf; extra maps "section.key" to a value."""
    sections = {
        "server": {"hostname": "mail.test.example", "data_dir": data_dir,
                   "log_level": "debug", "allow_plaintext_loopback": "yes"},
        "database": {},
        "tls": {},
        "listen": {k: ("127.0.0.1:%d" % ports[k]) if k in ports else "" for k in PORT_KEYS},
        "limits": {},
        "dns": {},
    }
    for k, v in (extra or {}).items():
        sec, key = k.split(".", 1)
        sections.setdefault(sec, {})[key] = v
    with open(path, "w") as f:
        for sec, kv in sections.items():
            f.write("[%s]\n" % sec)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))
            f.write("\n")


class Roost:
    """One Roost installation: a config file, a data directory, maybe a
    running server."""

    def __init__(self, base, name="roost", extra=None, ports=None):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "roost.conf")
        self.ports = ports if ports is not None else {k: free_port() for k in PORT_KEYS}
        self.extra = dict(extra or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "serve.log")
        self.write_config()

    def write_config(self):
        write_config(self.conf, self.data_dir, self.ports, self.extra)

    def cli(self, *args, input=None, check=False, timeout=120):
        cmd = [ROOST_BIN] + list(args)
        if "-c" not in args and args and args[0] not in ("version", "--help", "-h", "help"):
            cmd += ["-c", self.conf]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("roost %s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def start(self, wait=True, timeout=60):
        assert self.proc is None
        self.log = open(self.log_path, "ab")
        self.log_offset = self.log.tell()
        self.proc = subprocess.Popen([ROOST_BIN, "serve", "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_for_log("event=ready", timeout)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, needle, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log_text():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("roost serve exited (%s) before %r:\n%s" % (
                    self.proc.returncode, needle, self.log_text()[-4000:]))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %r:\n%s" % (needle, self.log_text()[-4000:]))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def psql(self, sql):
        """Runs SQL in the managed cluster (through the server's socket)."""
        import psycopg2
        conn = psycopg2.connect(host=os.path.join(self.data_dir, "run"), dbname="roost", user="roost")
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()


@pytest.fixture(scope="session")
def base_dir():
    d = tempfile.mkdtemp(prefix="roost-test-")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("ROOST_KEEP_TEST_DIR") != "1":
        shutil.rmtree(d, ignore_errors=True)
    else:
        print("test files kept in", d)


@pytest.fixture(scope="module")
def dns():
    """A fake DNS server on loopback (fakes.FakeDNS) for one test module."""
    from fakes import FakeDNS  # fakes imports this module
    d = FakeDNS().start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def server(base_dir):
    """A running server shared by the tests of a session (and its cluster,
    which CLI calls reuse)."""
    r = Roost(base_dir, "shared")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def fresh(base_dir, request):
    """A separate installation (own data dir and cluster) for one test."""
    made = []

    def make(name=None, **kw):
        r = Roost(base_dir, name or "%s-%d" % (request.node.name[:40], len(made)), **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop(signal.SIGKILL if r.proc and r.proc.poll() is None else signal.SIGTERM)
        pg = os.path.join(r.data_dir, "pgdata")
        if os.path.isdir(pg):
            pg_ctl = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
            subprocess.run(_as_owner(pg, [pg_ctl, "-D", pg, "-m", "immediate", "stop"]),
                           capture_output=True)


def _as_owner(path, cmd):
    if os.geteuid() != 0:
        return cmd
    import pwd
    owner = pwd.getpwuid(os.stat(path).st_uid).pw_name
    return ["runuser", "-u", owner, "--"] + cmd


# ---- helpers shared by the protocol tests ----


def metrics(srv):
    """The server's /metrics (no login needed) as {name: value}."""
    import re
    import urllib.request
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = "https://127.0.0.1:%d/metrics" % srv.ports["https"]
    with urllib.request.urlopen(url, context=ctx, timeout=20) as r:
        text = r.read().decode()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+) (\d+)$", text, re.M)}

def tls_ctx():
    """A client TLS context that accepts the server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def unique_domain(prefix="t", suffix="test"):
    import uuid
    return "%s%s.%s" % (prefix, uuid.uuid4().hex[:10], suffix)


class RawClient:
    """A raw line-oriented client connection (plain or implicit TLS), for
    what the standard clients cannot send: pipelining, binary chunks, abuse."""

    def __init__(self, port, wrap=False, timeout=20):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if wrap:
            self.s = tls_ctx().wrap_socket(self.s)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        """The next CRLF-terminated line, without the CRLF."""
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def closed(self, timeout=10):
        """True once the server has closed the connection (after any replies
        still on their way, which are kept in self.buf)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()
