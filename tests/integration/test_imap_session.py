"""IMAP session commands (RFC 3501, RFC 9051): greeting, CAPABILITY before
and after login, LOGIN, AUTHENTICATE PLAIN/LOGIN with SASL-IR, STARTTLS and
imaps, ENABLE, ID, NAMESPACE, NOOP, LOGOUT, state checks."""
import base64
import imaplib

import pytest

from test_imap_common import Raw, account, connect, login, still_serves, tls_ctx


def caps_of(line):
    return set(line.split("[CAPABILITY ", 1)[1].split("]", 1)[0].split())


def test_greeting_lists_preauth_capabilities(server):
    r = Raw(server)
    assert r.greeting.startswith("* OK [CAPABILITY IMAP4rev1 ")
    caps = caps_of(r.greeting)
    assert {"STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "LITERAL+", "ID"} <= caps
    # Loopback with allow_plaintext_loopback: login is allowed.
    assert "LOGINDISABLED" not in caps
    assert "MOVE" not in caps  # only after login
    r.close()


def test_capabilities_after_login(server):
    addr, pw = account(server)
    m = connect(server)
    typ, data = m.login(addr, pw)
    assert typ == "OK" and data[0].startswith(b"[CAPABILITY ")
    caps = set(m.capability()[1][0].decode().split())
    for c in ["IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "UNSELECT", "CHILDREN",
              "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "QUOTA",
              "MULTIAPPEND", "ENABLE", "LITERAL+"]:
        assert c in caps, c
    assert any(c.startswith("APPENDLIMIT=") for c in caps)
    assert "STARTTLS" not in caps and "AUTH=PLAIN" not in caps
    m.logout()


def test_login_refused_without_tls(fresh):
    srv = fresh(extra={"server.allow_plaintext_loopback": "no"}).start()
    addr, pw = account(srv)
    r = Raw(srv)
    assert "LOGINDISABLED" in caps_of(r.greeting)
    assert "AUTH=PLAIN" not in caps_of(r.greeting)
    _, t = r.cmd("a1", "LOGIN %s %s" % (addr, pw))
    assert t.startswith("a1 NO [PRIVACYREQUIRED]")
    _, t = r.cmd("a2", "STARTTLS")
    assert t == "a2 OK Begin TLS negotiation now"
    r.sock = tls_ctx().wrap_socket(r.sock, server_hostname="localhost")
    lines, t = r.cmd("a3", "CAPABILITY")
    assert "LOGINDISABLED" not in lines[0] and "AUTH=PLAIN" in lines[0]
    assert "STARTTLS" not in lines[0]
    _, t = r.cmd("a4", "LOGIN %s %s" % (addr, pw))
    assert t.startswith("a4 OK")
    r.close()
    # imaps: implicit TLS.
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_ctx())
    m.login(addr, pw)
    m.logout()


def test_starttls_discards_injected_commands(server):
    r = Raw(server)
    r.send("a1 STARTTLS\r\na2 NOOP\r\n")
    _, t = r.until("a1")
    assert t.startswith("a1 OK")
    r.sock = tls_ctx().wrap_socket(r.sock, server_hostname="localhost")
    r.buf = b""
    _, t = r.cmd("a3", "NOOP")
    assert t == "a3 OK NOOP completed"
    _, t = r.cmd("a4", "STARTTLS")
    assert t.startswith("a4 BAD")
    r.close()


def test_wrong_password_and_bad_commands(server):
    addr, pw = account(server)
    r = Raw(server)
    _, t = r.cmd("a1", "LOGIN %s wrong-password" % addr)
    assert t == "a1 NO [AUTHENTICATIONFAILED] Authentication failed"
    _, t = r.cmd("a2", "SELECT INBOX")
    assert t == "a2 BAD Log in first"
    _, t = r.cmd("a3", 'LOGIN "%s" {%d+}\r\n%s' % (addr, len(pw), pw))
    assert t.startswith("a3 OK [CAPABILITY ")
    _, t = r.cmd("a4", "STARTTLS")
    assert t == "a4 BAD Already logged in"
    _, t = r.cmd("a5", "LOGIN a b")
    assert t == "a5 BAD Already logged in"
    r.close()


