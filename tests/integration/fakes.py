"""Fakes of the outside world for outbound mail tests, reusable by any test
module: a DNS server (python3-dnslib) answering from a zone the test edits,
and remote MX hosts (python3-aiosmtpd) that record what they receive and
can refuse, defer or stall on request.

All remote MX hosts share one port (Roost's [queue] smtp_port) and differ by
loopback address (127.0.0.0/8): FakeNet hands out addresses.
"""
import asyncio
import itertools
import threading
import time

from dnslib import A, AAAA, MX, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import DNSHandler, DNSServer
from aiosmtpd.controller import Controller

from conftest import free_port


class FakeDNS:
    """An authoritative-looking resolver on 127.0.0.1:port (UDP and TCP).
    UDP answers over 512 bytes are truncated, so clients must retry over
    TCP. Names not in the zone get NXDOMAIN."""

    def __init__(self):
        self.zone = {}          # (name, qtype name) -> [rdata]
        self.queries = []       # (name, qtype name, "udp"/"tcp")
        self.lock = threading.Lock()
        self.port = None
        self.servers = []

    @staticmethod
    def _key(name):
        return name.lower().rstrip(".")

    def add(self, name, qtype, rdata):
        with self.lock:
            self.zone.setdefault((self._key(name), qtype), []).append(rdata)

    def clear(self, name):
        with self.lock:
            for k in [k for k in self.zone if k[0] == self._key(name)]:
                del self.zone[k]

    def mx(self, domain, *hosts):
        """hosts: (preference, host) pairs; host "." is a null MX."""
        for pref, host in hosts:
            self.add(domain, "MX", MX(host, pref))

    def a(self, host, ip):
        self.add(host, "AAAA" if ":" in ip else "A", AAAA(ip) if ":" in ip else A(ip))

    def txt(self, name, text):
        chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        self.add(name, "TXT", TXT([c.encode() for c in chunks]))

    def exists(self, name):
        """Makes the name exist without records (NODATA answers)."""
        self.add(name, "_exists", None)

    def resolve(self, request, handler):
        reply = request.reply()
        q = request.q
        name, qtype = self._key(str(q.qname)), QTYPE[q.qtype]
        with self.lock:
            self.queries.append((name, qtype, handler.protocol))
            known = any(k[0] == name for k in self.zone)
            rdatas = list(self.zone.get((name, qtype), []))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        for rd in rdatas:
            reply.add_answer(RR(q.qname, q.qtype, rdata=rd, ttl=60))
        return reply

    def start(self):
        class Handler(DNSHandler):
            udplen = 512

        class QuietLogger:
            def __getattr__(self, _name):
                return lambda *a, **k: None

        self.port = free_port()
        for tcp in (False, True):
            s = DNSServer(self, port=self.port, address="127.0.0.1", tcp=tcp, handler=Handler,
                          logger=QuietLogger())
            s.start_thread()
            self.servers.append(s)
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
        self.servers = []

    def query_txt(self, name):
        """A TXT lookup through this server over TCP, as a verifier would."""
        r = DNSRecord.parse(DNSRecord.question(name, "TXT").send("127.0.0.1", self.port, tcp=True,
                                                                 timeout=5))
        return [b"".join(rr.rdata.data) for rr in r.rr if rr.rtype == QTYPE.TXT]


class MXHandler:
    def __init__(self, mx):
        self.mx = mx

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.mx.lock:
            reply = self.mx.rcpt_replies.get(address.lower())
            tempfails = self.mx.tempfail_rcpt
            if tempfails:
                self.mx.tempfail_rcpt -= 1 if tempfails > 0 else 0
        if tempfails:
            return "451 4.3.0 try again later"
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.mx.lock:
            stall = self.mx.stall_data
            self.mx.stall_data = max(0, stall - 1)
            tempfail = self.mx.tempfail_data
            self.mx.tempfail_data = max(0, tempfail - 1)
            self.mx.data_attempts += 1
        if stall:
            self.mx.stalled.set()
            while not self.mx.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 stalled and gave up"
        if tempfail:
            return "451 4.3.0 temporary failure, try later"
        with self.mx.lock:
            self.mx.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                     envelope.original_content or envelope.content,
                                     session.peer))
            auth = getattr(session, "auth_data", None)
            self.mx.sessions.append({
                "tls": session.ssl is not None,
                "auth": auth.login.decode() if auth is not None else None,
                "mail_options": list(envelope.mail_options)})
        return "250 2.0.0 queued as %d" % len(self.mx.messages)


