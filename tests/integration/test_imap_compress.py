"""IMAP COMPRESS=DEFLATE (RFC 4978) with real raw deflate (zlib, wbits -15)
both ways: commands, large FETCH literals, a literal sent by the client,
IDLE-free pipelining, a second COMPRESS, and corrupt compressed input."""
import re
import socket
import zlib

import pytest

from imap_helpers import filled, simple


class Deflated:
    def __init__(self, srv, addr, pw):
        self.s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=30)
        self.buf = b""
        self.z = None
        self.n = 0
        self.line()
        assert self.cmd('LOGIN "%s" "%s"' % (addr, pw))[-1].startswith(b"a1 OK")

    def recv(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += self.z[1].decompress(chunk) if self.z else chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, n):
        while len(self.buf) < n:
            self.recv()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data):
        self.sent = getattr(self, "sent", 0) + len(data)
        if self.z:
            data = self.z[0].compress(data) + self.z[0].flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"a%d" % self.n
        if literal is None:
            self.send(tag + b" " + text.encode() + b"\r\n")
        else:
            self.send(tag + b" " + text.encode() + b" {%d}\r\n" % len(literal))
            assert self.line().startswith(b"+")
            self.send(literal + b"\r\n")
        out = []
        while True:
            line = self.line()
            out.append(line)
            m = re.search(rb"~?\{(\d+)\}$", line)
            if m:
                out.append(self.read(int(m.group(1))))
            elif line.startswith(tag + b" "):
                return out

    def compress(self):
        out = self.cmd("COMPRESS DEFLATE")
        assert out[-1] == b"a%d OK DEFLATE active" % self.n
        assert self.buf == b""
        self.z = (zlib.compressobj(wbits=-15), zlib.decompressobj(wbits=-15))


BIG = "big line of text that compresses well\n" * 20000


@pytest.fixture(scope="module")
def box(server):
    return (server,) + filled(server, [simple(1), simple(2, body=BIG)])


