"""IMAP FETCH and UID FETCH (RFC 3501/9051 6.4.5, RFC 3516 BINARY, RFC 7162
CHANGEDSINCE/VANISHED, RFC 8970 PREVIEW) with imaplib and raw lines, on
messages delivered by `roost deliver`: exact sections, partials, literal8,
nested message/rfc822 parts, implicit \\Seen, and malformed requests."""
import re
import socket

import pytest

from imap_helpers import ATTACHMENT, account, crlf, deliver, filled, login, multipart, simple


class Lines:
    """A raw IMAP client that keeps literals: each response is a list of
    byte strings (line pieces and literal contents)."""

    def __init__(self, srv, addr, pw):
        self.s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=30)
        self.buf = b""
        self.n = 0
        self.line()
        assert self.cmd('LOGIN "%s" "%s"' % (addr, pw))[-1][0].startswith(b"a1 OK")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        parts = []
        while True:
            line = self.line()
            parts.append(line)
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                return parts
            parts.append(self.read(int(m.group(1))))

    def cmd(self, text):
        self.n += 1
        tag = b"a%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            r = self.response()
            out.append(r)
            if r[0].startswith(tag + b" "):
                return out

    def close(self):
        self.s.close()


MP = multipart()
S1 = simple(1)


@pytest.fixture(scope="module")
def box(server):
    addr, pw = filled(server, [S1, MP, simple(3, body="x" * 3000 + "\n")])
    return server, addr, pw


def raw(box):
    srv, addr, pw = box
    c = Lines(srv, addr, pw)
    assert c.cmd("EXAMINE INBOX")[-1][0].split()[1] == b"OK"
    return c


def literal_of(resp, name):
    """The literal following item `name` in a FETCH response."""
    for i, piece in enumerate(resp):
        if re.search(re.escape(name.encode()) + rb" ~?\{\d+\}$", piece):
            return resp[i + 1]
    raise AssertionError("%s not in %r" % (name, resp))


def test_simple_items(box):
    c = raw(box)
    r = c.cmd("FETCH 1 (FLAGS UID RFC822.SIZE INTERNALDATE)")
    m = re.match(rb'\* 1 FETCH \(FLAGS \(\) UID 1 RFC822.SIZE (\d+) '
                 rb'INTERNALDATE "(\d\d| \d)-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"\)$', r[0][0])
    assert m, r
    assert int(m.group(1)) == len(simple(1).encode()) or int(m.group(1)) > 100
    assert r[-1][0].endswith(b"OK FETCH completed")
    c.close()


def test_macros(box):
    c = raw(box)
    fast = c.cmd("FETCH 1 FAST")[0][0]
    assert re.match(rb"\* 1 FETCH \(FLAGS \(\) INTERNALDATE \"[^\"]+\" RFC822.SIZE \d+\)$", fast)
    full = c.cmd("FETCH 1 FULL")[0][0]
    assert b"ENVELOPE (" in full and b" BODY (" in full and b"BODYSTRUCTURE" not in full
    allm = c.cmd("FETCH 1 ALL")[0][0]
    assert b"ENVELOPE (" in allm and b" BODY (" not in allm
    c.close()


def test_envelope_and_bodystructure_simple(box):
    c = raw(box)
    r = c.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE)")[0][0]
    assert r.startswith(b'* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 1" '
                        b'(("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) '
                        b'(("Alice" NIL "alice" "example.org")) ((NIL NIL "bob" "example.org")) '
                        b'NIL NIL NIL "<m1-')
    body = S1.split("\r\n\r\n", 1)[1].encode()
    # RFC 3501 7.4.2: type, subtype, params, id, description, encoding,
    # size, lines, then MD5, disposition, language, location.
    want = ('BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d '
            'NIL NIL NIL NIL))' % (len(body), body.count(b"\n"))).encode()
    assert r.lower().endswith(want.lower()), r
    c.close()


