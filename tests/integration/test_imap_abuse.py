"""The IMAP abuse catalogue: each case gets its exact error, and then the
server still serves (a new session greets and answers)."""
import socket
import time

from test_imap_common import Raw, account, filled, still_serves, raw_login


def test_commands_before_greeting(server):
    r = Raw(server, greet=False)
    r.send("a1 NOOP\r\na2 CAPABILITY\r\n")
    assert r.line().startswith("* OK [CAPABILITY IMAP4rev1")
    _, t = r.until("a1")
    assert t == "a1 OK NOOP completed"
    _, t = r.until("a2")
    assert t == "a2 OK CAPABILITY completed"
    r.close()
    still_serves(server)


def test_huge_literal_sizes(server):
    r = Raw(server)
    r.send("a1 LOGIN {4294967296}\r\n")
    _, t = r.until("a1")
    assert t == "a1 BAD [TOOBIG] Literal too big"
    r.send("a2 LOGIN {99999999999999999999999}\r\n")
    _, t = r.until("a2")
    assert t == "a2 BAD [TOOBIG] Literal too big"
    _, t = r.cmd("a3", "LOGIN {abc}")
    assert t.startswith("a3 BAD")
    _, t = r.cmd("a4", "NOOP")
    assert t == "a4 OK NOOP completed"
    # A non-synchronising literal that cannot be skipped ends the session.
    r.send("a5 LOGIN {4294967296+}\r\n")
    lines, t = r.until("a5")
    assert lines == ["* BYE [TOOBIG] Literal too big to skip, closing connection"]
    assert t == "a5 BAD [TOOBIG] Literal too big"
    assert r.closed()
    still_serves(server)


def test_small_nonsync_literal_over_preauth_limit_is_skipped(server):
    r = Raw(server)
    junk = "a9 LOGOUT\r\n" * 1000  # 11000 bytes, more than literal_size_preauth
    r.send("a1 LOGIN {%d+}\r\n%s x\r\n" % (len(junk), junk))
    _, t = r.until("a1")
    assert t == "a1 BAD [TOOBIG] Literal too big"
    _, t = r.cmd("a2", "NOOP")
    assert t == "a2 OK NOOP completed"
    r.close()


def test_unterminated_literal_and_half_close(server):
    r = Raw(server)
    r.send("a1 LOGIN {20}\r\n")
    assert r.line() == "+ Ready for literal data"
    r.send("only-part")
    r.sock.shutdown(socket.SHUT_WR)
    assert r.closed()
    r.close()
    r = Raw(server)
    r.send("a1 NOOP\r\n")
    r.sock.shutdown(socket.SHUT_WR)
    _, t = r.until("a1")
    assert t == "a1 OK NOOP completed"
    assert r.closed()
    still_serves(server)


def test_long_lines_and_atoms(server):
    addr, pw = account(server)
    r = Raw(server)
    r.send("a1 LOGIN " + "x" * 100000 + "\r\n")
    assert r.line() == "* BAD [TOOBIG] Command line too long"
    _, t = r.cmd("a2", "NOOP")
    assert t == "a2 OK NOOP completed"
    r.cmd("l", "LOGIN %s %s" % (addr, pw))
    r.send("a3 SELECT " + "y" * 100000 + "\r\n")
    assert r.line() == "* BAD [TOOBIG] Command line too long"
    _, t = r.cmd("a4", "SELECT " + "y" * 10000)
    assert t.startswith("a4 NO")
    long_tag = "t" * 100
    r.send(long_tag + " NOOP\r\n")
    assert r.line() == "* BAD Missing or invalid tag"
    r.close()
    still_serves(server)


def test_deep_parentheses(server):
    addr, pw = filled(server, 1)
    r = raw_login(server, addr, pw)
    r.cmd("s", "SELECT INBOX")
    _, t = r.cmd("a1", "SEARCH " + "(" * 5000 + "ALL" + ")" * 5000)
    assert t.startswith("a1 BAD")
    _, t = r.cmd("a2", 'LIST (' + "(" * 1000 + ') "" *')
    assert t.startswith("a2 BAD")
    _, t = r.cmd("a3", "ID " + "(" * 1000)
    assert t.startswith("a3 BAD")
    _, t = r.cmd("a4", "NOOP")
    assert t == "a4 OK NOOP completed"
    r.close()
    still_serves(server)


def test_bare_lf_and_control_bytes(server):
    r = Raw(server)
    r.send("a1 NOOP\n")
    _, t = r.until("a1")
    assert t == "a1 OK NOOP completed"
    r.send(b"a2 LOGIN \"a\x00b\" c\r\n")
    _, t = r.until("a2")
    assert t.startswith("a2 BAD")
    r.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
    assert r.line() == "* BAD Missing or invalid tag"
    r.close()
    still_serves(server)


def test_header_text_as_commands_and_bad_limit(server):
    r = Raw(server)
    r.send("From: someone@example.org\r\n")
    _, t = r.until("From:")
    assert t == "From: BAD Unknown command"
    n = 0
    try:
        while True:
            r.send("x%d BOGUS\r\n" % n)
            l = r.line()
            n += 1
            if l.startswith("* BYE"):
                assert l == "* BYE Too many bad commands, closing connection"
                break
            assert l == "x%d BAD Unknown command" % (n - 1)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        raise AssertionError("closed without BYE after %d" % n)
    assert n <= 10
    assert r.closed()
    still_serves(server)


def test_pipelined_commands(server):
    addr, pw = filled(server, 2)
    r = Raw(server)
    r.send("a1 LOGIN %s %s\r\na2 SELECT INBOX\r\na3 STORE 1 +FLAGS (\\Seen)\r\na4 LOGOUT\r\n"
           % (addr, pw))
    for tag in ["a1", "a2", "a3"]:
        _, t = r.until(tag)
        assert t.startswith(tag + " OK"), t
    lines, t = r.until("a4")
    assert lines == ["* BYE Logging out"]
    assert r.closed()


def test_idle_timeout_is_bounded(fresh):
    srv = fresh(extra={"limits.preauth_timeout": "5s"}).start()
    r = Raw(srv)
    start = time.time()
    assert r.closed(timeout=15)
    assert time.time() - start < 12
    assert b"* BYE Autologout" in r.buf
    still_serves(srv)
