"""Malformed IMAP input found by the robustness probe: each case is sent as
exact bytes over a raw socket, gets its exact reply (and nothing more), and
then the session and the server still answer."""
import pytest

from test_imap_common import Raw, account, filled, raw_login, raw_select, still_serves

BAD_TAG = "* BAD Missing or invalid tag"
BAD_UTF8 = "BAD Search argument is not valid UTF-8"
BAD_RANGE = "BAD Date-time out of range (1970 to 9999)"


def log_mark(srv):
    return len(srv.log_text())


def assert_clean_log(srv, mark):
    """No internal error, no failed statement since mark."""
    text = srv.log_text()[mark:]
    assert "event=imap_internal_error" not in text, text[-2000:]
    assert "event=db_error" not in text, text[-2000:]
    assert "event=store_failure" not in text, text[-2000:]


def noop_ok(r, tag="n"):
    """The session still works: the next line is NOOP's own answer (nothing
    left over from what came before)."""
    r.send("%s NOOP\r\n" % tag)
    assert r.line() == "%s OK NOOP completed" % tag


def mailboxes(r, pattern):
    lines, t = r.cmd("lst", 'LIST "" "%s"' % pattern)
    assert t == "lst OK LIST completed"
    return lines


def inbox_messages(r):
    lines, t = r.cmd("st", "STATUS INBOX (MESSAGES)")
    assert t == "st OK STATUS completed"
    return lines


# ---- 1. untagged lines get "* BAD" alone ----

@pytest.mark.parametrize("line", [b"\r\n", b" \r\n", b"\x00\r\n", b"\xff NOOP\r\n"],
                         ids=["empty", "space", "nul", "8bit"])
def test_untagged_line_gets_only_bad(server, line):
    mark = log_mark(server)
    r = Raw(server)
    r.send(line)
    assert r.line() == BAD_TAG
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


def test_untagged_lines_logged_in(server):
    addr, pw = account(server)
    mark = log_mark(server)
    r = raw_login(server, addr, pw)
    r.send(b"\r\n \r\n\x00\r\n\xff NOOP\r\n")
    for _ in range(4):
        assert r.line() == BAD_TAG
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)


def test_untagged_lines_count_as_bad_commands(server):
    # limits.bad_commands_preauth is 10 by default.
    r = Raw(server)
    r.send(b"\r\n" * 10)
    for _ in range(10):
        assert r.line() == BAD_TAG
    assert r.line() == "* BYE Too many bad commands, closing connection"
    assert r.closed()
    r.close()
    still_serves(server)


def test_idle_garbage_then_done(server):
    addr, pw = account(server)
    mark = log_mark(server)
    r = raw_login(server, addr, pw)
    r.send("a IDLE\r\n")
    assert r.line() == "+ idling"
    r.send("garbage\r\n")
    assert r.line() == "a BAD Expected DONE"
    r.send("DONE\r\n")
    assert r.line() == BAD_TAG
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


def test_authenticate_login_empty_response(server):
    mark = log_mark(server)
    r = Raw(server)
    r.send("a AUTHENTICATE LOGIN\r\n")
    assert r.line() == "+ VXNlcm5hbWU6"
    r.send("\r\n")
    assert r.line() == "a BAD empty user name or password"
    # A client that goes on to answer the password prompt.
    r.send("\r\n")
    assert r.line() == BAD_TAG
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


# ---- 2. a non-synchronising literal is data, never a command ----

SMUGGLED = "b CREATE smuggled\r\n"


def smuggle(r, head, mark_char="-"):
    """Sends head ending in a non-synchronising literal that holds a whole
    command; returns the reply line."""
    r.send("%s{%d%s}\r\n%s\r\n" % (head, len(SMUGGLED), mark_char, SMUGGLED))
    return r.line()


def assert_nothing_smuggled(r):
    noop_ok(r)
    assert mailboxes(r, "smuggled") == []


@pytest.mark.parametrize("mark_char", ["-", "+"], ids=["literal-minus", "literal-plus"])
def test_nonsync_literal_of_unknown_command_is_skipped(server, mark_char):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    assert smuggle(r, "a BOGUS ", mark_char) == "a BAD Unknown command"
    assert_nothing_smuggled(r)
    r.close()
    still_serves(server)