def test_bodystructure_multipart_nested(box):
    c = raw(box)
    r = c.cmd("FETCH 2 (BODY BODYSTRUCTURE)")[0][0].lower()
    assert r.startswith(b'* 2 fetch (body (("text" "plain" ("charset" "utf-8") nil nil '
                        b'"quoted-printable" 61 1)')
    assert b'"mixed" ("boundary" "outer") nil nil nil)' in r  # BODYSTRUCTURE extension data
    assert b'("message" "rfc822" nil nil nil "7bit" ' in r
    assert b'"alternative"' in r and b'"inner subject"' in r
    assert b'("attachment" ("filename" "data.bin"))' in r
    c.close()


def test_sections(box):
    c = raw(box)
    msg = MP.encode()
    header, text = msg.split(b"\r\n\r\n", 1)
    r = c.cmd("FETCH 2 (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] RFC822.SIZE)")[0]
    assert literal_of(r, "BODY[]") == msg
    assert literal_of(r, "BODY[HEADER]") == header + b"\r\n\r\n"
    assert literal_of(r, "BODY[TEXT]") == text
    r = c.cmd("FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[3] BODY.PEEK[3.HEADER] "
              "BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[3.2] BODY.PEEK[3.2.MIME])")[0]
    assert literal_of(r, "BODY[1]") == b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a searchable needle-word here."
    assert literal_of(r, "BODY[1.MIME]") == (b"Content-Type: text/plain; charset=utf-8\r\n"
                                             b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    assert literal_of(r, "BODY[3]").startswith(b"From: inner@example.org\r\n")
    assert literal_of(r, "BODY[3.HEADER]") == (
        b"From: inner@example.org\r\nSubject: inner subject\r\n"
        b"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n")
    assert literal_of(r, "BODY[3.TEXT]").startswith(b"--alt\r\n")
    assert literal_of(r, "BODY[3.1]") == b"inner plain"
    assert literal_of(r, "BODY[3.2]") == b"<p>inner html</p>"
    assert literal_of(r, "BODY[3.2.MIME]") == b"Content-Type: text/html\r\n\r\n"
    c.close()


def test_missing_part_is_nil(box):
    c = raw(box)
    r = c.cmd("FETCH 2 (BODY.PEEK[9] BODY.PEEK[1.HEADER])")
    assert r[0][0] == b"* 2 FETCH (BODY[9] NIL BODY[1.HEADER] NIL)"
    c.close()


def test_header_fields(box):
    c = raw(box)
    r = c.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject FROM x-none)])")[0]
    assert r[0] == b"* 2 FETCH (BODY[HEADER.FIELDS (Subject FROM x-none)] {101}"
    assert r[1] == (b"From: =?UTF-8?B?SsO8cmdlbg==?= <juergen@example.org>\r\n"
                    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report\r\n\r\n")
    r = c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date Message-ID)])")[0]
    assert r[1] == b"\r\n"
    r = c.cmd("FETCH 2 (BODY.PEEK[3.HEADER.FIELDS (subject)])")[0]
    assert r[1] == b"Subject: inner subject\r\n\r\n"
    c.close()


def test_partial(box):
    c = raw(box)
    r = c.cmd("FETCH 3 (BODY.PEEK[TEXT]<0.10> BODY.PEEK[TEXT]<2995.100> BODY.PEEK[TEXT]<99999.5>)")[0]
    assert literal_of(r, "BODY[TEXT]<0>") == b"x" * 10
    assert literal_of(r, "BODY[TEXT]<2995>") == b"xxxxx\r\n"
    assert literal_of(r, "BODY[TEXT]<99999>") == b""
    c.close()


