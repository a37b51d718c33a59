"""SMTP server: receiving on the smtp listener (port 25 role), submission
with STARTTLS and implicit TLS, local delivery into the store, relay
protection and sender ownership. Real clients: smtplib, swaks, openssl
s_client, and raw sockets for pipelining and BDAT."""
import base64
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import RawClient, Roost, tls_ctx

PASSWORD = "pw-123456"


def uniq():
    return "s%s.example" % uuid.uuid4().hex[:10]


def setup_domain(srv, users=("alice", "bob"), quota=None):
    d = uniq()
    srv.cli("domain", "add", d, check=True)
    for u in users:
        args = ["user", "add", "%s@%s" % (u, d)]
        if quota:
            args += ["--quota", quota]
        srv.cli(*args, input=PASSWORD + "\n", check=True)
    return d


def blobs(srv, address, mailbox="INBOX"):
    """Raw messages in a mailbox of an account, in UID order."""
    rows = srv.psql(
        "SELECT b.data FROM accounts a JOIN mailboxes m ON m.account_id = a.id "
        "JOIN mailbox_entries e ON e.mailbox_id = m.id JOIN messages g ON g.id = e.message_id "
        "JOIN blobs b ON b.sha256 = g.sha256 WHERE a.address = '%s' AND m.name = '%s' "
        "ORDER BY e.uid" % (address.lower(), mailbox))
    return [bytes(r[0]) for r in rows]


def message(subject="hello", sender="someone@remote.example", to="x@y", body="Hi there.\r\n"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s" % (
        sender, to, subject, uuid.uuid4().hex, body)).encode()


