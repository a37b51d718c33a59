"""POP3 (RFC 1939, RFC 2449, RFC 2595, RFC 5034) with Python's poplib and raw
sockets: every command and response code, sizes, dot-stuffing, TOP, the
UPDATE state as the store sees it, locks, STLS, and the abuse catalogue."""
import base64
import poplib
import select
import socket
import ssl
import time
import uuid

import pytest

from conftest import RawClient, tls_ctx


def account(srv, password="pop-pass-1"):
    d = "pop-%s.test" % uuid.uuid4().hex[:12]
    srv.cli("domain", "add", d, check=True)
    addr = "user@" + d
    srv.cli("user", "add", addr, input=password + "\n", check=True)
    return addr, password


def deliver(srv, addr, text):
    srv.cli("deliver", addr, input=text, check=True)


def filled(srv, n):
    """A new account with n messages (message(0) .. message(n - 1))."""
    addr, pw = account(srv)
    for i in range(n):
        deliver(srv, addr, message(i))
    return addr, pw


def message(n, body=None, nl="\r\n"):
    body = body if body is not None else ["line one of %d" % n, "line two"]
    lines = ["From: a@example.org", "To: b@example.org", "Subject: message %d" % n, ""] + body
    return nl.join(lines) + nl


def connect(srv):
    return poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)


def login(srv, addr, password):
    p = connect(srv)
    p.user(addr)
    p.pass_(password)
    return p


def mailbox_id(srv, addr):
    (mid,), = srv.psql("SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id "
                       "WHERE a.address = '%s' AND m.name = 'INBOX'" % addr)
    return mid


class Raw(RawClient):
    """A raw POP3 connection for what poplib cannot send."""

    def __init__(self, srv, port_key="pop3", wrap=False):
        super().__init__(srv.ports[port_key], wrap=wrap, timeout=30)
        self.greeting = self.line()

    def cmd(self, text):
        self.send(text + b"\r\n")
        return self.line()

    def multiline(self):
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)

def still_serving(srv):
    p = connect(srv)
    assert p.getwelcome().startswith(b"+OK")
    assert "TOP" in p.capa()
    p.quit()


def auth_line(text):
    return base64.b64encode(text.encode()).decode()


# ---- greeting and capabilities ----

def test_greeting_and_capa(server):
    p = connect(server)
    assert p.getwelcome().startswith(b"+OK")
    assert b"<" not in p.getwelcome()  # no APOP timestamp: APOP is not offered
    caps = p.capa()
    for c in ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"]:
        assert c in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    assert caps["EXPIRE"] == ["NEVER"]
    assert caps["IMPLEMENTATION"] == ["Roost"]
    assert "LOGIN-DELAY" not in caps  # [pop3] login_delay is 0
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("APOP user 0123456789abcdef0123456789abcdef")
    assert e.value.args[0] == b"-ERR Unknown command"
    assert p.quit().startswith(b"+OK")


def test_capa_after_login_drops_auth_capabilities(server):
    addr, pw = account(server)
    p = login(server, addr, pw)
    caps = p.capa()
    assert "TOP" in caps and "UIDL" in caps
    assert "STLS" not in caps and "USER" not in caps and "SASL" not in caps
    p.quit()


# ---- the transaction commands ----

def test_stat_list_retr_uidl_noop(server):
    addr, pw = filled(server, 3)
    p = login(server, addr, pw)
    count, size = p.stat()
    assert count == 3
    resp, listing, _ = p.list()
    assert resp.startswith(b"+OK 3 messages")
    sizes = {int(a): int(b) for a, b in (l.split() for l in listing)}
    assert sorted(sizes) == [1, 2, 3] and sum(sizes.values()) == size
    assert p.list(2) == b"+OK 2 %d" % sizes[2]
    for i in (1, 2, 3):
        resp, lines, octets = p.retr(i)
        assert resp == b"+OK %d octets" % sizes[i]
        assert octets == sizes[i]
        assert lines == message(i - 1).encode().split(b"\r\n")[:-1]
    (uidvalidity,), = server.psql("SELECT uidvalidity FROM mailboxes WHERE id = %d"
                                  % mailbox_id(server, addr))
    resp, uidls, _ = p.uidl()
    assert [l.split()[1] for l in uidls] == [b"%d.%d" % (uidvalidity, u) for u in (1, 2, 3)]
    assert p.uidl(3) == b"+OK 3 %d.3" % uidvalidity
    assert p.noop() == b"+OK"
    with pytest.raises(poplib.error_proto) as e:
        p.retr(4)
    assert e.value.args[0] == b"-ERR No such message"
    with pytest.raises(poplib.error_proto) as e:
        p.list(0)
    assert e.value.args[0] == b"-ERR No such message"
    assert p.quit().startswith(b"+OK")


