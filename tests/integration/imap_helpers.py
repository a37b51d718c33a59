"""Shared helpers of the IMAP FETCH/SEARCH/SORT/THREAD/COMPRESS tests:
accounts with messages delivered by `roost deliver`, imaplib logins, and
the test messages (multipart, nested message/rfc822, base64, UTF-8)."""
import base64
import imaplib
import uuid

from test_imap_common import account, claim_recent, deliver  # noqa: F401  (re-exported)


def login(srv, addr, password, select="INBOX"):
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    m.login(addr, password)
    if select:
        typ, _ = m.select(select)
        assert typ == "OK"
    return m


def filled(srv, messages):
    addr, pw = account(srv)
    for msg in messages:
        deliver(srv, addr, msg)
    claim_recent(srv, addr)
    return addr, pw


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def simple(n, subject=None, date="Mon, 7 Feb 1994 21:52:25 -0800", frm="Alice <alice@example.org>",
           to="bob@example.org", extra="", body=None):
    subject = subject if subject is not None else "message %d" % n
    body = body if body is not None else "line one of %d\nline two\n" % n
    return crlf("From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <m%d-%s@example.org>\n%s\n%s"
                % (frm, to, subject, date, n, uuid.uuid4().hex[:8], extra, body))


ATTACHMENT = bytes(range(256)) * 3  # NUL bytes and 8-bit: needs literal8 in BINARY


def multipart():
    """1: text/plain QP UTF-8, 2: base64 attachment, 3: message/rfc822 whose
    body is multipart/alternative (3.1 text/plain, 3.2 text/html),
    4: x-unknown transfer encoding."""
    b64 = base64.encodebytes(ATTACHMENT).decode()
    return crlf(
        "From: =?UTF-8?B?SsO8cmdlbg==?= <juergen@example.org>\n"
        "To: team@example.org\n"
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report\n"
        "Date: Tue, 1 Mar 2022 10:00:00 +0000\n"
        "Message-ID: <mp-%s@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\n"
        "\n"
        "preamble\n"
        "--outer\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a searchable needle-word here.\n"
        "--outer\n"
        "Content-Type: application/octet-stream; name=\"data.bin\"\n"
        "Content-Disposition: attachment; filename=\"data.bin\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "%s"
        "--outer\n"
        "Content-Type: message/rfc822\n"
        "\n"
        "From: inner@example.org\n"
        "Subject: inner subject\n"
        "Content-Type: multipart/alternative; boundary=\"alt\"\n"
        "\n"
        "--alt\n"
        "Content-Type: text/plain\n"
        "\n"
        "inner plain\n"
        "--alt\n"
        "Content-Type: text/html\n"
        "\n"
        "<p>inner html</p>\n"
        "--alt--\n"
        "\n"
        "--outer\n"
        "Content-Type: text/plain\n"
        "Content-Transfer-Encoding: x-unknown\n"
        "\n"
        "opaque\n"
        "--outer--\n" % (uuid.uuid4().hex[:8], b64))


def raw_lines(m, cmd):
    """Sends cmd on an imaplib connection; returns (tag, every line up to
    and including the tagged one)."""
    tag = m._new_tag()
    m.send(tag + b" " + cmd.encode() + b"\r\n")
    out = []
    while True:
        line = m._get_line()
        out.append(line)
        if line.startswith(tag + b" "):
            return tag, out
