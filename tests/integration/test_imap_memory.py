"""What an idle IMAP session holds, and the deep paths that decide the
session thread's stack size (core/server.c SERVER_THREAD_STACK)."""
from test_imap_common import Raw, account, filled, still_serves


def test_list_pattern_of_line_length_wildcards_is_answered(server):
    # LIST matching keeps no stack per wildcard: a pattern as long as the
    # default line_length (64K) is answered.
    addr, pw = account(server)
    r = Raw(server)
    r.cmd("a1", "LOGIN %s %s" % (addr, pw))
    pattern = "*" * 65000
    r.send('a2 LIST "" {%d+}\r\n%s\r\n' % (len(pattern), pattern))
    lines, tagged = r.until("a2")
    assert tagged == "a2 OK LIST completed"
    assert any('"INBOX"' in l for l in lines)
    r.close()
    still_serves(server)


def test_list_patterns_that_backtracking_would_take_forever_on(server):
    """Runs of "*" and "%" that fail to match at the end cost time linear in
    the name (a backtracking matcher spins for ages on these), and still
    match what they should."""
    addr, pw = account(server)
    r = Raw(server)
    r.cmd("a1", "LOGIN %s %s" % (addr, pw))
    r.cmd("a2", "CREATE aaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbb")
    for tag, pattern in (("a3", "*a" * 40 + "x"), ("a4", "%a" * 40 + "x"), ("a5", "*" * 25 + "x")):
        lines, tagged = r.cmd(tag, 'LIST "" "%s"' % pattern)
        assert tagged == tag + " OK LIST completed" and lines == []
    lines, _ = r.cmd("a6", 'LIST "" "*%*a/%b"')
    assert any("aaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbb" in l for l in lines)
    lines, _ = r.cmd("a7", 'LIST "" "%b"')
    assert lines == []  # % does not cross the separator
    r.close()
    still_serves(server)


def test_session_idle_after_large_exchanges_keeps_working(server):
    # A large command and a large answer grow the conn's buffers, which an
    # idle session gives back; the next commands (and IDLE) must still see
    # every byte, including pipelined ones.
    addr, pw = filled(server, 5)
    r = Raw(server, port_key="imaps", tls=True)
    r.cmd("a1", "LOGIN %s %s" % (addr, pw))
    r.cmd("a2", "SELECT INBOX")
    uid_set = ",".join(str(n) for n in range(1, 6000))  # a ~30 KB command line
    lines, tagged = r.cmd("a3", "UID FETCH %s (UID FLAGS)" % uid_set)
    assert tagged == "a3 OK UID FETCH completed"
    assert len(lines) == 5
    lines, tagged = r.cmd("a4", "FETCH 1:* (BODY.PEEK[])")
    assert tagged == "a4 OK FETCH completed"
    r.send("a5 NOOP\r\na6 IDLE\r\n")
    _, tagged = r.until("a5")
    assert tagged == "a5 OK NOOP completed"
    assert r.line() == "+ idling"
    r.send("DONE\r\n")
    _, tagged = r.until("a6")
    assert tagged == "a6 OK IDLE terminated"
    _, tagged = r.cmd("a7", "NOOP")
    assert tagged == "a7 OK NOOP completed"
    r.close()