def test_bare_lf_message_sizes_equal_retr_octets(server):
    addr, pw = account(server)
    deliver(server, addr, "From: a@example.org\nSubject: lf\n\nfirst\nsecond\r\nno newline at end")
    p = login(server, addr, pw)
    _, listing, _ = p.list()
    size = int(listing[0].split()[1])
    resp, lines, octets = p.retr(1)
    assert octets == size == p.stat()[1]
    assert lines == [b"From: a@example.org", b"Subject: lf", b"", b"first", b"second",
                     b"no newline at end"]
    p.quit()


def test_dot_lines_are_stuffed(server):
    addr, pw = account(server)
    body = [".", "..", ".starts with a dot", "middle . dot", "...three"]
    deliver(server, addr, message(0, body))
    r = Raw(server)
    r.cmd(b"USER " + addr.encode())
    assert r.cmd(b"PASS " + pw.encode()).startswith(b"+OK")
    assert r.cmd(b"RETR 1").startswith(b"+OK")
    wire = r.multiline()
    assert wire[-5:] == [b"..", b"...", b"..starts with a dot", b"middle . dot", b"....three"]
    r.close()
    p = login(server, addr, pw)
    _, lines, octets = p.retr(1)
    assert lines[-5:] == [l.encode() for l in body]
    assert octets == p.stat()[1]
    p.quit()


def test_top(server):
    addr, pw = account(server)
    deliver(server, addr, message(0, ["b1", ".b2", "b3"]))
    p = login(server, addr, pw)
    head = [b"From: a@example.org", b"To: b@example.org", b"Subject: message 0", b""]
    assert p.top(1, 0)[1] == head
    assert p.top(1, 2)[1] == head + [b"b1", b".b2"]
    assert p.top(1, 1000)[1] == head + [b"b1", b".b2", b"b3"]
    assert p.top(1, 99999999999999999999999)[1] == head + [b"b1", b".b2", b"b3"]
    for bad in (b"TOP 1 -1", b"TOP 1 x", b"TOP 2 0", b"TOP 1"):
        with pytest.raises(poplib.error_proto):
            p._shortcmd(bad.decode())
    p.quit()


def test_dele_then_rset(server):
    addr, pw = filled(server, 3)
    p = login(server, addr, pw)
    total = p.stat()[1]
    assert p.dele(2) == b"+OK Message 2 deleted"
    assert p.stat()[0] == 2
    for call in (lambda: p.dele(2), lambda: p.retr(2), lambda: p.list(2), lambda: p.top(2, 0)):
        with pytest.raises(poplib.error_proto) as e:
            call()
        assert e.value.args[0] == b"-ERR Message is deleted"
    assert [l.split()[0] for l in p.list()[1]] == [b"1", b"3"]
    assert [l.split()[0] for l in p.uidl()[1]] == [b"1", b"3"]
    assert p.rset() == b"+OK Maildrop has 3 messages (%d octets)" % total
    assert p.stat() == (3, total)
    p.quit()
    p = login(server, addr, pw)
    assert p.stat() == (3, total)
    p.quit()


