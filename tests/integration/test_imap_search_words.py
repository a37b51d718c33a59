"""SEARCH BODY/TEXT of a string without ASCII separators is tested on the
message's distinct words (message_search.words, migration 012), any other
string on the whole text: the answers must be those of a substring test of
the text either way, whether the message is indexed or its text is still
pending, and for text cut at the 256 KB the search keeps."""

import pytest

from imap_helpers import filled, login, simple
from test_imap_search import unindexed, message_ids, search, wait_indexed

UTF8 = ("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n")

MESSAGES = [
    simple(1, subject="one", body="foo.bar\n"),
    simple(2, subject="two", body="bar foo\n"),
    simple(3, subject="three", body="cd.ab xy\n"),
    simple(4, subject="four", extra=UTF8, body="K\u00f6ln \u00abZitat\u00bb stra\u00dfe\n"),
    simple(5, subject="five", extra="X-Pattern: Zebra crossing\n",
           body="nothing striped here\n"),
]

CASES = [
    # (criteria, expected): the words of 1 and 2 are both "bar foo".
    (["BODY", "foobar"], []),
    (["BODY", '"bar foo"'], [2]),       # a separator: the text decides
    (["BODY", '"o.b"'], [1]),
    (["BODY", "abcd"], []),             # 3's words "ab cd xy": no run crosses
    (["BODY", '"b xy"'], [3]),
    (["BODY", '"b cd"'], []),           # in the words of 3, not in its text
    (["BODY", '"ab cd"'], []),
    (["BODY", "ab"], [3]),              # shorter than a trigram
    (["BODY", "BAR"], [1, 2]),
    (["BODY", "k\u00d6LN"], [4]),       # non-ASCII case folding, as before
    (["BODY", "\u00abzitat"], [4]),     # non-ASCII punctuation is no separator
    (["BODY", "ZITAT\u00bb"], [4]),
    (["BODY", '"zitat stra"'], []),
    (["BODY", "zebra"], []),            # only in a header field
    (["TEXT", "zebra"], [5]),
    (["TEXT", "ZEBRA"], [5]),
    (["TEXT", '"zebra cross"'], [5]),
    (["TEXT", "striped"], [5]),
    (["TEXT", "alice"], [1, 2, 3, 4, 5]),
    (["BODY", '""'], [1, 2, 3, 4, 5]),
    # strings with separators: their runs narrow through the words
    (["BODY", '"foo.bar"'], [1]),
    (["BODY", '"FOO.BA"'], [1]),
    (["BODY", '"oo.ba"'], [1]),        # no run of 3: the text alone
    (["BODY", '"foo.barx"'], []),
    (["BODY", '"x.foo.bar"'], []),
    (["BODY", "k\u00f6ln \u00abzitat"], [4]),
    (["BODY", "K\u00d6LN \u00abZITAT\u00bb STRA\u00dfE"], [4]),
    (["BODY", "stra\u00dfe k\u00f6ln"], []),
    (["BODY", '"ab xy"'], [3]),         # runs ending and beginning words
    (["BODY", '"d.ab x"'], [3]),
    (["BODY", '"b x"'], [3]),
    (["BODY", '"ab.cd"'], []),
    (["BODY", '"cd.ab xy"'], [3]),
    (["BODY", '"cd.ab xyz"'], []),
    (["BODY", '"foo."'], [1]),
    (["BODY", '"bar."'], []),
    (["TEXT", '"zebra crossing"'], [5]),
    (["TEXT", '"crossing zebra"'], []),
]


def utf8_search(m, key, needle):
    m.literal = needle.encode()
    typ, data = m.search("UTF-8", key)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def run_cases(m):
    for crit, want in CASES:
        if any(ord(c) > 127 for c in crit[1]):
            got = utf8_search(m, crit[0], crit[1])
        else:
            got = search(m, *crit)
        assert got == want, crit


@pytest.fixture(scope="module")
def words_box(server):
    addr, pw = filled(server, MESSAGES)
    wait_indexed(server, addr)
    return server, addr, pw


def test_words_indexed(words_box):
    srv, addr, pw = words_box
    m = login(srv, addr, pw)
    run_cases(m)
    m.logout()


