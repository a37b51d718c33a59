"""IMAP SORT (RFC 5256 section 3) and THREAD=ORDEREDSUBJECT / REFERENCES
(RFC 5256 sections 2.1 and 3) on messages delivered by `roost deliver`:
every sort key, REVERSE, base subjects, In-Reply-To/References chains,
subject grouping of unrelated roots, and malformed commands."""
import pytest

from imap_helpers import crlf, filled, login, raw_lines


def msg(mid, subject, date, frm="a@example.org", to="b@example.org", cc="", irt="", refs="",
        body="x\n"):
    extra = ""
    if cc:
        extra += "Cc: %s\n" % cc
    if irt:
        extra += "In-Reply-To: %s\n" % irt
    if refs:
        extra += "References: %s\n" % refs
    return crlf("From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: %s\n%s\n%s"
                % (frm, to, subject, date, mid, extra, body))


MESSAGES = [
    # 1
    msg("<1@t>", "Project plan", "Mon, 1 Jan 2024 10:00:00 +0000", frm="Zed <zed@example.org>",
        to="yan@example.org", cc="carl@example.org", body="short\n"),
    # 2: reply to 1
    msg("<2@t>", "Re: Project plan", "Mon, 1 Jan 2024 12:00:00 +0000",
        frm="\"Adams, Amy\" <amy@example.org>", to="xavier@example.org", irt="<1@t>",
        refs="<1@t>", body="a much longer body\n" * 20),
    # 3: unrelated
    msg("<3@t>", "[list] Lunch?", "Sun, 31 Dec 2023 09:00:00 +0000", frm="bob@example.org",
        to="walt@example.org", cc="alice@example.org"),
    # 4: reply to 2
    msg("<4@t>", "RE: Re: Project plan", "Tue, 2 Jan 2024 08:00:00 +0000", frm="carl@example.org",
        to="vic@example.org", irt="<2@t>", refs="<1@t> <2@t>"),
    # 5: another reply to 1, earlier than 4
    msg("<5@t>", "Re: Project plan", "Mon, 1 Jan 2024 18:00:00 +0000", frm="dan@example.org",
        to="ursula@example.org", irt="<1@t>", refs="<1@t>"),
    # 6: same subject as 3 but no references: grouped by subject
    msg("<6@t>", "Re: Lunch?", "Sun, 31 Dec 2023 11:00:00 +0000", frm="eve@example.org",
        to="tom@example.org"),
    # 7: refers to a message we do not have (dummy parent), subject unique
    msg("<7@t>", "Fwd: Minutes", "Wed, 3 Jan 2024 08:00:00 +0000", frm="fay@example.org",
        to="sam@example.org", refs="<missing@t>"),
]


@pytest.fixture(scope="module")
def box(server):
    return (server,) + filled(server, MESSAGES)


def sort(m, crit, *search, uid=False):
    if uid:
        typ, data = m.uid("SORT", crit, "UTF-8", *search)
    else:
        typ, data = m.sort(crit, "UTF-8", *search)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


SORTS = [
    ("(ARRIVAL)", [1, 2, 3, 4, 5, 6, 7]),
    ("(REVERSE ARRIVAL)", [7, 6, 5, 4, 3, 2, 1]),
    ("(DATE)", [3, 6, 1, 2, 5, 4, 7]),
    ("(REVERSE DATE)", [7, 4, 5, 2, 1, 6, 3]),
    ("(SUBJECT DATE)", [3, 6, 7, 1, 2, 5, 4]),   # "Lunch?", "Minutes", "Project plan"
    ("(FROM)", [2, 3, 4, 5, 6, 7, 1]),           # amy bob carl dan eve fay zed
    ("(TO)", [7, 6, 5, 4, 3, 2, 1]),             # sam tom ursula vic walt xavier yan
    ("(CC DATE)", [6, 2, 5, 4, 7, 3, 1]),       # no Cc sorts first (empty)
    ("(SIZE ARRIVAL)", None),
    ("(REVERSE SIZE)", None),
]


@pytest.mark.parametrize("crit,want", SORTS, ids=[c for c, _ in SORTS])
def test_sort(box, crit, want):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    got = sort(m, crit, "ALL")
    if want is not None:
        assert got == want
    else:
        assert sorted(got) == [1, 2, 3, 4, 5, 6, 7]
        big = got.index(2)
        assert (big == 6) if crit.startswith("(SIZE") else (big == 0)
    m.logout()


def test_sort_with_search_and_uid(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    assert sort(m, "(DATE)", "SUBJECT", "project") == [1, 2, 5, 4]
    assert sort(m, "(REVERSE DATE)", "NOT", "SUBJECT", "project", uid=True) == [7, 6, 3]
    m.logout()


def test_thread_references(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    # 3 and 6 share a base subject ("Lunch?"), 6 is a reply: child of 3.
    # 1 has children 2 (then 4) and 5, by date. 7 hangs off a dummy that
    # is pruned (single child).
    assert data[0] == b"(3 6)(1 (2 4)(5))(7)"
    typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "project")
    assert data[0] == b"(1 (2 4)(5))"
    m.logout()


def test_thread_orderedsubject(box):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK"
    assert data[0] == b"(3 6)(1 (2)(5)(4))(7)"
    m.logout()


ABUSE = [
    ("SORT", b"BAD"),
    ("SORT () UTF-8 ALL", b"BAD"),
    ("SORT (DATE) ALL", b"NO"),           # charset missing: ALL is taken as one
    ("SORT (BOGUS) UTF-8 ALL", b"BAD"),
    ("SORT (REVERSE) UTF-8 ALL", b"BAD"),
    ("SORT (DATE) UTF-8", b"BAD"),
    ("SORT (DATE) KOI8-R ALL", b"NO"),
    ("SORT DATE UTF-8 ALL", b"BAD"),
    ("THREAD", b"BAD"),
    ("THREAD BOGUS UTF-8 ALL", b"BAD"),
    ("THREAD REFERENCES", b"BAD"),
    ("THREAD REFERENCES KOI8-R ALL", b"NO"),
    ("THREAD REFERENCES UTF-8 (", b"BAD"),
]


@pytest.mark.parametrize("cmd,want", ABUSE)
def test_abuse(box, cmd, want):
    srv, addr, pw = box
    m = login(srv, addr, pw)
    tag, out = raw_lines(m, cmd)
    assert out[-1].split(b" ")[1] == want, out
    assert sort(m, "(ARRIVAL)", "ALL") == [1, 2, 3, 4, 5, 6, 7]
    m.logout()