def test_authenticate_plain_sasl_ir_and_continuation(server):
    addr, pw = account(server)
    ir = base64.b64encode(("\0%s\0%s" % (addr, pw)).encode()).decode()
    r = Raw(server)
    _, t = r.cmd("a1", "AUTHENTICATE PLAIN " + ir)
    assert t.startswith("a1 OK [CAPABILITY")
    r.close()
    r = Raw(server)
    r.send("a1 AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(ir + "\r\n")
    _, t = r.until("a1")
    assert t.startswith("a1 OK")
    r.close()
    r = Raw(server)
    r.send("a1 AUTHENTICATE LOGIN\r\n")
    assert r.line() == "+ " + base64.b64encode(b"Username:").decode()
    r.send(base64.b64encode(addr.encode()).decode() + "\r\n")
    assert r.line() == "+ " + base64.b64encode(b"Password:").decode()
    r.send(base64.b64encode(pw.encode()).decode() + "\r\n")
    _, t = r.until("a1")
    assert t.startswith("a1 OK")
    r.close()
    r = Raw(server)
    r.send("a1 AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send("*\r\n")
    _, t = r.until("a1")
    assert t == "a1 BAD Authentication cancelled"
    _, t = r.cmd("a2", "AUTHENTICATE CRAM-MD5")
    assert t.startswith("a2 NO")
    r.close()


def test_imaplib_authenticate(server):
    addr, pw = account(server)
    m = connect(server)
    typ, _ = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (addr, pw)).encode())
    assert typ == "OK"
    m.logout()


def test_enable_id_namespace_noop_logout(server):
    addr, pw = account(server)
    r = Raw(server)
    lines, t = r.cmd("a0", 'ID ("name" "test" "version" "1")')
    assert lines[0].startswith('* ID ("name" "Roost"') and t == "a0 OK ID completed"
    _, t = r.cmd("a1", "ENABLE CONDSTORE")
    assert t == "a1 BAD Log in first"
    r.cmd("a2", "LOGIN %s %s" % (addr, pw))
    lines, t = r.cmd("a3", "ENABLE CONDSTORE QRESYNC X-UNKNOWN")
    assert lines == ["* ENABLED CONDSTORE QRESYNC"] and t == "a3 OK ENABLE completed"
    lines, _ = r.cmd("a4", "ENABLE CONDSTORE")
    assert lines == ["* ENABLED"]
    lines, t = r.cmd("a5", "NAMESPACE")
    assert lines == ['* NAMESPACE (("" "/")) NIL NIL']
    lines, t = r.cmd("a6", "ID NIL")
    assert t == "a6 OK ID completed"
    lines, t = r.cmd("a7", "NOOP")
    assert lines == [] and t == "a7 OK NOOP completed"
    _, t = r.cmd("a8", "CHECK")
    assert t == "a8 BAD Select a mailbox first"
    lines, t = r.cmd("a9", "LOGOUT")
    assert lines == ["* BYE Logging out"] and t == "a9 OK LOGOUT completed"
    assert r.closed()


def test_enable_imap4rev2_changes_select(server):
    addr, pw = account(server)
    r = Raw(server)
    r.cmd("a1", "LOGIN %s %s" % (addr, pw))
    caps = r.cmd("a2", "CAPABILITY")[0][0]
    if "IMAP4rev2" not in caps:
        pytest.skip("IMAP4rev2 is advertised once FETCH and SEARCH are built in")
    lines, _ = r.cmd("a3", "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"]
    lines, t = r.cmd("a4", "SELECT INBOX")
    assert not any("RECENT" in l for l in lines)
    assert '* LIST () "/" "INBOX"' in lines
    assert t == "a4 OK [READ-WRITE] SELECT completed"
    r.close()


def test_unknown_and_state_errors(server):
    r = Raw(server)
    _, t = r.cmd("a1", "FROBNICATE")
    assert t == "a1 BAD Unknown command"
    _, t = r.cmd("a2", "CAPABILITY extra")
    assert t == "a2 BAD Unexpected extra arguments"
    r.send("\r\n")
    assert r.line() == "* BAD Missing or invalid tag"
    r.close()
    still_serves(server)