def test_capability_and_commands(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    assert b"COMPRESS=DEFLATE" in c.cmd("CAPABILITY")[0]
    c.compress()
    caps = c.cmd("CAPABILITY")
    assert caps[0].startswith(b"* CAPABILITY") and b"COMPRESS=DEFLATE" not in caps[0]
    out = c.cmd("SELECT INBOX")
    assert out[-1].startswith(b"a%d OK" % c.n)
    out = c.cmd("FETCH 2 (BODY.PEEK[TEXT])")
    assert out[1] == BIG.replace("\n", "\r\n").encode()
    out = c.cmd("COMPRESS DEFLATE")
    assert out[-1] == b"a%d NO [COMPRESSIONACTIVE] Compression is already active" % c.n
    out = c.cmd("APPEND INBOX", literal=simple(9).encode())
    assert out[-1].startswith(b"a%d OK" % c.n)
    out = c.cmd("UID SEARCH SUBJECT \"message 9\"")
    assert re.match(rb"\* SEARCH \d+$", out[0])
    assert c.cmd("LOGOUT")[0].startswith(b"* BYE")


def test_pipelined_commands(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    c.send(b"p1 NOOP\r\np2 SELECT INBOX\r\np3 FETCH 1 (UID)\r\n")
    seen = []
    while not (seen and seen[-1].startswith(b"p3 ")):
        seen.append(c.line())
    assert b"* 1 FETCH (UID 1)" in seen
    assert [x.split()[1] for x in seen if x[:2] in (b"p1", b"p2", b"p3")] == [b"OK"] * 3


def test_bad_mechanism(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    assert c.cmd("COMPRESS LZW")[-1].startswith(b"a2 BAD")
    assert c.cmd("COMPRESS")[-1].startswith(b"a3 BAD")
    assert c.cmd("NOOP")[-1].startswith(b"a4 OK")  # still uncompressed


def test_corrupt_stream_closes_only_that_session(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    c.s.sendall(b"\xff\xff\xff\xff garbage that is not deflate\r\n")
    with pytest.raises((EOFError, ConnectionResetError, zlib.error, socket.timeout)):
        while True:
            c.line()
    d = Deflated(srv, addr, pw)
    assert d.cmd("NOOP")[-1].startswith(b"a2 OK")


def test_idle_through_compression(box):
    from imap_helpers import deliver
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    c.cmd("SELECT INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.line().startswith(b"+")
    deliver(srv, addr, simple(50))
    line = c.line()
    while not line.endswith(b"EXISTS"):
        line = c.line()
    c.send(b"DONE\r\n")
    while not line.startswith(b"i1 "):
        line = c.line()
    assert line.startswith(b"i1 OK")


# ---- Idle sessions give back zlib's state (cmd-compress.c): after a
# second without a command, or in IDLE, the server ends its deflater and,
# between the client's blocks, its inflater, keeping only the window
# (packed). The client's stream must still decode across all of it,
# including back-references into text sent before the server let go.

HEADER_FETCH = ("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
                "(From To Cc Subject Date Message-ID References In-Reply-To Content-Type)])")
SETTLE = 1.5  # past DEFLATE_IDLE_AFTER_MS


def idle_round(c, linger=0, deliver_to=None):
    """IDLE for linger seconds, then maybe a delivery seen as EXISTS, then
    DONE; returns the EXISTS count."""
    import time
    c.n += 1
    tag = b"a%d" % c.n
    c.send(tag + b" IDLE\r\n")
    assert c.line().startswith(b"+ ")
    time.sleep(linger)
    exists = None
    if deliver_to is not None:
        from imap_helpers import deliver
        deliver(*deliver_to)
        line = c.line()
        while not line.endswith(b" EXISTS"):
            line = c.line()
        exists = int(line.split()[1])
    c.send(b"DONE\r\n")
    line = c.line()
    while not line.startswith(tag + b" "):
        line = c.line()
    assert line == tag + b" OK IDLE terminated"
    return exists


def test_long_session_idles_and_resumes(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    out = c.cmd("SELECT INBOX")
    count = int([x for x in out if x.endswith(b" EXISTS")][0].split()[1])
    for i in range(30):
        # The same long command again and again: the client's deflater
        # sends it as references into what it sent before the last idle.
        out = c.cmd(HEADER_FETCH)
        assert out[-1] == b"a%d OK UID FETCH completed" % c.n, out[-1]
        assert sum(1 for x in out if re.match(rb"\* \d+ FETCH \(UID \d+ FLAGS", x)) >= count
        long_idle = i % 6 == 5
        deliver_to = (srv, addr, simple(100 + i)) if i % 4 == 1 else None
        n = idle_round(c, SETTLE if long_idle else 0, deliver_to)
        count = n if n is not None else count
        out = c.cmd("FETCH 2 (BODY.PEEK[TEXT])")
        assert out[1] == BIG.replace("\n", "\r\n").encode()
        # Some unique text too, so the client's window keeps moving.
        words = " ".join("w%x" % (i * 1000 + k * 7) for k in range(400))
        out = c.cmd('UID SEARCH SUBJECT "no such subject %d %s"' % (i, words))
        assert out == [b"* SEARCH", b"a%d OK UID SEARCH completed" % c.n]
    assert c.sent > 2 * 32768  # well past the window the server must keep
    assert c.cmd("LOGOUT")[0].startswith(b"* BYE")


def test_history_survives_long_waits(box):
    """Waits past the point where the server goes idle: between commands,
    in IDLE, and in IDLE woken by a delivery."""
    import time
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    c.cmd("SELECT INBOX")
    for _ in range(20):
        c.cmd(HEADER_FETCH)  # > 1 KB of history: worth packing
    time.sleep(SETTLE)
    out = c.cmd(HEADER_FETCH)
    assert out[-1] == b"a%d OK UID FETCH completed" % c.n
    idle_round(c, SETTLE, deliver_to=(srv, addr, simple(300)))
    idle_round(c, SETTLE)
    out = c.cmd(HEADER_FETCH)
    assert out[-1] == b"a%d OK UID FETCH completed" % c.n
    time.sleep(SETTLE)
    out = c.cmd("FETCH 2 (BODY.PEEK[TEXT])")
    assert out[1] == BIG.replace("\n", "\r\n").encode()


def test_client_flushes_off_byte_boundary(box):
    """Z_PARTIAL_FLUSH leaves the client's stream mid-byte: the server must
    keep its inflater as it is, and still answer every command."""
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()

    def send(data):
        c.s.sendall(c.z[0].compress(data) + c.z[0].flush(zlib.Z_PARTIAL_FLUSH))
    c.send = send
    c.cmd("SELECT INBOX")
    for i in range(6):
        assert c.cmd(HEADER_FETCH)[-1] == b"a%d OK UID FETCH completed" % c.n
        idle_round(c, SETTLE if i % 3 == 2 else 0)
        assert c.cmd("NOOP")[-1] == b"a%d OK NOOP completed" % c.n


def read_to_eof(c):
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError):
        return lines


@pytest.mark.parametrize("when", ["at once", "after commands", "after a wait"])
def test_garbage_gets_bye(box, when):
    import time
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    if when != "at once":
        c.cmd("SELECT INBOX")
        for _ in range(10):
            c.cmd(HEADER_FETCH)
    if when == "after a wait":
        time.sleep(SETTLE)
    c.s.sendall(b"\xff\xfe\xfd\xfc garbage that is not deflate\r\n" * 3)
    assert read_to_eof(c) == [b"* BYE [ALERT] Invalid compressed data"]
    d = Deflated(srv, addr, pw)
    d.compress()
    assert d.cmd("NOOP")[-1] == b"a3 OK NOOP completed"


def test_data_after_final_block_gets_bye(box):
    srv, addr, pw = box
    c = Deflated(srv, addr, pw)
    c.compress()
    c.s.sendall(c.z[0].compress(b"f1 NOOP\r\n") + c.z[0].flush(zlib.Z_FINISH))
    assert c.line() == b"f1 OK NOOP completed"
    c.s.sendall(b"more bytes after the end of the stream\r\n")
    assert read_to_eof(c) == [b"* BYE [ALERT] Invalid compressed data"]
    d = Deflated(srv, addr, pw)
    assert d.cmd("NOOP")[-1] == b"a2 OK NOOP completed"
