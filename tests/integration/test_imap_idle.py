"""Mailbox state shared between sessions: IDLE woken by a delivery within a
second, two and three concurrent sessions on one mailbox (EXPUNGE seen at
NOOP, sequence numbers consistent, no EXPUNGE during FETCH/STORE), and
QRESYNC resynchronisation with VANISHED (EARLIER)."""
import re
import time

from test_imap_common import Raw, deliver, filled, message, raw_login, raw_select


def test_idle_woken_by_delivery_within_a_second(server):
    addr, pw = filled(server, 1)
    r = raw_select(server, addr, pw)
    r.send("i1 IDLE\r\n")
    assert r.line() == "+ idling"
    start = time.time()
    deliver(server, addr, message(7))
    delivered = time.time()
    r.sock.settimeout(5)
    assert r.line() == "* 2 EXISTS"
    assert time.time() - delivered < 1.0, time.time() - start
    r.send("DONE\r\n")
    _, t = r.until("i1")
    assert t == "i1 OK IDLE terminated"
    r.close()


def test_idle_sees_flag_changes_and_expunges_of_others(server):
    addr, pw = filled(server, 3)
    a = raw_select(server, addr, pw)
    b = raw_select(server, addr, pw)
    a.send("i1 IDLE\r\n")
    assert a.line() == "+ idling"
    b.cmd("b1", "STORE 2 +FLAGS (\\Flagged)")
    a.sock.settimeout(5)
    assert a.line() == "* 2 FETCH (FLAGS (\\Flagged))"
    b.cmd("b2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("b3", "EXPUNGE")
    lines = [a.line(), a.line()]
    assert "* 1 EXPUNGE" in lines
    a.send("DONE\r\n")
    _, t = a.until("i1")
    assert t == "i1 OK IDLE terminated"
    a.send("i2 IDLE\r\n")
    assert a.line() == "+ idling"
    a.send("bogus\r\n")
    _, t = a.until("i2")
    assert t == "i2 BAD Expected DONE"
    a.close()
    b.close()


def test_two_sessions_expunge_seen_at_noop(server):
    addr, pw = filled(server, 4)
    a = raw_select(server, addr, pw)
    b = raw_select(server, addr, pw)
    b.cmd("b1", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    lines, _ = b.cmd("b2", "EXPUNGE")
    assert lines == ["* 2 EXPUNGE"]
    time.sleep(0.2)
    # STORE must not report the expunge (RFC 3501 7.4.1) and still sees
    # the old numbering: message 2 is the expunged one, 3 is UID 3.
    lines, t = a.cmd("a1", "STORE 3 +FLAGS (\\Seen)")
    assert not any("EXPUNGE" in l for l in lines)
    assert "* 3 FETCH (FLAGS (\\Seen))" in lines
    lines, _ = a.cmd("a2", "NOOP")
    assert "* 2 EXPUNGE" in lines
    # Now MSN 2 is UID 3 in both sessions.
    lines, _ = a.cmd("a3", "UID STORE 3 +FLAGS (\\Answered)")
    assert lines == ["* 2 FETCH (UID 3 FLAGS (\\Seen \\Answered))"]
    lines, _ = b.cmd("b3", "NOOP")
    assert "* 2 FETCH (FLAGS (\\Seen \\Answered))" in lines
    a.close()
    b.close()


def test_three_sessions_consistent_numbering(server):
    addr, pw = filled(server, 6)
    s = [raw_select(server, addr, pw) for _ in range(3)]
    s[0].cmd("x1", "STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    s[0].cmd("x2", "EXPUNGE")
    deliver(server, addr, message(10))
    s[1].cmd("y1", "UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    s[1].cmd("y2", "UID EXPUNGE 6")
    time.sleep(0.3)
    for i, r in enumerate(s):
        r.cmd("n%d" % i, "NOOP")
        lines, _ = r.cmd("u%d" % i, "UID STORE 1:* +FLAGS (\\Seen)")
        got = [tuple(map(int, re.match(r"\* (\d+) FETCH \(UID (\d+)", l).groups()))
               for l in lines if "FETCH" in l]
        assert got == [(1, 2), (2, 4), (3, 5), (4, 7)], (i, lines)
    for r in s:
        r.close()


def test_qresync_select_reports_vanished_earlier(server):
    addr, pw = filled(server, 5)
    a = raw_select(server, addr, pw, enable="QRESYNC")
    uidvalidity = re.search(r"UIDVALIDITY (\d+)", " ".join(a.select_lines)).group(1)
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(a.select_lines)).group(1))
    a.cmd("a1", "LOGOUT")
    b = raw_select(server, addr, pw)
    b.cmd("b1", "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    b.cmd("b2", "EXPUNGE")
    b.cmd("b3", "UID STORE 5 +FLAGS (\\Seen)")
    b.close()
    c = Raw(server)
    c.cmd("l", "LOGIN %s %s" % (addr, pw))
    c.cmd("e", "ENABLE QRESYNC")
    lines, t = c.cmd("s", "SELECT INBOX (QRESYNC (%s %d 1:5))" % (uidvalidity, modseq))
    assert t == "s OK [READ-WRITE] SELECT completed"
    assert "* VANISHED (EARLIER) 2,4" in lines
    assert any(re.match(r"\* 3 FETCH \(UID 5 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", l)
               for l in lines), "\n".join(lines)
    assert "* 3 EXISTS" in lines
    # Known UIDs limit what is reported.
    lines, _ = c.cmd("s2", "SELECT INBOX (QRESYNC (%s %d 1:3))" % (uidvalidity, modseq))
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert "* VANISHED (EARLIER) 2" in lines
    # Another UIDVALIDITY: no VANISHED.
    lines, _ = c.cmd("s3", "SELECT INBOX (QRESYNC (1 %d))" % modseq)
    assert not any("VANISHED" in l for l in lines)
    # Expunges by another session arrive as VANISHED.
    d = raw_select(server, addr, pw)
    d.cmd("d1", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    d.cmd("d2", "EXPUNGE")
    time.sleep(0.2)
    lines, _ = c.cmd("n", "NOOP")
    assert "* VANISHED 1" in lines
    c.close()
    d.close()


def test_qresync_needs_enable(server):
    addr, pw = filled(server, 1)
    r = Raw(server)
    r.cmd("l", "LOGIN %s %s" % (addr, pw))
    _, t = r.cmd("s", "SELECT INBOX (QRESYNC (1 1))")
    assert t.startswith("s BAD")
    lines, t = r.cmd("s2", "SELECT INBOX (CONDSTORE)")
    assert t == "s2 OK [READ-WRITE] SELECT completed"
    lines, _ = r.cmd("s3", "STORE 1 +FLAGS (\\Seen)")
    assert re.match(r"\* 1 FETCH \(FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", lines[0])
    r.close()


def test_selected_mailbox_deleted_by_another_session(server):
    addr, pw = filled(server, 1)
    a = raw_login(server, addr, pw)
    a.cmd("c", "CREATE Doomed")
    a.cmd("s", "SELECT Doomed")
    b = raw_login(server, addr, pw)
    _, t = b.cmd("d", "DELETE Doomed")
    assert t == "d OK DELETE completed"
    time.sleep(0.2)
    lines, t = a.cmd("n", "NOOP")
    assert lines == ["* BYE Selected mailbox was deleted, please reconnect"]
    assert a.closed()
    # Deleting one's own selected mailbox just deselects it.
    b.cmd("c2", "CREATE Doomed2")
    b.cmd("s2", "SELECT Doomed2")
    _, t = b.cmd("d2", "DELETE Doomed2")
    assert t == "d2 OK DELETE completed"
    _, t = b.cmd("n2", "CHECK")
    assert t == "n2 BAD Select a mailbox first"
    b.close()
