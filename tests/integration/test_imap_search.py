"""IMAP SEARCH / UID SEARCH (RFC 3501/9051 6.4.4) with every key, CHARSET,
ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONDSTORE MODSEQ (RFC 7162), the
substring meaning of BODY/TEXT (inside words, across words, any case, UTF-8),
indexed or not yet, and
malformed programs (each followed by a check that the server serves)."""
import contextlib
import datetime
import re
import os
import threading
import time

import pytest

from imap_helpers import filled, login, multipart, raw_lines, simple

TODAY = datetime.datetime.now(datetime.timezone.utc)


def imapdate(d):
    return "%d-%s-%d" % (d.day, ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                 "Oct", "Nov", "Dec"][d.month - 1], d.year)


MESSAGES = [
    # 1: sent 7 Feb 1994 21:52 -0800 (8 Feb in UTC)
    simple(1),
    # 2: multipart, UTF-8 subject "Grüße report", body "Köln", "needle-word"
    multipart(),
    # 3
    simple(3, subject="Re: Meeting notes", frm="Carol <carol@example.net>",
           to="dave@example.com", date="Wed, 2 Mar 2022 09:00:00 +0100",
           extra="Cc: erin@example.com\nBcc: frank@example.com\nX-Priority: 1\n",
           body="The Quick brown fox jumps over the lazy dog.\n"),
    # 4: big
    simple(4, subject="Big one", date="Thu, 3 Mar 2022 12:00:00 +0000",
           body=("filler text line\n" * 400)),
]


def message_ids(srv, addr):
    return [r[0] for r in srv.psql(
        "SELECT e.message_id FROM mailbox_entries e JOIN mailboxes b ON b.id = e.mailbox_id "
        "JOIN accounts a ON a.id = b.account_id WHERE a.address = '%s'" % addr)]


