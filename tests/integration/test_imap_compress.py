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
