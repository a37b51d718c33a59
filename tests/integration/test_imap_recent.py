"""\\Recent (RFC 3501 2.3.2, 6.3.1, 7.3.2): a message is recent in exactly
one session, the first to SELECT its mailbox (or to be told of it while the
mailbox is selected) after it arrived. EXAMINE claims nothing; RECENT in
SELECT, EXAMINE and STATUS; the \\Recent flag in FETCH, never settable;
SEARCH RECENT, NEW and OLD; none of it for IMAP4rev2 (RFC 9051)."""
import re
import time

from test_imap_common import account, deliver, message, raw_login, raw_select, still_serves


def unclaimed(srv, n):
    """A new account with n messages no session has seen."""
    addr, pw = account(srv)
    for i in range(n):
        deliver(srv, addr, message(i))
    return addr, pw


def flags_of(r, tag, seq="1:*"):
    lines, t = r.cmd(tag, "FETCH %s (FLAGS)" % seq)
    assert t == "%s OK FETCH completed" % tag, t
    return [re.search(r"FLAGS \(([^)]*)\)", l).group(1) for l in lines if " FETCH " in l]


def search(r, tag, crit):
    lines, t = r.cmd(tag, "SEARCH " + crit)
    assert t.startswith(tag + " OK"), t
    found = [l for l in lines if l.startswith("* SEARCH")]
    return [int(x) for x in found[0].split()[2:]]


def test_first_select_gets_recent_second_does_not(server):
    addr, pw = unclaimed(server, 2)
    a = raw_select(server, addr, pw)
    assert "* 2 RECENT" in a.select_lines
    assert flags_of(a, "f1") == ["\\Recent", "\\Recent"]
    b = raw_select(server, addr, pw)
    assert "* 0 RECENT" in b.select_lines
    assert flags_of(b, "f1") == ["", ""]
    # Still recent in the first session, and only there.
    a.cmd("s1", "STORE 1 +FLAGS (\\Seen)")
    assert flags_of(a, "f2") == ["\\Seen \\Recent", "\\Recent"]
    assert search(a, "s2", "RECENT") == [1, 2]
    assert search(a, "s3", "NEW") == [2]
    assert search(a, "s4", "OLD") == []
    assert search(a, "s5", "NOT RECENT") == []
    assert search(b, "s2", "RECENT") == []
    assert search(b, "s3", "NEW") == []
    assert search(b, "s4", "OLD") == [1, 2]
    # A new SELECT in the first session starts over: nothing is left.
    lines, _ = a.cmd("s6", "SELECT INBOX")
    assert "* 0 RECENT" in lines
    a.close()
    b.close()


def test_examine_does_not_claim(server):
    addr, pw = unclaimed(server, 1)
    r = raw_login(server, addr, pw)
    lines, t = r.cmd("x1", "STATUS INBOX (MESSAGES RECENT)")
    assert '* STATUS "INBOX" (MESSAGES 1 RECENT 1)' in lines
    lines, t = r.cmd("x2", "EXAMINE INBOX")
    assert t.startswith("x2 OK [READ-ONLY]")
    assert "* 1 RECENT" in lines
    lines, t = r.cmd("x3", "UNSELECT")
    lines, t = r.cmd("x4", "STATUS INBOX (RECENT)")
    assert '* STATUS "INBOX" (RECENT 1)' in lines
    s = raw_select(server, addr, pw)
    assert "* 1 RECENT" in s.select_lines
    lines, t = r.cmd("x5", "STATUS INBOX (RECENT)")
    assert '* STATUS "INBOX" (RECENT 0)' in lines
    r.close()
    s.close()


def test_delivery_during_idle_is_recent_in_that_session(server):
    addr, pw = unclaimed(server, 1)
    a = raw_select(server, addr, pw)
    assert "* 1 RECENT" in a.select_lines
    a.send("i1 IDLE\r\n")
    assert a.line() == "+ idling"
    deliver(server, addr, message(5))
    a.sock.settimeout(5)
    assert a.line() == "* 2 EXISTS"
    assert a.line() == "* 2 RECENT"
    a.send("DONE\r\n")
    _, t = a.until("i1")
    assert t == "i1 OK IDLE terminated"
    assert flags_of(a, "f1") == ["\\Recent", "\\Recent"]
    b = raw_select(server, addr, pw)
    assert "* 0 RECENT" in b.select_lines
    a.close()
    b.close()


def test_delivery_seen_by_two_sessions_is_recent_in_one(server):
    addr, pw = unclaimed(server, 0)
    a = raw_select(server, addr, pw)
    b = raw_select(server, addr, pw)
    assert "* 0 RECENT" in a.select_lines and "* 0 RECENT" in b.select_lines
    deliver(server, addr, message(1))
    time.sleep(0.3)
    la, _ = a.cmd("n1", "NOOP")
    lb, _ = b.cmd("n1", "NOOP")
    assert "* 1 EXISTS" in la and "* 1 EXISTS" in lb
    assert "* 1 RECENT" in la and "* 0 RECENT" in lb
    assert flags_of(a, "f1") == ["\\Recent"]
    assert flags_of(b, "f1") == [""]
    assert search(a, "s1", "RECENT") == [1]
    assert search(b, "s1", "RECENT") == []
    a.close()
    b.close()


def test_recent_cannot_be_stored_and_is_not_permanent(server):
    addr, pw = unclaimed(server, 1)
    r = raw_select(server, addr, pw)
    perm = [l for l in r.select_lines if "PERMANENTFLAGS" in l][0]
    assert "\\Recent" not in perm
    flags = [l for l in r.select_lines if l.startswith("* FLAGS")][0]
    assert "\\Recent" not in flags
    _, t = r.cmd("s1", "STORE 1 +FLAGS (\\Recent)")
    assert t.startswith("s1 BAD")
    _, t = r.cmd("s2", "STORE 1 -FLAGS (\\Recent)")
    assert t.startswith("s2 BAD")
    lines, t = r.cmd("s3", "STORE 1 FLAGS (\\Flagged)")
    assert "* 1 FETCH (FLAGS (\\Flagged \\Recent))" in lines
    r.close()
    still_serves(server)


def test_imap4rev2_has_no_recent(server):
    addr, pw = unclaimed(server, 1)
    r = raw_select(server, addr, pw, enable="IMAP4rev2")
    assert not any("RECENT" in l for l in r.select_lines)
    assert flags_of(r, "f1") == [""]
    lines, t = r.cmd("s1", "SEARCH RECENT")  # IMAP4rev2 answers with ESEARCH
    assert t.startswith("s1 OK") and lines == ['* ESEARCH (TAG "s1")'], lines
    # An IMAP4rev2 session claims nothing: a IMAP4rev1 one still gets it.
    b = raw_select(server, addr, pw)
    assert "* 1 RECENT" in b.select_lines
    r.close()
    b.close()