def test_dele_then_quit_is_an_expunge_for_imap(server):
    import psycopg2
    import os
    addr, pw = filled(server, 3)
    mid = mailbox_id(server, addr)
    (modseq_before,), = server.psql("SELECT highestmodseq FROM mailboxes WHERE id = %d" % mid)
    listener = psycopg2.connect(host=os.path.join(server.data_dir, "run"), dbname="roost",
                                user="roost")
    listener.autocommit = True
    listener.cursor().execute("LISTEN roost_mailbox")
    p = login(server, addr, pw)
    p.dele(1)
    p.dele(3)
    assert server.psql("SELECT count(*) FROM mailbox_entries WHERE mailbox_id = %d" % mid) \
        == [(3,)], "DELE must not change the store before QUIT"
    assert p.quit() == b"+OK Bye, 2 messages removed"
    assert server.psql("SELECT uid FROM mailbox_entries WHERE mailbox_id = %d" % mid) == [(2,)]
    tomb = server.psql("SELECT uid, modseq FROM expunged WHERE mailbox_id = %d ORDER BY uid" % mid)
    assert [u for u, _ in tomb] == [1, 3]
    assert all(m > modseq_before for _, m in tomb)
    (messages, highest), = server.psql(
        "SELECT messages, highestmodseq FROM mailboxes WHERE id = %d" % mid)
    assert messages == 1 and highest > modseq_before
    deadline = time.time() + 10
    payloads = []
    while time.time() < deadline and str(mid) not in payloads:
        if select.select([listener], [], [], 0.5)[0]:
            listener.poll()
            payloads += [n.payload for n in listener.notifies]
            listener.notifies.clear()
    listener.close()
    assert str(mid) in payloads
    p = login(server, addr, pw)
    assert p.stat()[0] == 1
    assert p.uidl()[1][0].endswith(b".2")
    p.quit()


def test_dropped_connection_deletes_nothing_and_unlocks(server):
    addr, pw = filled(server, 2)
    p = login(server, addr, pw)
    p.dele(1)
    p.dele(2)
    p.sock.shutdown(socket.SHUT_RDWR)  # no QUIT
    p.sock.close()
    deadline = time.time() + 10
    while True:
        try:
            p = login(server, addr, pw)
            break
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [IN-USE]")
            assert time.time() < deadline, "lock of a dropped session was not released"
            time.sleep(0.1)
    assert p.stat()[0] == 2
    p.quit()


def test_in_use(server):
    addr, pw = filled(server, 1)
    first = login(server, addr, pw)
    second = connect(server)
    second.user(addr)
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(pw)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    # Still in AUTHORIZATION: the client may try again once the first quits.
    first.quit()
    second.user(addr)
    assert second.pass_(pw).startswith(b"+OK")
    assert second.stat()[0] == 1
    second.quit()


def test_message_expunged_elsewhere_during_session(server):
    addr, pw = account(server)
    deliver(server, addr, message(0, ["unique %s" % uuid.uuid4().hex]))
    deliver(server, addr, message(1))
    p = login(server, addr, pw)
    mid = mailbox_id(server, addr)
    # What an IMAP EXPUNGE and the collector do, behind the POP3 session.
    server.psql("WITH e AS (DELETE FROM mailbox_entries WHERE mailbox_id = %d AND uid = 1 "
                "RETURNING message_id), m AS (DELETE FROM messages WHERE id IN "
                "(SELECT message_id FROM e) RETURNING sha256) "
                "DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM m)" % mid)
    with pytest.raises(poplib.error_proto) as e:
        p.retr(1)
    assert e.value.args[0] == b"-ERR Message or mailbox no longer exists"
    assert p.retr(2)[2] == int(p.list(2).split()[2])
    p.dele(1)
    assert p.quit() == b"+OK Bye, 0 messages removed"


def test_uidl_stable_when_flags_change(server):
    addr, pw = filled(server, 1)
    deliver(server, addr, message(1))
    p = login(server, addr, pw)
    before = p.uidl()[1]
    p.quit()
    mid = mailbox_id(server, addr)
    server.psql("UPDATE mailbox_entries SET flags = flags | 1 | 4, keywords = '{$Forwarded}', "
                "modseq = modseq + 10 WHERE mailbox_id = %d" % mid)
    p = login(server, addr, pw)
    assert p.uidl()[1] == before
    p.quit()


# ---- login ----

def test_bad_password_and_unknown_user(server):
    addr, pw = account(server)
    for user, password in ((addr, "wrong"), ("nobody@" + addr.split("@")[1], pw)):
        p = connect(server)
        p.user(user)
        start = time.time()
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(password)
        assert e.value.args[0] == b"-ERR [AUTH] Authentication failed"
        assert time.time() - start >= 0.9  # half of auth_failure_delay_ms at least
        p.quit()


def test_disabled_account(server):
    addr, pw = account(server)
    server.psql("UPDATE accounts SET disabled = true WHERE address = '%s'" % addr)
    p = connect(server)
    p.user(addr)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(pw)
    assert e.value.args[0] == b"-ERR [AUTH] Authentication failed"
    p.quit()