def wait_indexed(srv, addr):
    """The indexer files the text in message_search shortly after delivery."""
    ids = ",".join(str(i) for i in message_ids(srv, addr))
    for _ in range(200):
        if srv.psql("SELECT count(*) FROM search_pending WHERE message_id IN (%s)" % ids)[0][0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("messages not indexed")


@pytest.fixture(scope="module")
def box(server):
    addr, pw = filled(server, MESSAGES)
    wait_indexed(server, addr)
    m = login(server, addr, pw)
    m.store("1", "+FLAGS", "(\\Seen \\Answered)")
    m.store("3", "+FLAGS", "(\\Flagged $Junk)")
    m.store("4", "+FLAGS", "(\\Draft \\Deleted)")
    m.logout()
    return server, addr, pw


def search(m, *crit, uid=False, charset=None):
    if uid:
        typ, data = m.uid("SEARCH", *((("CHARSET", charset) if charset else ()) + crit))
    else:
        typ, data = m.search(charset, *crit)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


CASES = [
    (["ALL"], [1, 2, 3, 4]),
    (["SEEN"], [1]),
    (["UNSEEN"], [2, 3, 4]),
    (["ANSWERED"], [1]),
    (["UNANSWERED"], [2, 3, 4]),
    (["FLAGGED"], [3]),
    (["UNFLAGGED"], [1, 2, 4]),
    (["DELETED"], [4]),
    (["UNDELETED"], [1, 2, 3]),
    (["DRAFT"], [4]),
    (["UNDRAFT"], [1, 2, 3]),
    (["KEYWORD", "$Junk"], [3]),
    (["KEYWORD", "$junk"], [3]),
    (["UNKEYWORD", "$Junk"], [1, 2, 4]),
    (["NEW"], []),
    (["OLD"], [1, 2, 3, 4]),
    (["RECENT"], []),
    (["FROM", "alice"], [1, 4]),
    (["FROM", "ALICE@EXAMPLE"], [1, 4]),
    (["TO", "dave"], [3]),
    (["CC", "erin"], [3]),
    (["BCC", "frank"], [3]),
    (["SUBJECT", "meeting"], [3]),
    (["SUBJECT", "message"], [1]),
    (["SUBJECT", '""'], [1, 2, 3, 4]),
    (["HEADER", "X-Priority", "1"], [3]),
    (["HEADER", "x-priority", '""'], [3]),
    (["HEADER", "Message-ID", "example.org"], [1, 2, 3, 4]),
    (["HEADER", "X-None", '""'], []),
    (["BODY", '"quick brown"'], [3]),
    (["BODY", "QUICK"], [3]),
    (["BODY", "quic"], [3]),             # a word prefix
    (["BODY", '"brown fox jumps"'], [3]),
    (["BODY", '"fox brown"'], []),          # words present, substring absent
    (["BODY", "needle-word"], [2]),
    (["BODY", "nomatchatall"], []),
    (["BODY", "uick"], [3]),             # begins inside a word
    (["BODY", "ick"], [3]),              # inside a word
    (["BODY", '"ick bro"'], [3]),        # across words, both ends inside one
    (["BODY", '"OWN FOX JUM"'], [3]),
    (["BODY", "eedle-wo"], [2]),
    (["BODY", '"ILLER TEXT LI"'], [4]),
    (["BODY", '"%"'], []),               # ILIKE's wildcards are literal
    (["BODY", "_"], []),
    (["TEXT", "arol@example.ne"], [3]),  # inside a header's word
    (["TEXT", "lazy"], [3]),
    (["TEXT", "carol"], [3]),            # a header
    (["TEXT", "filler"], [4]),
    (["LARGER", "3000"], [4]),
    (["SMALLER", "200"], [1]),
    (["SENTON", "7-Feb-1994"], [1]),     # the header's own zone
    (["SENTBEFORE", "1-Jan-2000"], [1]),
    (["SENTSINCE", "2-Mar-2022"], [3, 4]),
    (["SENTON", "2-Mar-2022"], [3]),
    (["ON", imapdate(TODAY)], [1, 2, 3, 4]),
    (["SINCE", imapdate(TODAY - datetime.timedelta(days=1))], [1, 2, 3, 4]),
    (["BEFORE", imapdate(TODAY - datetime.timedelta(days=1))], []),
    (["NOT", "SEEN"], [2, 3, 4]),
    (["OR", "SEEN", "FLAGGED"], [1, 3]),
    (["OR", "SEEN", "OR", "FLAGGED", "DRAFT"], [1, 3, 4]),
    (["(SEEN ANSWERED)"], [1]),
    (["NOT", "(SEEN ANSWERED)"], [2, 3, 4]),
    (["(OR SEEN FLAGGED)", "UNDELETED"], [1, 3]),
    (["2:3"], [2, 3]),
    (["*"], [4]),
    (["1,3:*"], [1, 3, 4]),
    (["UID", "2:*"], [2, 3, 4]),
    (["UID", "4:2"], [2, 3, 4]),
    (["UID", "99"], []),
    (["NOT", "UID", "1"], [2, 3, 4]),
]


@pytest.mark.parametrize("crit,want", CASES, ids=[" ".join(c) for c, _ in CASES])
def test_keys(box, crit, want):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    assert search(m, *crit) == want
    assert search(m, *crit, uid=True) == want  # no expunges: UIDs are MSNs
    m.logout()


TEXT_CASES = [c for c in CASES if c[0][0] in ("BODY", "TEXT")]


def pending_sql(ids):
    """Takes the texts of ids out of message_search and notes the messages
    in search_pending, as delivery leaves a new message."""
    return ("WITH moved AS (DELETE FROM message_search WHERE message_id IN (%s) "
            "RETURNING message_id) INSERT INTO search_pending SELECT message_id FROM moved"
            % ",".join(str(i) for i in ids))


@contextlib.contextmanager
def unindexed(srv, ids):
    """Makes ids unindexed again for the block: a search files whatever the
    indexer has not reached by then itself, so the answers are the same."""
    srv.psql(pending_sql(ids))
    yield


@pytest.mark.parametrize("crit,want", TEXT_CASES, ids=[" ".join(c) for c, _ in TEXT_CASES])
def test_text_not_indexed_yet(server, crit, want):
    """Messages the indexer has not reached (still in search_pending) are
    found, with the same answers."""
    addr, pw = filled(server, MESSAGES)
    wait_indexed(server, addr)
    with unindexed(server, message_ids(server, addr)):
        m = login(server, addr, pw)
        assert search(m, *crit) == want
        m.logout()


def test_text_search_files_pending_itself(server):
    """A BODY search first files the mailbox's unindexed messages itself, in
    its own transaction. While another indexer holds them (here an open
    transaction holding their pending rows, as a batch in flight does) it
    waits, instead of missing them; once they are let go it files them
    and answers right. Other mailboxes' pending messages stay for the
    indexer."""
    import psycopg2
    addr, pw = filled(server, MESSAGES)
    wait_indexed(server, addr)
    ids = message_ids(server, addr)
    hold = psycopg2.connect(host=os.path.join(server.data_dir, "run"), dbname="roost",
                            user="roost")
    try:
        cur = hold.cursor()
        for _ in range(50):  # until the lock comes before the indexer
            server.psql(pending_sql(ids))
            cur.execute("SELECT count(*) FROM (SELECT 1 FROM search_pending WHERE message_id "
                        "IN (%s) FOR UPDATE) AS locked" % ",".join(map(str, ids)))
            if cur.fetchone()[0] == len(ids):
                break
            hold.rollback()
        else:
            raise AssertionError("the indexer always came first")
        m = login(server, addr, pw)
        found = []
        t = threading.Thread(target=lambda: found.append(search(m, "BODY", "filler")))
        t.start()
        t.join(0.7)
        assert t.is_alive() and not found  # waiting for the rows held
        hold.rollback()
        t.join(10)
        assert found == [[4]]
        m.logout()
    finally:
        hold.rollback()
        hold.close()
    got = server.psql("SELECT count(*) FROM message_search WHERE message_id IN (%s) AND "
                      "body = lower(body) AND words <> ''" % ",".join(map(str, ids)))
    assert got[0][0] == len(ids)


def test_charset(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    assert search(m, "SUBJECT", '"grüße"'.encode(), charset="UTF-8") == [2]
    assert search(m, "FROM", '"JÜRGEN"'.encode(), charset="UTF-8") == [2]
    m.literal = "Köln".encode()
    typ, data = m.search("UTF-8", "BODY")
    assert typ == "OK" and data[0] == b"2"
    assert search(m, "ALL", charset="US-ASCII") == [1, 2, 3, 4]
    m.logout()


def test_substring_utf8(box):
    """Substrings of UTF-8 text, case-insensitively, in indexed messages."""
    srv, addr, pw = box
    m = login(srv, addr, pw)
    for needle in ["ÖLN", "rüß", "ÜßE AUS K", "Grüße aus Köln"]:
        m.literal = needle.encode()
        typ, data = m.search("UTF-8", "BODY")
        assert typ == "OK" and data[0] == b"2", needle
    m.literal = "öln".encode()
    typ, data = m.search("UTF-8", "TEXT")
    assert typ == "OK" and data[0] == b"2"
    m.logout()


def test_substring_inside_words_and_markup(server):
    """Strings inside words and inside "<...>" (which a full-text parser
    would take for a tag) are found: trigrams narrow, the text decides."""
    addr, pw = filled(server, [simple(1, body="see <b hidden words> hello there\n"),
                               simple(2, body="nothing here\n")])
    wait_indexed(server, addr)
    m = login(server, addr, pw)
    assert search(m, "BODY", "hidden") == [1]
    assert search(m, "BODY", '"b hidden wo"') == [1]
    assert search(m, "BODY", "ell") == [1]
    assert search(m, "TEXT", '"LLO THE"') == [1]
    assert search(m, "BODY", "here") == [1, 2]
    m.logout()


def test_badcharset_reply(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, "SEARCH CHARSET KOI8-R ALL")
    assert out == [tag + b" NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"]
    m.logout()


def test_esearch(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, "SEARCH RETURN (MIN MAX COUNT) UNSEEN")
    assert out[0] == b'* ESEARCH (TAG "%s") MIN 2 MAX 4 COUNT 3' % tag
    tag, out = raw_lines(m, "UID SEARCH RETURN () ALL")
    assert out[0] == b'* ESEARCH (TAG "%s") UID ALL 1:4' % tag
    tag, out = raw_lines(m, "SEARCH RETURN (ALL) OR SEEN DRAFT")
    assert out[0] == b'* ESEARCH (TAG "%s") ALL 1,4' % tag
    tag, out = raw_lines(m, "SEARCH RETURN (COUNT MIN) UID 99")
    assert out[0] == b'* ESEARCH (TAG "%s") COUNT 0' % tag
    tag, out = raw_lines(m, "SEARCH RETURN (BOGUS) ALL")
    assert out[-1].startswith(tag + b" BAD")
    m.logout()


def test_searchres(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, "SEARCH RETURN (SAVE) UNSEEN")
    assert out == [tag + b" OK SEARCH completed"]  # SAVE alone: no ESEARCH
    typ, data = m.fetch("$", "(UID)")
    assert [d.split()[0] for d in data] == [b"2", b"3", b"4"]
    assert search(m, "$", "FLAGGED") == [3]
    assert search(m, "UID", "$") == [2, 3, 4]
    tag, out = raw_lines(m, "UID SEARCH RETURN (SAVE MIN) UNSEEN")
    assert out[0] == b'* ESEARCH (TAG "%s") UID MIN 2' % tag
    assert search(m, "$") == [2]
    # A failed SAVE empties $.
    raw_lines(m, "SEARCH RETURN (SAVE) BEFORE 99-Foo-2000")
    assert search(m, "$") == []
    m.logout()


def test_modseq(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, "FETCH 3 (MODSEQ)")
    ms = int(re.search(rb"MODSEQ \((\d+)\)", out[0]).group(1))
    tag, out = raw_lines(m, "SEARCH MODSEQ %d" % ms)
    assert re.match(rb"\* SEARCH( \d+)* 3( \d+)* \(MODSEQ \d+\)$", out[0]), out
    tag, out = raw_lines(m, 'SEARCH MODSEQ "/flags/\\\\draft" all 999999999')
    assert out[0] == b"* SEARCH"
    m.logout()


def test_new_messages_not_reported_before_exists(box):
    """The query is bounded by the view: a message delivered after SELECT
    appears only once the client has been told (EXISTS)."""
    srv, addr, pw = box
    m = login(srv, addr, pw)
    from imap_helpers import deliver
    deliver(srv, addr, simple(5, subject="late arrival"))
    tag, out = raw_lines(m, "SEARCH SUBJECT late")
    i = out.index(next(x for x in out if x.startswith(b"* SEARCH")))
    exists_before = any(re.match(rb"\* \d+ EXISTS", x) for x in out[:i])
    assert out[i] == (b"* SEARCH 5" if exists_before else b"* SEARCH")
    m.logout()


ABUSE = [
    "SEARCH",
    "SEARCH FOO",
    "SEARCH SUBJECT",
    "SEARCH (SEEN",
    "SEARCH SEEN)",
    "SEARCH ()",
    "SEARCH OR SEEN",
    "SEARCH BEFORE 32-Jan-2020",
    "SEARCH LARGER 99999999999999999999999",
    "SEARCH UID 0",
    "SEARCH 0",
    "SEARCH 99",
    "SEARCH CHARSET",
    "SEARCH " + "(" * 40 + "SEEN" + ")" * 40,
    "SEARCH " + "NOT " * 100 + "SEEN",
    "SEARCH " + "SEEN " * 300,
    "SEARCH HEADER",
    "SEARCH RETURN (MIN",
    "SEARCH MODSEQ x",
]


@pytest.mark.parametrize("cmd", ABUSE)
def test_abuse(box, cmd):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, cmd)
    assert out[-1].startswith(tag + b" BAD"), out
    assert search(m, "SEEN") == [1]
    m.logout()


def test_long_literal_string(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    m.literal = b"x" * 20000
    typ, data = m.search(None, "BODY")
    assert typ == "OK" and data == [b""]
    assert search(m, "SEEN") == [1]
    m.logout()
