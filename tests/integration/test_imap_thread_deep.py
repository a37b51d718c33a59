"""THREAD=REFERENCES (RFC 5256) on threads as deep as a mailbox: a chain of
30,000 replies, a thread whose branches nest 10,000 deep, References that
loop and a message that refers to itself. Each answer is checked whole, and
the server must keep serving (the algorithms must not recurse: a session
thread has a bounded stack)."""
import uuid

import pytest

from imap_helpers import account, claim_recent, crlf, deliver, login, raw_lines

CHAIN = 30000
COMB = 20000  # 10,000 branch points, each with a leaf and the next one


def template(tag):
    return crlf("From: a@example.org\nTo: b@example.org\nSubject: deep %s\n"
                "Date: Mon, 7 Feb 1994 21:52:25 -0800\nMessage-ID: <c1.%s@deep>\n\nbody\n"
                % (tag, tag))


def clone(srv, addr, tag, n, parent_sql):
    """Messages 2..n (UID g) cloned in SQL from the delivered message 1,
    each with Message-ID <cg.tag@deep>, In-Reply-To the message numbered
    parent_sql (an SQL expression of g), a Date g seconds after message 1.
    Blob keys are made up (the same bytes; nothing checks the hash)."""
    srv.psql("""
    DO $$
    DECLARE tid bigint; mbid bigint; tsha bytea; tsize bigint;
    BEGIN
      SELECT m.id INTO mbid FROM mailboxes m JOIN accounts a ON a.id = m.account_id
        WHERE a.address = '%(addr)s' AND m.name = 'INBOX';
      SELECT message_id INTO tid FROM mailbox_entries WHERE mailbox_id = mbid LIMIT 1;
      SELECT sha256, size INTO tsha, tsize FROM messages WHERE id = tid;
      INSERT INTO blobs (sha256, size, data)
        SELECT sha256(tsha || int8send(g)), b.size, b.data
        FROM blobs b, generate_series(2, %(n)d) g WHERE b.sha256 = tsha;
      INSERT INTO messages (sha256, size, header_size, sent_date, subject, from_addr, to_addr,
          message_id, in_reply_to, envelope, body, bodystructure, parts, headers, preview)
        SELECT sha256(tsha || int8send(g)), t.size, t.header_size,
               t.sent_date + g * interval '1 second', 'Re: ' || t.subject, t.from_addr,
               t.to_addr, '<c' || g || '.%(tag)s@deep>',
               '<c' || (%(parent)s) || '.%(tag)s@deep>', t.envelope, t.body,
               t.bodystructure, t.parts, t.headers, t.preview
        FROM messages t, generate_series(2, %(n)d) g
        WHERE t.id = tid;
      INSERT INTO message_search (message_id, headers, body)
        SELECT m.id, lower(m.headers), 'body'
        FROM generate_series(2, %(n)d) g
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, modseq, internaldate, size)
        SELECT mbid, g, m.id, 0, g + 1, now(), tsize
        FROM generate_series(2, %(n)d) g
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      UPDATE mailboxes SET uidnext = %(n)d + 1, highestmodseq = %(n)d + 2,
          messages = %(n)d, size_bytes = tsize * %(n)d WHERE id = mbid;
    END $$""" % {"addr": addr, "n": n, "tag": tag, "parent": parent_sql})
    claim_recent(srv, addr)


def big_thread(srv, n, parent_sql):
    addr, pw = account(srv)
    tag = uuid.uuid4().hex[:10]
    deliver(srv, addr, template(tag))
    clone(srv, addr, tag, n, parent_sql)
    return addr, pw


def thread(m, uid=False):
    typ, data = (m.uid("THREAD", "REFERENCES", "UTF-8", "ALL") if uid
                 else m.thread("REFERENCES", "UTF-8", "ALL"))
    assert typ == "OK"
    return data[0]


def test_chain_of_replies(server):
    addr, pw = big_thread(server, CHAIN, "g - 1")
    m = login(server, addr, pw)
    want = "(" + " ".join(str(i) for i in range(1, CHAIN + 1)) + ")"
    assert thread(m) == want.encode()
    assert thread(m, uid=True) == want.encode()
    assert m.noop()[0] == "OK"
    m.logout()


def test_deeply_nested_branches(server):
    # Odd g: the next branch point, replying to g - 2; even g: a leaf
    # replying to g - 1, dated before the next branch point.
    addr, pw = big_thread(server, COMB, "CASE WHEN g % 2 = 0 THEN g - 1 ELSE g - 2 END")
    m = login(server, addr, pw)
    want = "(" + "".join("%d (%d)(" % (i, i + 1) for i in range(1, COMB - 2, 2))
    want += "%d %d" % (COMB - 1, COMB) + ")" * (COMB // 2)
    assert thread(m) == want.encode()
    assert m.noop()[0] == "OK"
    m.logout()


def msg(mid, date, refs="", irt="", subject=None):
    extra = ("References: %s\n" % refs if refs else "") + \
            ("In-Reply-To: %s\n" % irt if irt else "")
    return crlf("From: a@example.org\nTo: b@example.org\nSubject: %s\n"
                "Date: Mon, 7 Feb 1994 21:52:%02d -0800\nMessage-ID: %s\n%s\nbody\n"
                % (subject or mid.strip("<>"), date, mid, extra))


@pytest.mark.parametrize("command", ["THREAD REFERENCES UTF-8 ALL",
                                     "UID THREAD REFERENCES UTF-8 ALL",
                                     "THREAD ORDEREDSUBJECT UTF-8 ALL"])
def test_reference_loops_and_self_reference(server, command):
    addr, pw = account(server)
    t = uuid.uuid4().hex[:8]
    a, b, s = "<a.%s@x>" % t, "<b.%s@x>" % t, "<s.%s@x>" % t
    deliver(server, addr, msg(a, 1, refs=b))             # A refers to B ...
    deliver(server, addr, msg(b, 2, refs=a))             # ... and B to A
    deliver(server, addr, msg(s, 3, refs=s, irt=s))      # S to itself
    deliver(server, addr, msg("<p.%s@x>" % t, 4, irt="<q.%s@x>" % t))  # P, Q: In-Reply-To
    deliver(server, addr, msg("<q.%s@x>" % t, 5, irt="<p.%s@x>" % t))
    claim_recent(server, addr)
    m = login(server, addr, pw)
    tag, out = raw_lines(m, command)
    assert out[-1].startswith(tag + b" OK"), out
    want = {"THREAD REFERENCES UTF-8 ALL": b"* THREAD (2 1)(3)(5 4)",
            "UID THREAD REFERENCES UTF-8 ALL": b"* THREAD (2 1)(3)(5 4)",
            "THREAD ORDEREDSUBJECT UTF-8 ALL": b"* THREAD (1)(2)(3)(4)(5)"}[command]
    assert out[0] == want
    assert m.noop()[0] == "OK"
    m.logout()
    m2 = login(server, addr, pw)
    assert m2.search(None, "ALL")[1][0] == b"1 2 3 4 5"
    m2.logout()