def test_pass_without_user_and_commands_before_login(server):
    r = Raw(server)
    assert r.cmd(b"PASS secret") == b"-ERR USER first"
    for c in (b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"UIDL", b"TOP 1 1", b"NOOP", b"RSET"):
        assert r.cmd(c) == b"-ERR Not logged in", c
    r.close()


def test_password_with_spaces(server):
    addr, pw = account(server, password="a pass with  spaces")
    p = login(server, addr, pw)
    p.quit()


def test_auth_plain_and_login(server):
    addr, pw = filled(server, 1)
    r = Raw(server)
    assert r.cmd(b"AUTH") == b"+OK Mechanisms follow"
    assert r.multiline() == [b"PLAIN", b"LOGIN"]
    ir = auth_line("\0%s\0%s" % (addr, pw)).encode()
    assert r.cmd(b"AUTH PLAIN " + ir).startswith(b"+OK Logged in, 1 messages")
    assert r.cmd(b"STAT").startswith(b"+OK 1 ")
    assert r.cmd(b"QUIT").startswith(b"+OK")
    r.close()
    r = Raw(server)
    assert r.cmd(b"AUTH PLAIN") == b"+ "
    assert r.cmd(ir).startswith(b"+OK Logged in")
    r.close()
    r = Raw(server)
    assert r.cmd(b"AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert r.cmd(auth_line(addr).encode()) == b"+ UGFzc3dvcmQ6"
    assert r.cmd(auth_line(pw).encode()).startswith(b"+OK Logged in")
    r.close()
    r = Raw(server)
    assert r.cmd(b"AUTH LOGIN " + auth_line(addr).encode()) == b"+ UGFzc3dvcmQ6"
    assert r.cmd(b"*") == b"-ERR Authentication cancelled"
    assert r.cmd(b"AUTH CRAM-MD5") == b"-ERR Unsupported authentication mechanism"
    assert r.cmd(b"AUTH PLAIN not-base64!").startswith(b"-ERR ")
    assert r.cmd(b"AUTH PLAIN " + auth_line("\0%s\0wrong" % addr).encode()) \
        == b"-ERR [AUTH] Authentication failed"
    assert r.cmd(b"CAPA") == b"+OK Capability list follows"
    r.multiline()
    r.close()


# ---- pipelining ----

def test_pipelined_commands(server):
    addr, pw = filled(server, 3)
    r = Raw(server)
    r.send(b"CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 0\r\nDELE 3\r\n"
           b"UIDL 1\r\nNOOP\r\nRSET\r\nQUIT\r\n" % (addr.encode(), pw.encode()))
    assert r.line() == b"+OK Capability list follows"
    assert b"PIPELINING" in r.multiline()
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK Logged in, 3 messages")
    assert r.line().startswith(b"+OK 3 ")
    assert r.line().startswith(b"+OK 3 messages")
    assert len(r.multiline()) == 3
    assert r.line().startswith(b"+OK") and r.multiline()[-1] == b"line two"
    assert r.line().startswith(b"+OK") and r.multiline()[-1] == b""
    assert r.line() == b"+OK Message 3 deleted"
    assert r.line().startswith(b"+OK 1 ")
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK Maildrop has 3 messages")
    assert r.line() == b"+OK Bye, 0 messages removed"
    assert r.closed()


# ---- TLS ----

def test_stls_upgrade(server):
    addr, pw = filled(server, 1)
    p = connect(server)
    assert p.stls(context=tls_ctx()).startswith(b"+OK")
    assert isinstance(p.sock, ssl.SSLSocket)
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("STLS")
    assert e.value.args[0] == b"-ERR TLS is already active"
    p.user(addr)
    p.pass_(pw)
    assert p.retr(1)[2] == p.stat()[1]
    p.quit()


def test_stls_discards_injected_plaintext(server):
    addr, pw = account(server)
    s = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=30)
    assert s.recv(1000).startswith(b"+OK")
    s.sendall(b"STLS\r\nUSER %s\r\n" % addr.encode())
    data = b""
    while b"\r\n" not in data:
        data += s.recv(1000)
    assert data.startswith(b"+OK Begin TLS")
    t = tls_ctx().wrap_socket(s)
    t.sendall(b"PASS %s\r\n" % pw.encode())
    assert t.recv(1000) == b"-ERR USER first\r\n"
    t.close()


