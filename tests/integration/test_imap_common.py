"""Helpers shared by the IMAP integration tests (test_imap_*.py): accounts,
delivery, imaplib and raw-socket clients. No tests of its own."""
import imaplib
import re
import socket
import ssl
import uuid


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def account(srv, password="imap-pass-1"):
    d = "imap-%s.test" % uuid.uuid4().hex[:12]
    srv.cli("domain", "add", d, check=True)
    addr = "user@" + d
    srv.cli("user", "add", addr, input=password + "\n", check=True)
    return addr, password


def message(n, body=None, subject=None):
    body = body if body is not None else ["line one of %d" % n, "line two"]
    subject = subject if subject is not None else "message %d" % n
    lines = ["From: a@example.org", "To: b@example.org", "Subject: %s" % subject,
             "Message-ID: <m%d.%s@example.org>" % (n, uuid.uuid4().hex), ""] + body
    return "\r\n".join(lines) + "\r\n"


def deliver(srv, addr, text):
    srv.cli("deliver", addr, input=text, check=True)


def claim_recent(srv, addr):
    """Makes the account's messages as if a session had already seen them:
    none is \\Recent (RFC 3501 2.3.2) in later sessions, so tests that are
    not about \\Recent see plain flags."""
    srv.psql("UPDATE mailboxes SET recent_uid = uidnext - 1 WHERE account_id = "
             "(SELECT id FROM accounts WHERE address = '%s')" % addr)


def filled(srv, n):
    """A new account with n messages in INBOX (message(0) .. message(n - 1)),
    none of them \\Recent."""
    addr, pw = account(srv)
    for i in range(n):
        deliver(srv, addr, message(i))
    claim_recent(srv, addr)
    return addr, pw


def connect(srv):
    return imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)


def login(srv, addr, pw):
    m = connect(srv)
    m.login(addr, pw)
    return m


def untagged(m, name):
    """imaplib's collected untagged responses of one kind, cleared."""
    return m._untagged_response("OK", [None], name)[1]


class Raw:
    """A line-oriented raw client for exact replies and abuse."""

    def __init__(self, srv, port_key="imap", tls=False, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", srv.ports[port_key]), timeout=15)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        if greet:
            self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def cmd(self, tag, text):
        """Sends one command and returns (untagged lines, tagged line)."""
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            l = self.line()
            if l.startswith(tag + " "):
                return lines, l
            lines.append(l)

    def closed(self, timeout=10):
        """True once the server closed the connection (reading what is left)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def still_serves(srv):
    """A new session can log in... well, at least greets and answers."""
    r = Raw(srv)
    assert r.greeting.startswith("* OK")
    _, tagged = r.cmd("z1", "NOOP")
    assert tagged == "z1 OK NOOP completed"
    r.close()


def exists_of(lines):
    for l in lines:
        m = re.match(r"\* (\d+) EXISTS", l)
        if m:
            return int(m.group(1))
    return None


def raw_login(srv, addr, pw):
    r = Raw(srv)
    _, t = r.cmd("l", "LOGIN %s %s" % (addr, pw))
    assert t.startswith("l OK")
    return r


def raw_select(srv, addr, pw, mailbox="INBOX", enable=None):
    """A raw session logged in with `mailbox` selected; the SELECT's
    untagged lines are in .select_lines."""
    r = raw_login(srv, addr, pw)
    if enable:
        r.cmd("e", "ENABLE " + enable)
    lines, t = r.cmd("s", "SELECT " + mailbox)
    assert t.startswith("s OK")
    r.select_lines = lines
    return r
