"""Clients that read slowly must not hold the database from everyone else:
FETCH and LIST give their pooled connection back while their output waits
for the client (imap_db_lend()), and LIST stays fast on deep hierarchies."""
import imaplib
import socket
import time

from test_imap_common import account, deliver

POOL = 4


def big_message(size):
    line = "x" * 76 + "\r\n"
    body = line * (size // len(line))
    return "From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n\r\n" + body


def stalled_fetch(port, addr, pw, command):
    """Logs in, sends the command and never reads: the reply fills the
    socket buffers and the server's write waits."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.settimeout(20)
    s.recv(4096)  # greeting
    s.sendall(('a LOGIN "%s" "%s"\r\n' % (addr, pw)).encode())
    got = b""
    while b"a OK" not in got:
        got += s.recv(4096)
    s.sendall(b"b SELECT INBOX\r\n" + command + b"\r\n")
    return s


def test_slow_readers_leave_the_pool_to_others(fresh):
    r = fresh(extra={"database.pool_size": str(POOL)})
    r.start()
    addr, pw = account(r)
    deliver(r, addr, big_message(3 << 20))
    other, opw = account(r)
    deliver(r, other, big_message(10 << 10))
    stalled = [stalled_fetch(r.ports["imap"], addr, pw, b"c FETCH 1 BODY.PEEK[]")
               for _ in range(POOL + 2)]
    stalled += [stalled_fetch(r.ports["imap"], addr, pw, b'c LIST "" *') for _ in range(2)]
    time.sleep(2)  # every stalled session is now waiting on its client
    t0 = time.time()
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=30)
    m.login(other, opw)
    assert m.select("INBOX")[0] == "OK"
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and len(data[0][1]) > 10000
    assert m.list()[0] == "OK"
    m.logout()
    assert time.time() - t0 < 5, "another user waited for the stalled sessions"
    # The stalled readers still get every byte once they read.
    s = stalled[0]
    got = bytearray()
    while not got.endswith(b"c OK FETCH completed\r\n"):
        chunk = s.recv(1 << 16)
        assert chunk, "the stalled session was cut off"
        got += chunk
    assert got.count(b"x" * 76) == (3 << 20) // 78
    for s in stalled:
        s.close()
    assert "event=db_pool_timeout" not in r.log_text()
    r.stop()


def test_list_deep_hierarchy(server):
    addr, pw = account(server)
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=60)
    m.login(addr, pw)
    deep = "/".join(["a"] * 300)
    assert m.create(deep)[0] == "OK"
    assert m.subscribe(deep)[0] == "OK"
    t0 = time.time()
    typ, lines = m.list()
    assert typ == "OK"
    assert time.time() - t0 < 3
    names = [l.decode() for l in lines]
    assert sum(1 for l in names if '"a' in l) == 300
    assert all("\\HasChildren" in l for l in names if l.endswith('"a"') or '"a/' in l
               and not l.endswith('%s"' % deep))
    m.send(b'x1 LIST (SUBSCRIBED RECURSIVEMATCH) "" "a"\r\n')
    got = []
    while True:
        line = m.readline()
        if line.startswith(b"x1 "):
            break
        got.append(line)
    assert line.startswith(b"x1 OK")
    assert len(got) == 1 and b'("CHILDINFO" ("SUBSCRIBED"))' in got[0], got
    m.logout()