class Raw(RawClient):
    """A raw SMTP connection for pipelining, BDAT and abuse cases."""

    def reply(self):
        """One complete (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            try:
                line = self.line()
            except EOFError:
                raise EOFError("closed; got %r" % (lines,))
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), lines

    def code(self):
        return self.reply()[0]


def greet(port):
    r = Raw(port)
    assert r.code() == 220
    r.send("EHLO client.example\r\n")
    assert r.code() == 250
    return r


def still_serves(srv, port_key="smtp"):
    with smtplib.SMTP("127.0.0.1", srv.ports[port_key], timeout=20) as c:
        assert c.ehlo()[0] == 250
        assert c.noop()[0] == 250


# ---------------------------------------------------------------- basics

def test_greeting_and_ehlo_extensions(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        code, msg = c.ehlo("client.example")
        assert code == 250
        assert msg.decode().startswith("mail.test.example Hello client.example")
        for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "dsn",
                    "chunking", "starttls", "size"):
            assert c.has_extn(ext), ext
        assert c.esmtp_features["size"] == str(50 * 1024 * 1024)
        assert not c.has_extn("auth")  # never on the MX listener


def test_small_commands(server):
    r = Raw(server.ports["smtp"])
    code, lines = r.reply()
    assert code == 220 and "mail.test.example ESMTP" in lines[0]
    r.send("HELO client.example\r\n")
    assert r.reply() == (250, ["250 mail.test.example"])
    r.send("NOOP\r\n")
    assert r.reply() == (250, ["250 2.0.0 Ok"])
    r.send("NOOP anything\r\n")
    assert r.code() == 250
    r.send("HELP\r\n")
    code, lines = r.reply()
    assert code == 214 and len(lines) == 2
    r.send("VRFY alice\r\n")
    assert r.reply()[1][0].startswith("252 2.5.2")
    r.send("EXPN staff\r\n")
    assert r.code() == 502
    r.send("RSET\r\n")
    assert r.reply() == (250, ["250 2.0.0 Ok"])
    r.send("RSET x\r\n")
    assert r.reply()[1][0].startswith("501 5.5.4")
    r.send("FOOBAR\r\n")
    assert r.reply()[1][0].startswith("500 5.5.2")
    r.send("EHLO\r\n")
    assert r.reply()[1][0].startswith("501 5.5.4")
    r.send("QUIT\r\n")
    assert r.reply()[1][0].startswith("221 2.0.0")
    assert r.closed()


def test_sequence_errors(server):
    d = setup_domain(server)
    r = Raw(server.ports["smtp"])
    assert r.code() == 220
    r.send("MAIL FROM:<a@remote.example>\r\n")
    assert r.reply()[1][0] == "503 5.5.1 Send HELO/EHLO first"
    r.send("EHLO c\r\n")
    assert r.code() == 250
    r.send("RCPT TO:<alice@%s>\r\n" % d)
    assert r.reply()[1][0] == "503 5.5.1 Need MAIL command first"
    r.send("DATA\r\n")
    assert r.code() == 503
    r.send("MAIL FROM:<a@remote.example>\r\n")
    assert r.code() == 250
    r.send("MAIL FROM:<a@remote.example>\r\n")
    assert r.code() == 503
    r.send("DATA\r\n")
    assert r.reply()[1][0].startswith("554 5.5.1")
    r.send("RCPT TO:alice@%s\r\n" % d)
    assert r.reply()[1][0].startswith("501 5.5.4")
    r.send("RCPT TO:<alice@%s> FOO=bar\r\n" % d)
    assert r.reply()[1][0].startswith("555 5.5.4")
    r.send("RCPT TO:<alice@%s>\r\n" % d)
    assert r.reply()[1][0] == "250 2.1.5 Ok"
    r.send("RSET\r\n")
    assert r.code() == 250
    r.send("RCPT TO:<alice@%s>\r\n" % d)
    assert r.code() == 503  # RSET ended the transaction
    r.close()


# ---------------------------------------------------------------- delivery

def test_delivery_with_headers(server):
    d = setup_domain(server)
    msg = message(to="alice@" + d)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo("sender.example")
        code, text = c.mail("someone@remote.example")
        assert code == 250
        code, _ = c.rcpt("Alice@" + d.upper())
        assert code == 250
        code, text = c.data(msg)
        assert code == 250 and text.startswith(b"2.0.0 Ok: queued as")
    got = blobs(server, "alice@" + d)
    assert len(got) == 1
    head, _, rest = got[0].partition(b"\r\nReceived: ")
    assert head == b"Return-Path: <someone@remote.example>\r\nDelivered-To: Alice@" + d.encode()
    received, _, original = rest.partition(b"\r\nFrom: ")
    assert received.startswith(b"from sender.example ([127.0.0.1])\r\n\tby mail.test.example (Roost) with ESMTP id ")
    assert b"\tfor <Alice@%s>; " % d.encode() in received
    assert re.search(rb"; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$", received)
    assert b"From: " + original == msg


def test_received_names_tls(server):
    d = setup_domain(server)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.starttls(context=tls_ctx())
        c.ehlo("tls.example")
        assert c.sendmail("x@remote.example", ["bob@" + d], message()) == {}
    m = blobs(server, "bob@" + d)[0]
    assert re.search(rb"Received: from tls\.example \(\[127\.0\.0\.1\]\)\r\n"
                     rb"\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)\r\n"
                     rb"\tby mail\.test\.example \(Roost\) with ESMTPS id ", m), m[:400]


def test_several_recipients_one_blob_no_delivered_to(server):
    d = setup_domain(server, users=("a1", "a2", "a3"))
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        assert c.sendmail("x@remote.example", ["a1@" + d, "a2@" + d, "a3@" + d], message()) == {}
    got = [blobs(server, "%s@%s" % (u, d)) for u in ("a1", "a2", "a3")]
    assert all(len(g) == 1 for g in got)
    assert got[0][0] == got[1][0] == got[2][0]
    assert b"Delivered-To:" not in got[0][0]
    assert b"\tfor <" not in got[0][0]  # no single recipient to name
    rows = server.psql("SELECT count(DISTINCT e.message_id) FROM accounts a JOIN mailboxes m ON "
                       "m.account_id = a.id JOIN mailbox_entries e ON e.mailbox_id = m.id "
                       "WHERE a.address LIKE '%%@%s'" % d)
    assert rows[0][0] == 1


def test_unknown_and_disabled_users_refused_at_rcpt(server):
    d = setup_domain(server, users=("alice", "gone"))
    server.psql("UPDATE accounts SET disabled = true WHERE address = 'gone@%s'" % d)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("x@remote.example")
        code, text = c.rcpt("nobody@" + d)
        assert code == 550 and text.startswith(b"5.1.1")
        code, text = c.rcpt("gone@" + d)
        assert code == 550 and text.startswith(b"5.1.1")
        assert c.rcpt("alice@" + d)[0] == 250
        assert c.data(message())[0] == 250
    assert len(blobs(server, "alice@" + d)) == 1


def test_alias_list_and_catch_all(server):
    d = setup_domain(server, users=("alice", "bob"))
    server.cli("alias", "add", "info@" + d, "alice@" + d, check=True)
    server.cli("alias", "add", "team@" + d, "alice@" + d, "bob@" + d, check=True)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        assert c.sendmail("x@remote.example", ["info@" + d], message("alias")) == {}
        assert c.sendmail("x@remote.example", ["team@" + d], message("list")) == {}
        c.ehlo()
        c.mail("x@remote.example")
        assert c.rcpt("random@" + d)[0] == 550
        c.rset()
    server.cli("alias", "add", "@" + d, "bob@" + d, check=True)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        assert c.sendmail("x@remote.example", ["random@" + d], message("catchall")) == {}
    subjects = lambda a: [re.search(rb"Subject: (\w+)", m).group(1) for m in blobs(server, a)]
    assert subjects("alice@" + d) == [b"alias", b"list"]
    assert subjects("bob@" + d) == [b"list", b"catchall"]
    assert b"Delivered-To: info@" + d.encode() in blobs(server, "alice@" + d)[0]


def test_subaddress_into_folder(server):
    d = setup_domain(server, users=("alice",))
    server.psql("INSERT INTO mailboxes (account_id, name) SELECT id, 'lists' FROM accounts "
                "WHERE address = 'alice@%s'" % d)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        assert c.sendmail("x@remote.example", ["alice+lists@" + d], message("tagged")) == {}
        assert c.sendmail("x@remote.example", ["alice+nofolder@" + d], message("inbox")) == {}
    assert len(blobs(server, "alice@" + d, "lists")) == 1
    inbox = blobs(server, "alice@" + d)
    assert len(inbox) == 1 and b"Subject: inbox" in inbox[0]
    assert b"Delivered-To: alice+nofolder@" + d.encode() in inbox[0]


def test_quota_at_rcpt(server):
    d = setup_domain(server, users=("small",), quota="10K")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("x@remote.example", ["SIZE=20000"])
        code, text = c.rcpt("small@" + d)
        assert code == 552 and text.startswith(b"5.2.2")
        c.rset()
    server.psql("UPDATE accounts SET used_bytes = quota_bytes WHERE address = 'small@%s'" % d)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("x@remote.example")
        code, text = c.rcpt("small@" + d)
        assert code == 452 and text.startswith(b"4.2.2")


def test_quota_at_data_when_message_never_fits(server):
    d = setup_domain(server, users=("small",), quota="10K")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("x@remote.example")  # no SIZE: RCPT cannot tell
        assert c.rcpt("small@" + d)[0] == 250
        code, text = c.data(message(body="x" * 20000 + "\r\n"))
        assert code == 552 and text.startswith(b"5.2.2")
        assert c.noop()[0] == 250
    assert blobs(server, "small@" + d) == []


def test_loop_detection(server):
    d = setup_domain(server, users=("alice",))
    hops = "".join("Received: from hop%d by hop%d; Tue, 1 Jan 2030 00:00:00 +0000\r\n" % (i, i)
                   for i in range(51))
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        c.ehlo()
        c.mail("x@remote.example")
        c.rcpt("alice@" + d)
        code, text = c.data(hops.encode() + message())
        assert code == 554 and text.startswith(b"5.4.6")
        hops50 = "".join("Received: from h%d\r\n" % i for i in range(50))
        assert c.sendmail("x@remote.example", ["alice@" + d], hops50.encode() + message()) == {}
    assert len(blobs(server, "alice@" + d)) == 1


def test_dsn_parameters(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example> RET=HDRS ENVID=abc+2Bdef\r\n")
    assert r.code() == 250
    r.send("RCPT TO:<alice@%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice+40%s\r\n" % (d, d))
    assert r.code() == 250
    r.send("RCPT TO:<alice@%s> NOTIFY=NEVER,DELAY\r\n" % d)
    assert r.reply()[1][0].startswith("501 5.5.4")
    r.send("RSET\r\nMAIL FROM:<x@remote.example> RET=EVERYTHING\r\n")
    assert r.code() == 250
    assert r.reply()[1][0].startswith("501 5.5.4")
    r.send("MAIL FROM:<x@remote.example> ENVID=bad+zz\r\n")
    assert r.code() == 501
    r.close()


def test_smtputf8(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<δοκιμή@παράδειγμα.example>\r\n")
    assert r.reply()[1][0].startswith("553 5.6.7")
    r.send("MAIL FROM:<δοκιμή@παράδειγμα.example> SMTPUTF8\r\n")
    assert r.code() == 250
    r.send("RCPT TO:<alice@%s>\r\n" % d)
    assert r.code() == 250
    r.send("DATA\r\n")
    assert r.code() == 354
    r.send("From: δοκιμή@παράδειγμα.example\r\nSubject: ünïcödé\r\n\r\nΓειά σου\r\n.\r\n")
    assert r.code() == 250
    r.close()
    m = blobs(server, "alice@" + d)[0]
    assert "Return-Path: <δοκιμή@παράδειγμα.example>".encode() in m
    assert b"with UTF8SMTP id" in m
    assert "Γειά σου".encode() in m
    # without SMTPUTF8 on MAIL, a UTF-8 recipient is refused too
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<ñ@%s>\r\n" % d)
    assert r.code() == 250
    assert r.reply()[1][0].startswith("553 5.6.7")
    r.close()


def test_swaks(server):
    d = setup_domain(server, users=("alice",))
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.ports["smtp"]),
                        "--to", "alice@" + d, "--from", "swaks@remote.example", "--pipeline",
                        "--timeout", "20"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  250 2.0.0 Ok: queued as" in p.stdout
    assert b"with ESMTP id" in blobs(server, "alice@" + d)[0]


def test_openssl_s_client_starttls(server):
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        "127.0.0.1:%d" % server.ports["smtp"], "-brief", "-ign_eof"],
                       input="EHLO x\r\nQUIT\r\n", capture_output=True, text=True, timeout=30)
    assert "Protocol version: TLSv1.3" in p.stderr, p.stderr
    assert "250 CHUNKING" in p.stdout and "STARTTLS" not in p.stdout
    assert "221 2.0.0" in p.stdout


def test_starttls_discards_pipelined_plaintext(server):
    r = greet(server.ports["smtp"])
    r.send("STARTTLS\r\nMAIL FROM:<injected@remote.example>\r\n")
    assert r.code() == 220
    t = tls_ctx().wrap_socket(r.s, server_hostname="mail.test.example")
    t.settimeout(20)
    t.sendall(b"MAIL FROM:<x@remote.example>\r\n")
    data = t.recv(4096)
    assert data.startswith(b"503 5.5.1 Send HELO/EHLO first")  # state reset by STARTTLS
    t.sendall(b"EHLO again\r\n")
    data = b""
    while b"250 " not in data:
        data += t.recv(4096)
    assert b"STARTTLS" not in data
    t.sendall(b"STARTTLS\r\n")
    assert t.recv(4096).startswith(b"503")
    t.close()


# ---------------------------------------------------------------- pipelining and BDAT

def test_pipelined_transactions(server):
    d = setup_domain(server, users=("alice", "bob"))
    r = Raw(server.ports["smtp"])
    assert r.code() == 220
    # One write: the whole first transaction up to DATA (RFC 2920).
    r.send("EHLO p.example\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\n"
           "RCPT TO:<nobody@%s>\r\nRCPT TO:<bob@%s>\r\nDATA\r\n" % (d, d, d))
    assert r.code() == 250
    assert [r.code() for _ in range(5)] == [250, 250, 550, 250, 354]
    # The message, the next transaction and QUIT, again in one write.
    r.send("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<y@remote.example>\r\n"
           "RCPT TO:<bob@%s>\r\nDATA\r\n" % d)
    assert [r.code() for _ in range(4)] == [250, 250, 250, 354]
    r.send("Subject: two\r\n\r\n..dotted\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert [r.code() for _ in range(4)] == [250, 250, 250, 221]
    r.close()
    assert len(blobs(server, "alice@" + d)) == 1
    bob = blobs(server, "bob@" + d)
    assert len(bob) == 2 and bob[1].endswith(b"\r\n\r\n.dotted\r\n")


def test_bdat_binary_content(server):
    d = setup_domain(server, users=("alice",))
    body = bytes(range(1, 256)) * 40 + b"\r\n" + bytes(range(255, 0, -1)) * 40
    msg = b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n" + body
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example> BODY=8BITMIME\r\nRCPT TO:<alice@%s>\r\n" % d)
    assert [r.code(), r.code()] == [250, 250]
    chunks = [msg[:1000], msg[1000:1001], msg[1001:]]
    r.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0] + b"BDAT %d\r\n" % len(chunks[1]) + chunks[1])
    assert r.reply()[1][0] == "250 2.0.0 1000 octets received"
    assert r.code() == 250
    r.send(b"BDAT %d LAST\r\n" % len(chunks[2]) + chunks[2])
    code, lines = r.reply()
    assert code == 250 and "queued as" in lines[0]
    r.send("BDAT 0 LAST\r\n")
    assert r.reply()[1][0] == "503 5.5.1 Need MAIL command first"
    r.send("NOOP\r\n")
    assert r.code() == 250
    r.close()
    stored = blobs(server, "alice@" + d)[0]
    assert stored.endswith(b"\r\n" + msg)  # byte for byte after our header fields
    assert b"Return-Path: <x@remote.example>" in stored


def test_bdat_then_data_refused_and_errors_stay_in_step(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nBDAT 5\r\nhello" % d)
    assert [r.code(), r.code(), r.code()] == [250, 250, 250]
    r.send("DATA\r\n")
    assert r.code() == 503
    r.send("RCPT TO:<alice@%s>\r\n" % d)
    assert r.code() == 503
    r.send("BDAT 0 LAST\r\n")
    assert r.code() == 250
    r.send("RSET\r\nMAIL FROM:<x@remote.example>\r\nBDAT 13\r\nRCPT TO:<a@b>")
    assert [r.code(), r.code()] == [250, 250]
    assert r.reply()[1][0].startswith("554")  # no recipients; the 13 bytes were skipped
    r.send("BDAT twelve\r\n")
    assert r.reply()[1][0].startswith("501 5.5.4")
    assert r.closed()


# ---------------------------------------------------------------- relay protection

RELAY_FORMS = [
    ("<victim@remote.example>", 554),
    ("<victim@REMOTE.EXAMPLE>", 554),
    ("<@{d}:victim@remote.example>", 554),
    ("<@{d},@mx.{d}:victim@remote.example>", 554),
    ("<victim%remote.example@{d}>", 550),
    ("<\"victim%remote.example\"@{d}>", 550),
    ("<\"victim@remote.example\"@{d}>", 550),
    ("<remote.example!victim@{d}>", 550),
    ("<victim@remote.example@{d}>", 501),
    ("<victim@remote.example.>", 501),
    ("<victim@[127.0.0.1]>", 554),
    ("<victim@[IPv6:::1]>", 554),
    ("<victim@{d}.remote.example>", 554),
    ("<victim@remote.example> NOTIFY=NEVER", 554),
    ("victim@remote.example", 501),
    ("<victim@remote.example", 501),
    ("<\"victim\"@remote.example>", 554),
    ("<victim@remote.example\r\nRCPT TO:<x@{d}>>", None),
]


@pytest.mark.parametrize("helo,sender", [
    ("client.example", "x@remote.example"),
    ("{d}", "alice@{d}"),
    ("localhost", "<>"),
    ("[127.0.0.1]", "postmaster@{d}"),
])
def test_open_relay_matrix(server, helo, sender):
    d = setup_domain(server, users=("alice",))
    before = server.psql("SELECT count(*) FROM queue")[0][0]
    for form, expected in RELAY_FORMS:
        r = Raw(server.ports["smtp"])
        assert r.code() == 220
        r.send("EHLO %s\r\n" % helo.format(d=d))
        assert r.code() == 250
        s = sender.format(d=d)
        r.send("MAIL FROM:%s\r\n" % (s if s.startswith("<") else "<%s>" % s))
        assert r.code() == 250
        r.send("RCPT TO:%s\r\n" % form.format(d=d))
        code = r.code()
        if expected is None:  # a CR LF inside: two broken commands, neither accepted
            assert code == 501 and r.code() != 250
        else:
            assert code == expected, (form, code)
        r.send("DATA\r\n")
        assert r.code() in (503, 554)
        r.close()
    assert server.psql("SELECT count(*) FROM queue")[0][0] == before


# ---------------------------------------------------------------- submission

def submit(server, port_key="submission"):
    if port_key == "submissions":
        c = smtplib.SMTP_SSL("127.0.0.1", server.ports[port_key], timeout=20, context=tls_ctx())
    else:
        c = smtplib.SMTP("127.0.0.1", server.ports[port_key], timeout=20)
        c.starttls(context=tls_ctx())
    c.ehlo("laptop.example")
    return c


def test_submission_requires_auth(server):
    d = setup_domain(server, users=("alice",))
    with submit(server) as c:
        assert c.has_extn("auth") and "PLAIN" in c.esmtp_features["auth"]
        code, text = c.mail("alice@" + d)
        assert code == 530 and text.startswith(b"5.7.0")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login("alice@" + d, "wrong")
        assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")
        c.login("alice@" + d, PASSWORD)
        code, _ = c.docmd("AUTH PLAIN")
        assert code == 503


def test_submission_sends_anywhere_from_own_addresses(server):
    d = setup_domain(server, users=("alice", "bob"))
    server.cli("alias", "add", "sales@" + d, "alice@" + d, check=True)
    server.cli("alias", "add", "team@" + d, "alice@" + d, "bob@" + d, check=True)
    with submit(server) as c:
        c.login("alice@" + d, PASSWORD)
        for sender in ("alice@" + d, "Alice@" + d.upper(), "sales@" + d, "team@" + d,
                       "alice+news@" + d):
            assert c.sendmail(sender, ["bob@" + d], message(sender=sender)) == {}, sender
        for sender in ("bob@" + d, "ceo@remote.example", "nobody@" + d):
            c.ehlo()
            code, text = c.mail(sender)
            assert code == 553 and text.startswith(b"5.7.1"), sender
        code, _ = c.mail("")
        assert code == 553
        # remote recipients are accepted for the queue
        assert c.sendmail("alice@" + d, ["friend@remote.example"], message(sender="alice@" + d)) == {}
    assert len(blobs(server, "bob@" + d)) == 5
    assert b"with ESMTPSA" in blobs(server, "bob@" + d)[0]


def test_submission_checks_header_from(server):
    d = setup_domain(server, users=("alice", "bob"))
    with submit(server, "submissions") as c:
        c.login("alice@" + d, PASSWORD)
        c.mail("alice@" + d)
        c.rcpt("bob@" + d)
        code, text = c.data(message(sender="Bob <bob@%s>" % d))
        assert code == 553 and text.startswith(b"5.7.1")
        assert c.sendmail("alice@" + d, ["bob@" + d],
                          message(sender="\"Alice, A.\" <alice@%s>" % d)) == {}
    assert len(blobs(server, "bob@" + d)) == 1


@pytest.mark.parametrize("field", ["FROM : {v}", "From\t: {v}", "From : {v}\r\nFrom: {a}"])
def test_submission_header_from_with_blanks_before_colon(server, field):
    """Mail readers take "From :" as From (RFC 5322 obs-optional), so the
    ownership check must see it too."""
    d = setup_domain(server, users=("alice", "bob"))
    head = field.format(v="bob@" + d, a="alice@" + d)
    msg = ("%s\r\nTo: bob@%s\r\nSubject: hi\r\n\r\nbody\r\n" % (head, d)).encode()
    with submit(server, "submissions") as c:
        c.login("alice@" + d, PASSWORD)
        c.mail("alice@" + d)
        c.rcpt("bob@" + d)
        code, text = c.data(msg)
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
    assert blobs(server, "bob@" + d) == []


def test_auth_login_over_implicit_tls(server):
    d = setup_domain(server, users=("alice",))
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=20,
                          context=tls_ctx()) as c:
        c.ehlo("x")
        assert not c.has_extn("starttls")
        c.user, c.password = "alice@" + d, PASSWORD
        code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        assert code == 235
        assert c.sendmail("alice@" + d, ["alice@" + d], message(sender="alice@" + d)) == {}
    assert len(blobs(server, "alice@" + d)) == 1


def test_auth_exchange_errors(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["submission"])  # loopback plaintext is allowed on this server
    r.send("AUTH CRAM-MD5\r\n")
    assert r.reply()[1][0].startswith("504 5.5.4")
    r.send("AUTH PLAIN\r\n")
    assert r.reply()[1][0] == "334 "
    r.send("*\r\n")
    assert r.reply()[1][0].startswith("501 5.0.0")
    r.send("AUTH PLAIN not-base64!\r\n")
    assert r.reply()[1][0].startswith("501 5.5.2")
    cred = base64.b64encode(b"\0alice@" + d.encode() + b"\0" + PASSWORD.encode()).decode()
    r.send("AUTH PLAIN %s\r\n" % cred)
    assert r.reply()[1][0] == "235 2.7.0 Authentication successful"
    r.close()


def test_nested_mail_says_a_transaction_is_open(server):
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\n")
    assert r.code() == 250
    r.send("MAIL FROM:<y@remote.example>\r\n")
    assert r.reply()[1][0] == "503 5.5.1 Mail transaction in progress (send RSET first)"
    r.send("RSET\r\n")
    assert r.code() == 250
    r.send("MAIL FROM:<y@remote.example>\r\n")
    assert r.code() == 250
    r.close()