def test_binary(box):
    c = raw(box)
    r = c.cmd("FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] BINARY.PEEK[2]<256.4>)")[0]
    assert re.search(rb"BINARY\[2\] ~\{768\}$", r[0])  # NULs: literal8
    assert r[1] == ATTACHMENT
    joined = b"".join(p for p in r if not p.startswith(b"\x00"))
    assert b"BINARY.SIZE[2] 768" in joined
    assert literal_of(r, "BINARY[1]") == "Grüße aus Köln, a searchable needle-word here.".encode()
    assert literal_of(r, "BINARY[2]<256>") == b"\x00\x01\x02\x03"
    r = c.cmd("FETCH 2 (BINARY.PEEK[4])")
    assert r[-1][0].split(b" ", 2)[1:] == [b"NO", b"[UNKNOWN-CTE] Unknown content transfer encoding"]
    c.close()


def test_implicit_seen(server):
    addr, pw = filled(server, [simple(1), simple(2)])
    c = Lines(server, addr, pw)
    c.cmd("EXAMINE INBOX")
    r = c.cmd("FETCH 1 (BODY[TEXT])")[0]
    assert r[-1] == b")" and b"FLAGS" not in b"".join(r[:1] + r[2:])  # EXAMINE: no \Seen
    c.cmd("SELECT INBOX")
    r = c.cmd("FETCH 1 (BODY.PEEK[TEXT])")[0]
    assert b"FLAGS" not in r[-1]
    r = c.cmd("FETCH 1 (BODY[TEXT])")[0]
    assert r[-1] == b" FLAGS (\\Seen))"
    r = c.cmd("FETCH 1 (FLAGS RFC822)")[0]
    assert r[0].startswith(b"* 1 FETCH (FLAGS (\\Seen) RFC822 {")
    assert r[-1] == b")"  # already seen: no second FLAGS
    r = c.cmd("FETCH 2 (BINARY[1])")[0]
    assert r[-1] == b" FLAGS (\\Seen))"
    r = c.cmd("FETCH 1:2 (FLAGS)")
    assert [x[0] for x in r[:-1]] == [b"* 1 FETCH (FLAGS (\\Seen))", b"* 2 FETCH (FLAGS (\\Seen))"]
    c.close()


def test_uid_fetch_many(server):
    addr, pw = filled(server, [simple(i) for i in range(1, 31)])
    m = login(server, addr, pw)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK" and len(data) == 30
    assert data[0] == b"1 (UID 1 FLAGS ())" and data[29] == b"30 (UID 30 FLAGS ())"
    typ, data = m.uid("FETCH", "5:7,29:*", "(UID RFC822.SIZE)")
    assert [d.split()[0] for d in data] == [b"5", b"6", b"7", b"29", b"30"]
    typ, data = m.uid("FETCH", "100:200", "(FLAGS)")  # * is 30: 100:200 names 30:... no, none
    assert typ == "OK"
    typ, data = m.fetch("1:30", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) == 30
    assert data[0][1] == b"Subject: message 1\r\n\r\n"
    m.logout()


def test_condstore_changedsince(server):
    addr, pw = filled(server, [simple(1), simple(2), simple(3)])
    c = Lines(server, addr, pw)
    c.cmd("SELECT INBOX")
    r = c.cmd("FETCH 1:* (MODSEQ)")
    seqs = [int(re.search(rb"MODSEQ \((\d+)\)", x[0]).group(1)) for x in r[:-1]]
    assert len(seqs) == 3
    c.cmd("STORE 2 +FLAGS (\\Flagged)")
    r = c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % max(seqs))
    assert len(r) == 2 and r[0][0].startswith(b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (")
    r = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % max(seqs))
    assert r[0][0].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (")
    assert c.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 0)")[-1][0].startswith(b"a%d BAD" % c.n)
    assert c.cmd("FETCH 1 (FLAGS) (VANISHED)")[-1][0].startswith(b"a%d BAD" % c.n)
    c.close()


def test_qresync_vanished(server):
    addr, pw = filled(server, [simple(1), simple(2), simple(3), simple(4)])
    c = Lines(server, addr, pw)
    assert c.cmd("ENABLE QRESYNC")[-1][0].startswith(b"a2 OK")
    c.cmd("SELECT INBOX")
    ms = int(re.search(rb"MODSEQ \((\d+)\)", c.cmd("FETCH 4 (MODSEQ)")[0][0]).group(1))
    c.cmd("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    c.cmd("EXPUNGE")
    r = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % ms)
    assert r[0][0] == b"* VANISHED (EARLIER) 2:3"
    assert r[-1][0].startswith(b"a%d OK" % c.n)
    assert c.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1][0].startswith(b"a%d BAD" % c.n)
    c.close()