def test_words_pending(words_box):
    srv, addr, pw = words_box
    with unindexed(srv, message_ids(srv, addr)):
        m = login(srv, addr, pw)
        run_cases(m)
        m.logout()
    wait_indexed(srv, addr)


def test_words_some_pending(words_box):
    """Two messages indexed, the others pending: one search finds both."""
    srv, addr, pw = words_box
    ids = sorted(message_ids(srv, addr))
    with unindexed(srv, ids[2:]):
        m = login(srv, addr, pw)
        assert search(m, "BODY", "bar") == [1, 2]
        assert search(m, "BODY", "o") == [1, 2, 4, 5]  # subjects too
        assert search(m, "TEXT", "Alice") == [1, 2, 3, 4, 5]
        assert search(m, "OR", "BODY", "foo", "TEXT", "zebra") == [1, 2, 5]
        m.logout()
    wait_indexed(srv, addr)


def test_words_generated_from_text(words_box):
    """The words are derived by the database from the stored text (the
    decoded subject and text parts)."""
    srv, addr, _ = words_box
    ids = ",".join(str(i) for i in message_ids(srv, addr))
    rows = srv.psql("SELECT words FROM message_search WHERE message_id IN (%s) "
                    "ORDER BY message_id" % ids)
    assert all(r[0].startswith(" ") and r[0].endswith(" ") for r in rows)
    got = [sorted(r[0].split()) for r in rows]
    assert got == [["bar", "foo", "one"], ["bar", "foo", "two"], ["ab", "cd", "three", "xy"],
                   sorted(["four", "k\u00f6ln", "\u00abzitat\u00bb", "stra\u00dfe"]),
                   ["five", "here", "nothing", "striped"]]


def cut_message(srv, addr, mid, letter):
    """(last stored token, the word it was cut from) of message mid, whose
    body is the words letter000000, letter000001, ... one a line."""
    tail = srv.psql("SELECT right(body, 40) FROM message_search WHERE message_id = %d"
                    % mid)[0][0]
    tokens = tail.split()
    return tokens[-1], "%s%06d" % (letter, int(tokens[-2][1:]) + 1)


def test_words_at_the_cut(server):
    """A text past 256 KB is searched in its first 256 KB only: a word cut
    in two is found by its first part, not whole, indexed or pending. Two
    bodies shifted by 4 bytes: at most one is cut between words."""
    bodies = ["\n".join("%s%06d" % (letter, i) for i in range(40000)) + "\n"
              for letter in "ab"]
    addr, pw = filled(server, [simple(1, body=bodies[0]), simple(2, body="pad " + bodies[1]),
                               simple(3, body="short\n")])
    wait_indexed(server, addr)
    ids = sorted(message_ids(server, addr))
    cuts = [cut_message(server, addr, ids[k], "ab"[k]) for k in range(2)]
    k = 0 if cuts[0][0] != cuts[0][1] else 1
    last, cut = cuts[k]
    assert last != cut and cut.startswith(last)
    letter, uid = "ab"[k], k + 1

    def check(m):
        assert search(m, "BODY", "%s001000" % letter) == [uid]
        assert search(m, "BODY", last.upper()) == [uid]
        assert search(m, "BODY", cut) == []
        assert search(m, "TEXT", cut) == []
        assert search(m, "BODY", "%s039999" % letter) == []
        assert search(m, "BODY", "%s%06d" % (letter, int(cut[1:]) - 1)) == [uid]

    m = login(server, addr, pw)
    check(m)
    m.logout()
    with unindexed(server, ids[:2]):
        m = login(server, addr, pw)
        check(m)
        m.logout()


def test_words_many_phrases(words_box):
    """The most keys a program may hold, each a phrase of several runs:
    parameters suffice (the two longest runs of each only)."""
    srv, addr, pw = words_box
    m = login(srv, addr, pw)
    assert search(m, *(['BODY "bar.foo.baz.qux xyzzy"'] * 198 + ["ALL"])) == []
    assert search(m, *(['BODY "foo.bar"'] * 198 + ["ALL"])) == [1]
    m.logout()