def test_pop3s_implicit_tls(server):
    addr, pw = filled(server, 1)
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_ctx(), timeout=30)
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps
    p.user(addr)
    p.pass_(pw)
    assert p.stat()[0] == 1
    assert p.quit().startswith(b"+OK")


# ---- a separate installation: plaintext refused, LOGIN-DELAY, EXPIRE,
# restarts and a killed process ----

def test_policies_restart_and_kill(fresh):
    import signal
    srv = fresh(extra={"server.allow_plaintext_loopback": "no", "pop3.login_delay": "2",
                       "pop3.expire": "0", "limits.auth_failure_delay_ms": "0",
                       "limits.preauth_timeout": "5"}).start()
    # Autologout before login: preauth_timeout, then the connection closes.
    r = Raw(srv)
    start = time.time()
    assert r.line() == b"-ERR Autologout; idle for too long"
    assert 4 < time.time() - start < 15
    assert r.closed()
    r.close()
    srv.cli("domain", "add", "policy.test", check=True)
    srv.cli("user", "add", "u@policy.test", input="pw-policy-1\n", check=True)
    for i in range(3):
        deliver(srv, "u@policy.test", message(i))
    # Passwords are refused before TLS, even on loopback.
    p = connect(srv)
    caps = p.capa()
    assert "USER" not in caps and "SASL" not in caps and "STLS" in caps
    assert caps["LOGIN-DELAY"] == ["2"] and caps["EXPIRE"] == ["0"]
    for c in ("USER u@policy.test", "AUTH PLAIN", "PASS x"):
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd(c)
        assert e.value.args[0].startswith(b"-ERR [AUTH] Plaintext authentication disallowed")
    p.stls(context=tls_ctx())
    p.user("u@policy.test")
    p.pass_("pw-policy-1")
    uidl = p.uidl()[1]
    p.retr(1)  # retrieved with EXPIRE 0: removed at QUIT
    p.quit()
    # LOGIN-DELAY: too soon.
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=tls_ctx(), timeout=30)
    p.user("u@policy.test")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("pw-policy-1")
    assert e.value.args[0].startswith(b"-ERR [LOGIN-DELAY]")
    time.sleep(2.2)
    p.user("u@policy.test")
    p.pass_("pw-policy-1")
    assert p.uidl()[1] == [b"%d %s" % (i + 1, l.split()[1]) for i, l in enumerate(uidl[1:])]
    p.quit()
    # UIDLs survive a restart; a killed process leaves no lock behind.
    srv.stop()
    srv.start()
    time.sleep(2.2)
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=tls_ctx(), timeout=30)
    p.user("u@policy.test")
    p.pass_("pw-policy-1")
    assert [l.split()[1] for l in p.uidl()[1]] == [l.split()[1] for l in uidl[1:]]
    srv.stop(sig=signal.SIGKILL)
    srv.start()
    time.sleep(2.2)
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=tls_ctx(), timeout=30)
    p.user("u@policy.test")
    assert p.pass_("pw-policy-1").startswith(b"+OK")
    assert p.stat()[0] == 2
    p.quit()


def test_bad_expire_setting_is_refused(fresh):
    srv = fresh(extra={"pop3.expire": "30 days"})
    srv.start(wait=False)
    rc = srv.proc.wait(timeout=60)
    assert rc != 0
    assert "expire must be NEVER or a number of days" in srv.log_text()
    srv.proc = None
    srv.log.close()


# ---- abuse catalogue: each case gets its exact answer, then the server
# still serves ----

ABUSE_PREAUTH = [
    (b"", b"-ERR Empty command"),
    (b"XYZZY", b"-ERR Unknown command"),
    (b"Subject: hello", b"-ERR Malformed command"),
    (b"From: a@example.org", b"-ERR Malformed command"),
    (b"LIST\x00 1", b"-ERR Control characters are not allowed in commands"),
    (b"US\xc3\xa9R x", b"-ERR Malformed command"),
    (b"USER a b", b"-ERR Wrong number of arguments"),
    (b"USER \xff\xfe@example.org", b"+OK Send your password"),
    (b"CAPA extra", b"-ERR Wrong number of arguments"),
    (b"STAT", b"-ERR Not logged in"),
    (b"USER " + b"x" * 300, b"-ERR User name too long"),
]