def test_preview(box):
    c = raw(box)
    r = c.cmd("FETCH 1 (PREVIEW)")[0][0]
    assert r == b'* 1 FETCH (PREVIEW "line one of 1 line two")'
    r = c.cmd("FETCH 1 (UID PREVIEW (LAZY) FLAGS)")[0][0]
    assert r == b'* 1 FETCH (UID 1 PREVIEW "line one of 1 line two" FLAGS ())'
    assert c.cmd("FETCH 1 (PREVIEW (EAGER))")[-1][0].split()[1] == b"BAD"
    # Alone, without the list's parentheses, the modifier still belongs to
    # PREVIEW; another list there is the FETCH modifiers.
    r = c.cmd("FETCH 1 PREVIEW (LAZY)")
    assert r[0][0] == b'* 1 FETCH (PREVIEW "line one of 1 line two")'
    assert r[-1][0].split()[1] == b"OK"
    r = c.cmd("FETCH 1 PREVIEW (CHANGEDSINCE 1)")
    assert r[-1][0].split()[1] == b"OK" and b"PREVIEW" in r[0][0] and b"MODSEQ" in r[0][0]
    assert c.cmd("FETCH 1 PREVIEW (LAZYX)")[-1][0].split()[1] == b"BAD"
    c.close()


def test_utf8_and_8bit_headers(server):
    addr, pw = account(server)
    deliver(server, addr, crlf("From: Zoë <zoe@example.org>\nTo: x@example.org\n"
                               "Subject: Ünïcödé ✓\n\nbody\n"))
    c = Lines(server, addr, pw)
    c.cmd("EXAMINE INBOX")
    r = c.cmd("FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0]
    assert r[-1].endswith(b")") and r[-2 if len(r) > 2 else -1]
    assert "Subject: Ünïcödé ✓\r\n\r\n".encode() in r
    c.close()


ABUSE = [
    ("FETCH", b"BAD"),
    ("FETCH 1", b"BAD"),
    ("FETCH 1 ()", b"BAD"),
    ("FETCH 1 (FLAGS", b"BAD"),
    ("FETCH 1 (BODY[)", b"BAD"),
    ("FETCH 1 (BODY[0])", b"BAD"),
    ("FETCH 1 (BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26])", b"BAD"),
    ("FETCH 1 (BODY[TEXT]<4294967296999999999999.1>)", b"BAD"),
    ("FETCH 1 (BODY[HEADER.FIELDS ()])", b"BAD"),
    ("FETCH 1 (" + "FLAGS " * 200 + "UID)", b"BAD"),
    ("FETCH 0 FLAGS", b"BAD"),
    ("FETCH 99 FLAGS", b"BAD"),
    ("FETCH 1:4294967296 FLAGS", b"BAD"),
    ("FETCH * (BINARY[HEADER])", b"BAD"),
    ("FETCH 1 FLAGS (CHANGEDSINCE x)", b"BAD"),
    ("FETCH 1 FLAGS (UNKNOWN)", b"BAD"),
    ("FETCH 1 (BODY[" + "A" * 5000 + "])", b"BAD"),
]


@pytest.mark.parametrize("cmd,want", ABUSE)
def test_abuse(box, cmd, want):
    c = raw(box)
    r = c.cmd(cmd)
    assert r[-1][0].split(b" ")[1] == want, r
    # Still serving.
    assert c.cmd("FETCH 1 (UID)")[0][0] == b"* 1 FETCH (UID 1)"
    c.close()
