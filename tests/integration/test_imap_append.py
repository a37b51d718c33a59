"""APPEND: flags and date, APPENDUID, MULTIAPPEND, LITERAL+, literal8,
[TRYCREATE], [TOOBIG] before any byte is read, [OVERQUOTA], and EXISTS for
the selected mailbox."""
import re

from test_imap_common import Raw, account, login, message, still_serves, raw_login


def test_append_flags_date_appenduid(server):
    addr, pw = account(server)
    m = login(server, addr, pw)
    typ, data = m.append("INBOX", "(\\Seen \\Flagged $Work)", '"07-Feb-1994 21:52:25 -0800"',
                         message(1).encode())
    assert typ == "OK"
    mm = re.match(rb"\[APPENDUID (\d+) 1\] APPEND completed", data[0])
    assert mm
    typ, data = m.select("INBOX")
    assert data == [b"1"]
    assert m.response("UIDVALIDITY")[1] == [mm.group(1)]
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE)")
    assert b"\\Seen" in data[0] and b"\\Flagged" in data[0] and b"$Work" in data[0]
    assert b'" 8-Feb-1994 05:52:25 +0000"' in data[0]
    m.logout()


def test_append_to_selected_mailbox_reports_exists(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.cmd("a1", "SELECT INBOX")
    body = message(2)
    r.send("a2 APPEND INBOX {%d}\r\n" % len(body))
    assert r.line() == "+ Ready for literal data"
    r.send(body + "\r\n")
    lines, t = r.until("a2")
    assert lines == ["* 1 EXISTS", "* 1 RECENT"]
    assert re.match(r"a2 OK \[APPENDUID \d+ 1\] APPEND completed", t)
    r.close()


def test_multiappend_and_literal_plus(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    a, b = message(1), message(2)
    r.send("a1 APPEND Drafts (\\Draft) {%d+}\r\n%s (\\Seen) {%d+}\r\n%s\r\n" % (
        len(a), a, len(b), b))
    _, t = r.until("a1")
    assert re.match(r"a1 OK \[APPENDUID \d+ 1:2\] APPEND completed", t), t
    lines, _ = r.cmd("a2", "STATUS Drafts (MESSAGES UNSEEN)")
    assert lines == ['* STATUS "Drafts" (MESSAGES 2 UNSEEN 1)']
    # literal8 (BINARY)
    r.send("a3 APPEND Drafts ~{%d+}\r\n%s\r\n" % (len(a), a))
    _, t = r.until("a3")
    assert t.startswith("a3 OK [APPENDUID")
    r.close()


def test_append_errors(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    body = message(3)
    # Missing mailbox: refused before the literal is sent.
    r.send("a1 APPEND NoSuch {%d}\r\n" % len(body))
    _, t = r.until("a1")
    assert t == "a1 NO [TRYCREATE] Mailbox does not exist"
    # Same with a non-synchronising literal: its bytes are skipped.
    r.send("a2 APPEND NoSuch {%d+}\r\n%s\r\n" % (len(body), body))
    _, t = r.until("a2")
    assert t == "a2 NO [TRYCREATE] Mailbox does not exist"
    # Too big: no continuation, [TOOBIG] at once.
    r.send("a3 APPEND INBOX {4294967296}\r\n")
    _, t = r.until("a3")
    assert t.startswith("a3 NO [TOOBIG]")
    r.send("a4 APPEND INBOX {0}\r\n")
    assert r.line() == "+ Ready for literal data"
    r.send("\r\n")
    _, t = r.until("a4")
    assert t.startswith("a4 NO")
    r.send("a5 APPEND INBOX (\\Recent) {%d}\r\n" % len(body))
    _, t = r.until("a5")
    assert t.startswith("a5 BAD")
    r.send('a6 APPEND INBOX "31-Foo-2020 00:00:00 +0000" {%d}\r\n' % len(body))
    _, t = r.until("a6")
    assert t == "a6 BAD Invalid date-time"
    _, t = r.cmd("a7", "NOOP")
    assert t == "a7 OK NOOP completed"
    r.close()
    still_serves(server)


def test_append_over_limits(fresh):
    srv = fresh(extra={"limits.message_size": "2K"}).start()
    addr, pw = account(srv)
    d = addr.split("@")[1]
    srv.cli("user", "add", "small@" + d, "--quota", "1K", input=pw + "\n", check=True)
    r = raw_login(srv, addr, pw)
    caps = r.cmd("c", "CAPABILITY")[0][0]
    assert "APPENDLIMIT=2048" in caps
    big = "x" * 3000
    r.send("a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
    _, t = r.until("a1")
    assert t == "a1 NO [TOOBIG] Message too big (APPENDLIMIT 2048)"
    _, t = r.cmd("a2", "NOOP")
    assert t == "a2 OK NOOP completed"
    r.close()
    r = raw_login(srv, "small@" + d, pw)
    body = message(1, body=["y" * 1500])
    r.send("a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
    _, t = r.until("a1")
    assert t == "a1 NO [OVERQUOTA] Quota exceeded"
    r.close()