@pytest.mark.parametrize("line,answer", ABUSE_PREAUTH)
def test_abuse_preauth(server, line, answer):
    r = Raw(server)
    assert r.cmd(line) == answer
    assert r.cmd(b"NOOP") == b"-ERR Not logged in"
    r.close()
    still_serving(server)


ABUSE_AUTHED = [
    (b"RETR 99999999999999999999999999", b"-ERR No such message"),
    (b"RETR abc", b"-ERR No such message"),
    (b"RETR -1", b"-ERR No such message"),
    (b"RETR 0", b"-ERR No such message"),
    (b"RETR 1 2", b"-ERR Wrong number of arguments"),
    (b"DELE", b"-ERR Wrong number of arguments"),
    (b"TOP 1 99999999999999999999999999", b"+OK Top of message follows"),
    (b"TOP 1 1x", b"-ERR Invalid number of lines"),
    (b"LIST 1 2 3 4 5 6", b"-ERR Wrong number of arguments"),
    (b"USER again", b"-ERR Already logged in"),
    (b"STLS", b"-ERR Already logged in"),
    (b"\x01\x02\x03", b"-ERR Control characters are not allowed in commands"),
]


@pytest.mark.parametrize("line,answer", ABUSE_AUTHED)
def test_abuse_authenticated(server, line, answer):
    addr, pw = filled(server, 1)
    r = Raw(server)
    r.cmd(b"USER " + addr.encode())
    assert r.cmd(b"PASS " + pw.encode()).startswith(b"+OK")
    assert r.cmd(line) == answer
    if answer.startswith(b"+OK Top"):
        r.multiline()
    assert r.cmd(b"STAT").startswith(b"+OK 1 ")
    assert r.cmd(b"QUIT").startswith(b"+OK")
    r.close()
    still_serving(server)


def test_abuse_long_line_keeps_step(server):
    r = Raw(server)
    assert r.cmd(b"USER " + b"a" * 5000) == b"-ERR Line too long"
    assert r.cmd(b"CAPA") == b"+OK Capability list follows"
    r.multiline()
    r.send(b"X" * 3000)  # a long line sent in pieces
    r.send(b"Y" * 3000 + b"\r\nNOOP\r\n")
    assert r.line() == b"-ERR Line too long"
    assert r.line() == b"-ERR Not logged in"
    r.close()
    still_serving(server)


def test_abuse_bare_lf_commands_are_understood(server):
    r = Raw(server)
    r.send(b"CAPA\nNOOP\n")
    assert r.line() == b"+OK Capability list follows"
    r.multiline()
    assert r.line() == b"-ERR Not logged in"
    r.close()


def test_abuse_too_many_bad_commands_disconnects(server):
    r = Raw(server)
    r.send(b"BOGUS\r\n" * 50)
    answers = []
    while True:
        try:
            answers.append(r.line())
        except (EOFError, ConnectionResetError):
            break
    assert answers[-1] == b"-ERR Too many bad commands, closing connection"
    assert answers[:-1] == [b"-ERR Unknown command"] * (len(answers) - 1)
    assert len(answers) == 11  # bad_commands_preauth = 10
    r.close()
    still_serving(server)


def test_abuse_failed_logins_count_as_bad_commands(server):
    # Not parametrised over the delay: one failed login is enough to see
    # it counted; the rest of the budget goes on unknown commands.
    r = Raw(server)
    r.cmd(b"USER nobody@nowhere.test")
    assert r.cmd(b"PASS wrong") == b"-ERR [AUTH] Authentication failed"
    r.send(b"BOGUS\r\n" * 9)
    answers = [r.line() for _ in range(10)]
    assert answers[-1] == b"-ERR Too many bad commands, closing connection"
    assert r.closed()
    r.close()


def test_abuse_half_closed_and_garbage_then_close(server):
    r = Raw(server)
    r.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)))
    r.s.shutdown(socket.SHUT_WR)
    assert r.closed()
    assert r.buf.startswith(b"-ERR")
    r.close()
    still_serving(server)


def test_abuse_huge_message_numbers_in_dele_and_list(server):
    addr, pw = filled(server, 1)
    p = login(server, addr, pw)
    for c in ("DELE 18446744073709551617", "LIST 4294967297", "UIDL 2"):
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd(c)
        assert e.value.args[0] == b"-ERR No such message"
    assert p.stat()[0] == 1
    p.quit()
