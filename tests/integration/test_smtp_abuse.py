"""SMTP server limits and abuse catalogue: size and recipient limits, AUTH
refused before TLS, the database going away, and bad input (bare LF, NUL
bytes, 1 MB lines, 10,000 RCPTs, commands after QUIT, half-closed sockets,
garbage before EHLO). Every case ends by checking the server still serves."""
import glob
import os
import pwd
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import Roost
from test_smtp import PASSWORD, Raw, blobs, greet, message, setup_domain, still_serves, tls_ctx


def pg_ctl(srv, *args):
    pg = os.path.join(srv.data_dir, "pgdata")
    binary = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    cmd = [binary, "-D", pg] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", pwd.getpwuid(os.stat(pg).st_uid).pw_name, "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def strict(base_dir):
    """Small limits, and no plain-text login even from loopback."""
    r = Roost(base_dir, "smtp-strict", extra={
        "server.allow_plaintext_loopback": "no",
        "limits.message_size": "64K",
        "limits.recipients": "5",
        "limits.auth_failure_delay_ms": "100",
        # Outbound mail stays queued: the smarthost refuses connections.
        "smtp.relayhost": "127.0.0.1:9",
        "smtp.relayhost_tls": "none",
    })
    r.start()
    yield r
    r.stop()
    if os.path.isdir(os.path.join(r.data_dir, "pgdata")):
        try:
            pg_ctl(r, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass


# ---------------------------------------------------------------- limits

def test_size_limit_declared_and_read_to_the_end(strict):
    d = setup_domain(strict, users=("alice",))
    with smtplib.SMTP("127.0.0.1", strict.ports["smtp"], timeout=20) as c:
        c.ehlo()
        assert c.esmtp_features["size"] == str(64 * 1024)
        code, text = c.mail("x@remote.example", ["SIZE=70000"])
        assert code == 552 and text.startswith(b"5.3.4")
        c.mail("x@remote.example")
        c.rcpt("alice@" + d)
        code, text = c.data(message(body=("y" * 998 + "\r\n") * 100))
        assert code == 552 and text.startswith(b"5.3.4")
        assert c.noop()[0] == 250  # read to the final dot: still in step
        assert c.sendmail("x@remote.example", ["alice@" + d], message()) == {}
    assert len(blobs(strict, "alice@" + d)) == 1


def test_size_limit_bdat(strict):
    d = setup_domain(strict, users=("alice",))
    r = greet(strict.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\n" % d)
    assert [r.code(), r.code()] == [250, 250]
    r.send(b"BDAT 40000\r\n" + b"a" * 40000)
    assert r.code() == 250
    r.send(b"BDAT 40000\r\n" + b"b" * 40000)
    assert r.reply()[1][0].startswith("552 5.3.4")
    r.send(b"BDAT 10 LAST\r\n" + b"c" * 10)
    assert r.reply()[1][0].startswith("552 5.3.4")
    r.send("NOOP\r\n")
    assert r.code() == 250
    # A chunk far past the limit is not read just to stay in step.
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nBDAT 999999999 LAST\r\n" % d)
    assert [r.code(), r.code()] == [250, 250]
    assert r.reply()[1][0].startswith("552 5.3.4")
    assert r.closed()
    assert blobs(strict, "alice@" + d) == []
    still_serves(strict)


def test_recipient_limit(strict):
    d = setup_domain(strict, users=("alice",))
    r = greet(strict.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\n" +
           "".join("RCPT TO:<alice+%d@%s>\r\n" % (i, d) for i in range(7)))
    codes = [r.code() for _ in range(8)]
    assert codes == [250] * 6 + [452, 452]
    r.send("RCPT TO:<alice+x@%s>\r\n" % d)
    assert r.reply()[1][0] == "452 4.5.3 Too many recipients"
    r.close()


def test_auth_refused_before_tls(strict):
    d = setup_domain(strict, users=("alice",))
    r = greet(strict.ports["submission"])
    r.send("EHLO again\r\n")
    code, lines = r.reply()
    assert code == 250 and not any("AUTH" in l for l in lines)
    r.send("AUTH PLAIN AGFsaWNlAHB3\r\n")
    assert r.reply()[1][0].startswith("538 5.7.11")
    r.send("MAIL FROM:<alice@%s>\r\n" % d)
    assert r.reply()[1][0] == "530 5.7.0 Must issue a STARTTLS command first"
    r.close()
    with smtplib.SMTP("127.0.0.1", strict.ports["submission"], timeout=20) as c:
        c.starttls(context=tls_ctx())
        c.ehlo()
        assert "PLAIN" in c.esmtp_features["auth"]
        c.login("alice@" + d, PASSWORD)
        assert c.sendmail("alice@" + d, ["alice@" + d], message(sender="alice@" + d)) == {}
    assert len(blobs(strict, "alice@" + d)) == 1


def test_bad_commands_disconnect(strict):
    r = Raw(strict.ports["smtp"])
    assert r.code() == 220
    r.send(b"".join(b"\x16\x03\x01garbage %d \xff\xfe\r\n" % i for i in range(12)))
    codes = [r.code() for _ in range(10)]
    assert codes == [500] * 9 + [500]
    assert r.reply()[1][0].startswith("421 4.7.0")
    assert r.closed()
    still_serves(strict)


def test_remote_recipients_handed_to_the_queue(strict):
    d = setup_domain(strict, users=("alice", "bob"))
    strict.cli("alias", "add", "fwd@" + d, "bob@" + d, "bob@forward.example", check=True)
    with smtplib.SMTP("127.0.0.1", strict.ports["submission"], timeout=20) as c:
        c.starttls(context=tls_ctx())
        c.login("alice@" + d, PASSWORD)
        c.mail("alice@" + d, ["RET=HDRS", "ENVID=env+2B1"])
        assert c.rcpt("friend@remote.example", ["NOTIFY=SUCCESS,FAILURE",
                                                "ORCPT=rfc822;friend+40remote.example"])[0] == 250
        assert c.rcpt("bob@" + d)[0] == 250
        code, text = c.data(message(sender="alice@" + d, subject="out"))
        assert code == 250
    rows = strict.psql("SELECT q.id, q.sender, q.envid, q.dsn_ret, a.address, r.recipient, r.notify, "
                       "r.orcpt, b.data FROM queue q JOIN queue_recipients r ON r.queue_id = q.id "
                       "JOIN blobs b ON b.sha256 = q.sha256 LEFT JOIN accounts a ON a.id = q.account_id "
                       "WHERE q.sender = 'alice@%s'" % d)
    assert len(rows) == 1, rows
    _, sender, envid, ret, account, rcpt, notify, orcpt, data = rows[0]
    assert (envid, ret, account, rcpt) == ("env+1", "HDRS", "alice@" + d, "friend@remote.example")
    assert notify == "SUCCESS,FAILURE" and orcpt == "rfc822;friend@remote.example"
    data = bytes(data)
    assert b"with ESMTPSA id" in data and b"Return-Path:" not in data
    assert b"Subject: out" in data
    bob = blobs(strict, "bob@" + d)
    assert len(bob) == 1 and bob[0].startswith(b"Return-Path: <alice@" + d.encode())
    # An alias forwarding outside: the MX accepts it, local part delivered, rest queued.
    with smtplib.SMTP("127.0.0.1", strict.ports["smtp"], timeout=20) as c:
        assert c.sendmail("x@remote.example", ["fwd@" + d], message(subject="fwd")) == {}
    rows = strict.psql("SELECT r.recipient, r.orcpt FROM queue q JOIN queue_recipients r ON "
                       "r.queue_id = q.id WHERE q.sender = 'x@remote.example' AND "
                       "r.recipient = 'bob@forward.example'")
    assert rows == [("bob@forward.example", "rfc822;fwd@" + d)]
    assert len(blobs(strict, "bob@" + d)) == 2


# ---------------------------------------------------------------- database down

def test_database_down_gives_451_and_stores_nothing(fresh):
    srv = fresh()
    srv.start()
    d = setup_domain(srv, users=("alice",))
    r = greet(srv.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\n" % d)
    assert [r.code(), r.code()] == [250, 250]
    pg_ctl(srv, "-m", "fast", "-w", "stop")
    try:
        r.send("DATA\r\n")
        assert r.code() == 354
        r.send(message().decode() + ".\r\n")
        assert r.reply()[1][0].startswith("451 4.3.0")
        r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\n" % d)
        assert r.code() == 250
        # The directory (here the store) cannot answer: RFC 3463 X.4.3.
        assert r.reply()[1][0].startswith("451 4.4.3")
        r.close()
    finally:
        pg_ctl(srv, "-w", "-l", os.path.join(srv.data_dir, "restart.log"), "start")
    for _ in range(50):  # the pool reconnects on its own
        try:
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=20) as c:
                if c.sendmail("x@remote.example", ["alice@" + d], message("again")) == {}:
                    break
        except smtplib.SMTPException:
            time.sleep(0.2)
    got = blobs(srv, "alice@" + d)
    assert len(got) == 1 and b"Subject: again" in got[0]


# ---------------------------------------------------------------- abuse catalogue

def test_bare_lf_normalised_and_no_smuggling(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nDATA\r\n" % d)
    assert [r.code(), r.code(), r.code()] == [250, 250, 354]
    # A bare-LF dot is message text, not the end (SMTP smuggling).
    r.send("Subject: bare\n\nline one\nline two\n.\nMAIL FROM:<evil@remote.example>\r\n"
           "RCPT TO:<alice@%s>\r\nDATA\r\nsmuggled\r\n.\r\n" % d)
    assert r.code() == 250
    r.send("NOOP\r\n")
    assert r.code() == 250
    r.close()
    got = blobs(server, "alice@" + d)
    assert len(got) == 1
    body = got[0].split(b"\r\n\r\n", 1)[1]
    assert body == (b"line one\r\nline two\r\n.\r\nMAIL FROM:<evil@remote.example>\r\n"
                    b"RCPT TO:<alice@" + d.encode() + b">\r\nDATA\r\nsmuggled\r\n")
    assert b"\n" not in got[0].replace(b"\r\n", b"")
    still_serves(server)


def test_nul_bytes_refused(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nDATA\r\n" % d)
    assert [r.code(), r.code(), r.code()] == [250, 250, 354]
    r.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
    assert r.reply()[1][0].startswith("554 5.6.0")
    r.send(b"NO\x00OP\r\n")
    assert r.reply()[1][0].startswith("500 5.5.2")
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\n" % d)
    assert [r.code(), r.code()] == [250, 250]
    r.send(b"BDAT 9 LAST\r\nab\x00cd\r\nef")
    assert r.reply()[1][0].startswith("554 5.6.0")
    r.close()
    assert blobs(server, "alice@" + d) == []
    still_serves(server)


def test_megabyte_lines(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send(b"NOOP " + b"x" * (1024 * 1024) + b"\r\nNOOP\r\n")
    assert r.reply()[1][0] == "500 5.5.2 Line too long"
    assert r.code() == 250
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nDATA\r\n" % d)
    assert [r.code(), r.code(), r.code()] == [250, 250, 354]
    r.send(b"Subject: long\r\n\r\n" + b"z" * (1024 * 1024) + b"\r\nshort\r\n.\r\n")
    assert r.reply()[1][0].startswith("554 5.6.0")
    r.send("NOOP\r\n")
    assert r.code() == 250
    r.close()
    assert blobs(server, "alice@" + d) == []
    still_serves(server)


def test_ten_thousand_recipients(server):
    d = setup_domain(server, users=("alice",))
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\n")
    assert r.code() == 250
    codes = []
    for batch in range(20):
        r.send("".join("RCPT TO:<alice+%d@%s>\r\n" % (batch * 500 + i, d) for i in range(500)))
        codes += [r.code() for _ in range(500)]
    assert codes == [250] * 1000 + [452] * 9000
    r.send("DATA\r\n")
    assert r.code() == 354
    r.send(message().decode() + ".\r\n")
    assert r.code() == 250
    r.close()
    assert len(blobs(server, "alice@" + d)) == 1  # one entry for one account
    still_serves(server)


def test_commands_after_quit(server):
    r = greet(server.ports["smtp"])
    r.send("QUIT\r\nNOOP\r\nMAIL FROM:<x@remote.example>\r\n")
    assert r.reply()[1][0].startswith("221 2.0.0")
    assert r.closed()
    assert r.buf == b""
    still_serves(server)


def test_half_closed_sockets(server):
    d = setup_domain(server, users=("alice",))
    r = Raw(server.ports["smtp"])
    r.send("EHLO x\r\nMAIL FROM:<x@remote.example>\r\n")
    r.s.shutdown(socket.SHUT_WR)
    assert r.code() == 220 and r.code() == 250 and r.code() == 250
    assert r.closed()
    r = greet(server.ports["smtp"])
    r.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@%s>\r\nDATA\r\nSubject: cut\r\n\r\nhalf" % d)
    r.s.shutdown(socket.SHUT_WR)
    assert [r.code(), r.code(), r.code()] == [250, 250, 354]
    assert r.closed()
    assert blobs(server, "alice@" + d) == []
    still_serves(server)


def test_garbage_before_ehlo(server):
    r = Raw(server.ports["smtp"])
    assert r.code() == 220
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [r.code(), r.code(), r.code()] == [500, 500, 500]
    r.send("EHLO fine\r\nNOOP\r\n")
    assert [r.code(), r.code()] == [250, 250]
    r.close()
    still_serves(server)


def test_rcpt_after_database_connections_were_cut(fresh):
    # The directory's prepared statements live on pooled connections: when
    # those are cut, the replacements prepare them again.
    srv = fresh()
    srv.start()
    d = setup_domain(srv, users=("alice",))

    def rcpt(address):
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=20) as c:
            c.ehlo("client.example")
            c.mail("x@remote.example")
            code, text = c.rcpt(address)
            return code, text.decode()

    for _ in range(3):
        assert rcpt("alice@" + d)[0] == 250
    srv.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'roost' "
             "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    replies = [rcpt("alice@" + d) for _ in range(12)]
    # The pool revives dead connections before lending them (PQreset: the
    # directory prepares again); a connection dying under a lookup would cost
    # one "try later", never a wrong answer.
    for code, text in replies:
        assert code == 250 or (code == 451 and text.startswith("4.4.3")), replies
    assert [code for code, _ in replies[-5:]] == [250] * 5, replies
    assert rcpt("nobody@" + d)[0] == 550
    assert rcpt("alice+tag@" + d)[0] == 250
    still_serves(srv)