class FakeMX:
    """An SMTP server on ip:port recording each accepted message as
    (mail_from, rcpt_tos, data bytes, peer).
    rcpt_replies: address -> reply for RCPT (e.g. "550 5.1.1 no such user");
    tempfail_rcpt / tempfail_data: that many 451 replies first (-1: always);
    stall_data: that many DATA commands hang until release is set.
    sessions: per accepted message, {"tls", "auth" (login or None),
    "mail_options"}. tls: an ssl.SSLContext to offer STARTTLS with;
    logins: {user: password} to require AUTH PLAIN/LOGIN (without TLS)."""

    def __init__(self, ip, port, smtputf8=True, tls=None, logins=None):
        self.ip, self.port = ip, port
        self.messages = []
        self.rcpt_replies = {}
        self.tempfail_rcpt = 0
        self.tempfail_data = 0
        self.stall_data = 0
        self.data_attempts = 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.sessions = []
        kw = {}
        if tls is not None:
            kw["tls_context"] = tls
        if logins is not None:
            kw.update(authenticator=self._authenticate, auth_required=True,
                      auth_require_tls=False)
        self.logins = logins or {}
        self.controller = Controller(MXHandler(self), hostname=ip, port=port,
                                     enable_SMTPUTF8=smtputf8, ready_timeout=10, **kw)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        ok = (hasattr(auth_data, "login") and
              self.logins.get(auth_data.login.decode()) == auth_data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.release.set()
        try:
            self.controller.stop()
        except Exception:
            pass

    def wait(self, count=1, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError("fake MX %s got %d messages, wanted %d" % (
            self.ip, len(self.messages), count))


class FakeNet:
    """Loopback addresses for fake hosts, and the MX servers to stop."""

    _next = itertools.count(20)

    def __init__(self, dns, port):
        self.dns, self.port = dns, port
        self.mxs = []

    def ip(self):
        n = next(self._next)
        return "127.0.%d.%d" % (n // 250, 1 + n % 250)

    def mx_server(self, host, **kw):
        """A FakeMX for host (A record added), started."""
        ip = self.ip()
        self.dns.a(host, ip)
        mx = FakeMX(ip, self.port, **kw).start()
        self.mxs.append(mx)
        return mx

    def dead_host(self, host):
        """host resolves to an address where nothing listens."""
        self.dns.a(host, self.ip())

    def stop(self):
        for mx in self.mxs:
            mx.stop()
        self.mxs = []


def self_signed_context(directory, host="mx.test"):
    """An ssl.SSLContext with a fresh self-signed certificate (openssl CLI)."""
    import os
    import ssl
    import subprocess
    cert, key = os.path.join(directory, "mx-cert.pem"), os.path.join(directory, "mx-key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=" + host, "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class TestCA:
    """A throw-away certificate authority (openssl CLI) in directory: its
    certificate is self.cert (PEM); issue() signs server certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory, name="Roost Test CA"):
        import os
        import subprocess
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca-key.pem")
        self._serial = itertools.count(1)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                        "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)

    def issue(self, cn, dns_names=(), ips=()):
        """A server certificate for cn with these subjectAltNames (DNS
        names, IP addresses): (cert path, key path)."""
        import os
        import subprocess
        n = next(self._serial)
        base = os.path.join(self.dir, "server%d" % n)
        cert, key, csr, ext = base + ".pem", base + "-key.pem", base + ".csr", base + ".ext"
        sans = ["DNS:" + d for d in dns_names] + ["IP:" + i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "keyUsage=critical,digitalSignature\n")
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + cn,
                        "-keyout", key, "-out", csr], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey",
                        self.key, "-set_serial", str(1000 + n), "-days", "2", "-extfile", ext,
                        "-out", cert], check=True, capture_output=True)
        return cert, key

    def server_context(self, cn, dns_names=(), ips=()):
        """An ssl.SSLContext serving a fresh certificate from issue()."""
        import ssl
        cert, key = self.issue(cn, dns_names, ips)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx


class FakeImplicitTLSMX(FakeMX):
    """A FakeMX speaking TLS from the first byte (port 465 style), with the
    ssl.SSLContext tls."""

    def __init__(self, ip, port, tls, **kw):
        super().__init__(ip, port, **kw)
        self.controller = Controller(MXHandler(self), hostname=ip, port=port,
                                     ssl_context=tls, ready_timeout=10)