def test_nonsync_literal_minus_of_refused_commands_is_skipped(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    # Wrong state, untagged, and a syntax error in a known command.
    assert smuggle(r, "a1 LOGIN x ") == "a1 BAD Already logged in"
    assert smuggle(r, "") == BAD_TAG
    assert smuggle(r, "a2 CREATE x y ") == "a2 BAD Unexpected extra arguments"
    assert_nothing_smuggled(r)
    r.close()
    still_serves(server)


def test_literal_minus_is_read_as_a_string(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.send("a CREATE {6-}\r\nminus1\r\n")
    assert r.line() == "a OK CREATE completed"
    assert mailboxes(r, "minus1") == ['* LIST (\\HasNoChildren) "/" "minus1"']
    r.close()


# ---- 3. search strings must be UTF-8 ----

SEARCH_CASES = [
    b'SEARCH TEXT "\xff"',
    b'SEARCH SUBJECT "\xff"',
    b'SEARCH FROM "\xff"',
    b'SEARCH TO "\xff"',
    b'SEARCH CC "\xff"',
    b'SEARCH BCC "\xff"',
    b'SEARCH BODY "\xff"',
    b'SEARCH HEADER X-Test "\xff"',
    b'SEARCH HEADER "X-\xff" x',
    b'SEARCH CHARSET UTF-8 SUBJECT "\xc3"',
    b'SEARCH CHARSET UTF-8 TEXT "\xc3"',
    b'SEARCH TEXT \xc3\xa9\xff',
    b'SEARCH KEYWORD \xff',
    b'SEARCH OR SUBJECT a NOT FROM "\xed\xa0\x80"',
    b'UID SEARCH RETURN (COUNT) TEXT "\xe2\x82"',
    b'SORT (DATE) UTF-8 FROM "\xff"',
    b'THREAD REFERENCES UTF-8 BODY "\xc3"',
]


@pytest.mark.parametrize("cmd", SEARCH_CASES, ids=range(len(SEARCH_CASES)))
def test_search_invalid_utf8_is_bad(server, cmd):
    addr, pw = filled(server, 2)
    r = raw_select(server, addr, pw)
    mark = log_mark(server)
    r.send(b"a " + cmd + b"\r\n")
    assert r.line() == "a " + BAD_UTF8
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


def test_search_literal_invalid_utf8_is_bad(server):
    addr, pw = filled(server, 2)
    r = raw_select(server, addr, pw)
    mark = log_mark(server)
    r.send(b"a SEARCH CHARSET UTF-8 TEXT {1}\r\n")
    assert r.line() == "+ Ready for literal data"
    r.send(b"\xff\r\n")
    assert r.line() == "a " + BAD_UTF8
    r.send(b"b SEARCH SUBJECT {2+}\r\n\xc3(\r\n")
    assert r.line() == "b " + BAD_UTF8
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)


def test_search_valid_utf8_still_searches(server):
    addr, pw = filled(server, 2)
    r = raw_select(server, addr, pw)
    r.send('a SEARCH CHARSET UTF-8 TEXT "caf\u00e9"\r\n'.encode())
    assert r.line() == "* SEARCH"
    assert r.line() == "a OK SEARCH completed"
    r.send(b'b SEARCH SUBJECT "message 1"\r\n')
    assert r.line() == "* SEARCH 2"
    assert r.line() == "b OK SEARCH completed"
    r.close()


def test_search_invalid_utf8_counts_as_bad_command(server):
    # limits.bad_commands is 20 by default (counted from the login).
    addr, pw = filled(server, 1)
    r = raw_select(server, addr, pw)
    for i in range(19):
        r.send(b'a%d SEARCH TEXT "\xff"\r\n' % i)
        assert r.line() == "a%d %s" % (i, BAD_UTF8)
    noop_ok(r)
    r.send(b'last SEARCH TEXT "\xff"\r\n')
    assert r.line() == "last " + BAD_UTF8
    assert r.line() == "* BYE Too many bad commands, closing connection"
    assert r.closed()
    r.close()
    still_serves(server)


# ---- 4. CREATE checks every level before making parents ----

@pytest.mark.parametrize("name", ["zz//b", "/zz", "zz//", "zz/b//c", "zz/" + "a" * 1000],
                         ids=["empty-middle", "empty-first", "empty-last", "empty-deep",
                              "too-long"])
def test_create_invalid_name_creates_nothing(server, name):
    addr, pw = account(server)
    mark = log_mark(server)
    r = raw_login(server, addr, pw)
    r.send('a CREATE "%s"\r\n' % name)
    assert r.line() == "a NO [CANNOT] Invalid mailbox name"
    assert mailboxes(r, "zz*") == []
    noop_ok(r)
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


@pytest.mark.parametrize("name", [b"zz/a\x01", b"zz/a\x7f", b"zz/a\xc2\x85"],
                         ids=["c0", "del", "c1"])
def test_create_control_character_creates_nothing(server, name):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    lines, t = r.cmd("e", "ENABLE IMAP4rev2")  # UTF-8 names, not modified UTF-7
    assert lines == ["* ENABLED IMAP4rev2"]
    assert t == "e OK ENABLE completed"
    r.send(b'a CREATE "' + name + b'"\r\n')
    assert r.line() == "a NO [CANNOT] Invalid mailbox name"
    assert mailboxes(r, "zz*") == []
    noop_ok(r)
    r.close()


def test_rename_invalid_name_creates_nothing(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    _, t = r.cmd("c", "CREATE src")
    assert t == "c OK CREATE completed"
    r.send('a RENAME src "zz//b"\r\n')
    assert r.line() == "a NO [CANNOT] Invalid new mailbox name"
    assert mailboxes(r, "zz*") == []
    assert mailboxes(r, "src") == ['* LIST (\\HasNoChildren) "/" "src"']
    r.close()


def test_create_valid_name_still_makes_parents(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.send('a CREATE "zz/b/"\r\n')
    assert r.line() == "a OK CREATE completed"
    assert mailboxes(r, "zz*") == ['* LIST (\\HasChildren) "/" "zz"',
                                   '* LIST (\\HasNoChildren) "/" "zz/b"']
    r.close()


# ---- 5. APPEND date-time: impossible dates and out of range ----

@pytest.mark.parametrize("date", ["31-Feb-2020", "30-Feb-2020", "29-Feb-2021", "29-Feb-1900",
                                  "31-Apr-2021", "31-Jun-2021", "31-Sep-2021", "31-Nov-2021"])
def test_append_impossible_date_is_bad(server, date):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.send('a APPEND INBOX "%s 00:00:00 +0000" {5}\r\n' % date)
    # No "+": the client never sends the message.
    assert r.line() == "a BAD Invalid date-time"
    noop_ok(r)
    assert inbox_messages(r) == ["* STATUS \"INBOX\" (MESSAGES 0)"]
    r.close()
    still_serves(server)


@pytest.mark.parametrize("date, shown", [
    ("29-Feb-2020 12:00:00 +0000", "29-Feb-2020 12:00:00 +0000"),
    ("29-Feb-2000 00:00:00 +0000", "29-Feb-2000 00:00:00 +0000"),
    ("31-Dec-2021 23:59:59 +0000", "31-Dec-2021 23:59:59 +0000"),
    ("01-Jan-1970 00:00:00 +0000", " 1-Jan-1970 00:00:00 +0000"),  # not "now"
], ids=["leap", "leap-400", "end-of-year", "epoch"])
def test_append_possible_date_is_stored(server, date, shown):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.send('a APPEND INBOX "%s" {5+}\r\nhello\r\n' % date)
    assert r.line().startswith("a OK [APPENDUID ")
    r.cmd("s", "SELECT INBOX")
    lines, t = r.cmd("f", "FETCH 1 INTERNALDATE")
    assert t == "f OK FETCH completed"
    assert lines == ['* 1 FETCH (INTERNALDATE "%s")' % shown]
    r.close()


@pytest.mark.parametrize("date", ["01-Jan-1900 00:00:00 +0000", "31-Dec-1969 23:59:59 +0000",
                                  "01-Jan-1970 00:30:00 +0100", "31-Dec-9999 23:59:59 -0100"],
                         ids=["1900", "before-epoch", "before-epoch-zone", "after-9999"])
def test_append_date_out_of_range_is_bad_before_continuation(server, date):
    addr, pw = account(server)
    mark = log_mark(server)
    r = raw_login(server, addr, pw)
    r.send('a APPEND INBOX "%s" {5}\r\n' % date)
    # No "+": refused before the upload.
    assert r.line() == "a " + BAD_RANGE
    noop_ok(r)
    assert inbox_messages(r) == ["* STATUS \"INBOX\" (MESSAGES 0)"]
    r.close()
    assert_clean_log(server, mark)
    still_serves(server)


@pytest.mark.parametrize("mark_char", ["+", "-"], ids=["literal-plus", "literal-minus"])
def test_append_date_out_of_range_nonsync_literal_is_discarded(server, mark_char):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    reply = smuggle(r, 'a APPEND INBOX "01-Jan-1900 00:00:00 +0000" ', mark_char)
    assert reply == "a " + BAD_RANGE
    assert_nothing_smuggled(r)
    assert inbox_messages(r) == ["* STATUS \"INBOX\" (MESSAGES 0)"]
    r.close()
    still_serves(server)


def test_multiappend_date_out_of_range_stores_nothing(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    msg = "Subject: x\r\n\r\nbody\r\n"
    r.send('a APPEND INBOX {%d+}\r\n%s "01-Jan-1900 00:00:00 +0000" {%d+}\r\n%s\r\n'
           % (len(msg), msg, len(msg), msg))
    assert r.line() == "a " + BAD_RANGE
    noop_ok(r)
    assert inbox_messages(r) == ["* STATUS \"INBOX\" (MESSAGES 0)"]
    r.close()
    still_serves(server)
