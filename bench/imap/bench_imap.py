#!/usr/bin/python3
"""bench/imap: IMAP over TLS (imaps) against a `roost serve` it starts itself
(managed PostgreSQL in a temporary directory, removed afterwards).

1. Large mailbox: an INBOX of --big messages (100,000) made directly in SQL
   from one delivered template (distinct message rows, each with its own
   words for SEARCH TEXT); times SELECT, UID FETCH 1:* (FLAGS),
   SEARCH TEXT of a rare word, a substring inside it, it in upper case,
   a word in 100 messages and a common word; SEARCH UNSEEN.
2. Mix: N concurrent logged-in TLS clients (--clients 10,100) each looping
   SELECT, FETCH 1:* (UID FLAGS), FETCH headers of 50, FETCH one full
   message, SEARCH, STORE, APPEND, EXPUNGE, IDLE for --seconds; prints
   operations/s, p50/p99 latency per command and the server's peak RSS.
3. Memory: RSS added per idle logged-in TLS connection (--idle 1000).

    /usr/bin/python3 bench/imap/bench_imap.py --roost build-release/roost

Not part of the test run; figures are printed, never asserted."""
import argparse
import imaplib
import os
import random
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from conftest import Roost  # noqa: E402  (the integration harness)

PASSWORD = "bench-pass-1"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(i, size=4000):
    rnd = random.Random(i)
    body, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(10))
        body.append(line)
        n += len(line) + 2
    head = ["From: Bench <bench@example.org>", "To: user@bench.test", "Subject: bench %d" % i,
            "Date: Mon, 1 Jan 2024 10:00:00 +0000", "Message-ID: <bench-%d@example.org>" % i, ""]
    return "\r\n".join(head + body) + "\r\n"


def account(srv, name):
    srv.cli("user", "add", "%s@bench.test" % name, input=PASSWORD + "\n", check=True)
    return "%s@bench.test" % name


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def connect(srv, addr):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=tls_ctx(), timeout=600)
    m.login(addr, PASSWORD)
    return m


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, (time.monotonic() - t0) * 1000


def raw_cmd(m, cmd):
    """Sends cmd and reads the answer as raw bytes up to the tagged line,
    so the time is the server's, not imaplib's parsing."""
    tag = m._new_tag()
    m.send(tag + b" " + cmd.encode() + b"\r\n")
    data = b""
    needle = b"\r\n" + tag + b" "
    while needle not in data[-65536:] or not data.endswith(b"\r\n"):
        chunk = m.sock.recv(1 << 20)
        if not chunk:
            raise EOFError
        data += chunk
    return data


def make_big(srv, addr, n):
    """n entries with distinct message rows cloned from one template: every
    row gets its own words ("rareNNN" in one message in 1000, the common
    words in all) so SEARCH TEXT has real work."""
    srv.cli("deliver", addr, input=message(0), check=True)
    # Each clone gets its own blob key (the same bytes; nothing checks the
    # hash), message row and words, then one entry.
    srv.psql("""
    DO $$
    DECLARE tid bigint; mbid bigint; tsha bytea; tsize bigint; hs bigint; ttxt text;
    BEGIN
      SELECT m.id INTO mbid FROM mailboxes m JOIN accounts a ON a.id = m.account_id
        WHERE a.address = '%(addr)s' AND m.name = 'INBOX';
      SELECT message_id INTO tid FROM mailbox_entries WHERE mailbox_id = mbid LIMIT 1;
      SELECT sha256, size INTO tsha, tsize FROM messages WHERE id = tid;
      INSERT INTO blobs (sha256, size, data)
        SELECT sha256(tsha || int8send(g)), b.size, b.data
        FROM blobs b, generate_series(2, %(n)d) g WHERE b.sha256 = tsha;
      SELECT coalesce((SELECT body FROM message_search WHERE message_id = tid),
                      (SELECT body FROM search_pending WHERE message_id = tid)) INTO ttxt;
      INSERT INTO messages (sha256, size, header_size, sent_date, subject, from_addr, to_addr,
          envelope, body, bodystructure, parts, headers, preview)
        SELECT sha256(tsha || int8send(g)), t.size, t.header_size, t.sent_date, 'bench ' || g,
               t.from_addr, t.to_addr, t.envelope, t.body, t.bodystructure, t.parts, t.headers,
               t.preview
        FROM messages t, generate_series(2, %(n)d) g
        WHERE t.id = tid;
      -- As the indexer files them (db/indexer.c).
      INSERT INTO message_search (message_id, headers, body)
        SELECT m.id, lower(m.headers), lower('bench ' || g || ' ' || ttxt || ' rare' || (g %% 1000))
        FROM generate_series(2, %(n)d) g
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, modseq, internaldate, size)
        SELECT mbid, g, m.id, CASE WHEN g %% 3 = 0 THEN 0 ELSE 1 END, g + 1, now(), tsize
        FROM generate_series(2, %(n)d) g
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      UPDATE mailboxes SET uidnext = %(n)d + 1, highestmodseq = %(n)d + 2,
          messages = %(n)d, size_bytes = tsize * %(n)d WHERE id = mbid;
    END $$""" % {"addr": addr, "n": n})
    srv.psql("ANALYZE")


def bench_big(srv, n):
    addr = account(srv, "big")
    t0 = time.monotonic()
    make_big(srv, addr, n)
    print("big mailbox: %d messages made in %.1f s" % (n, time.monotonic() - t0))
    m = connect(srv, addr)
    for rnd in range(3):
        data, ms = timed(lambda: raw_cmd(m, "SELECT INBOX"))
        print("  SELECT (%s)                  %8.1f ms   (%s)" %
              ("cold" if rnd == 0 else "warm", ms, re.search(rb"\d+ EXISTS", data).group(0).decode()))
    for rnd in range(2):
        data, ms = timed(lambda: raw_cmd(m, "UID FETCH 1:* (FLAGS)"))
        print("  UID FETCH 1:* (FLAGS)          %8.1f ms   (%d responses, %d KB)" %
              (ms, data.count(b"FETCH ("), len(data) // 1024))
    for word in ["rare7", "are7", "RARE7", "rare777", "bench"]:
        for rnd in range(2):
            data, ms = timed(lambda: raw_cmd(m, "SEARCH TEXT " + word))
            print("  SEARCH TEXT %-8s            %8.1f ms   (%d found)" %
                  (word, ms, len(data.split(b"\r\n")[0].split()) - 2))
    data, ms = timed(lambda: raw_cmd(m, "SEARCH UNSEEN"))
    print("  SEARCH UNSEEN                  %8.1f ms   (%d found)" %
          (ms, len(data.split(b"\r\n")[0].split()) - 2))
    data, ms = timed(lambda: raw_cmd(m, "FETCH %d:%d (BODY.PEEK[HEADER.FIELDS "
                                        "(FROM TO SUBJECT DATE)])" % (n - 49, n)))
    print("  FETCH 50 headers               %8.1f ms" % ms)
    m.logout()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {}

    def add(self, name, ms):
        with self.lock:
            self.lat.setdefault(name, []).append(ms)


def mix_client(srv, addr, stats, until, seed):
    rnd = random.Random(seed)
    m = connect(srv, addr)
    appended = message(10000 + seed)
    last = [None]

    def append():
        typ, data = m.append("INBOX", None, None, appended.encode())
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0])
        last[0] = found.group(1).decode() if found else None

    def expunge():
        if last[0] is not None:
            m.uid("STORE", last[0], "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()

    while time.monotonic() < until:
        steps = [
            ("SELECT", lambda: m.select("INBOX")),
            ("FETCH 1:* (UID FLAGS)", lambda: m.fetch("1:*", "(UID FLAGS)")),
            ("FETCH 50 headers", lambda: m.fetch("1:50", "(UID BODY.PEEK[HEADER.FIELDS "
                                                 "(FROM TO SUBJECT DATE MESSAGE-ID)])")),
            ("FETCH full", lambda: m.fetch(str(rnd.randint(1, 100)), "(BODY.PEEK[])")),
            ("SEARCH", lambda: m.search(None, "TEXT", rnd.choice(WORDS))),
            ("STORE", lambda: m.store(str(rnd.randint(1, 100)), "+FLAGS", "(\\Flagged)")),
            ("APPEND", append),
            ("EXPUNGE", expunge),
        ]
        for name, fn in steps:
            _, ms = timed(fn)
            stats.add(name, ms)
        t0 = time.monotonic()
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        m._get_line()
        m.send(b"DONE\r\n")
        while not m._get_line().startswith(tag):
            pass
        stats.add("IDLE+DONE", (time.monotonic() - t0) * 1000)
    m.logout()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def bench_mix(srv, clients, seconds, pid):
    accounts = max(1, clients // 10)
    addrs = [account(srv, "mix%d-%d" % (clients, i)) for i in range(accounts)]
    for a in addrs:
        for i in range(100):
            srv.cli("deliver", a, input=message(i), check=True)
    stats = Stats()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=mix_client, args=(srv, addrs[i % accounts], stats, until, i))
               for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    print("mix: %d clients on %d accounts for %.0f s (peak RSS %d MB)" %
          (clients, accounts, wall, rss_kb(pid, "VmHWM") // 1024))
    for name, v in stats.lat.items():
        print("  %-22s %8.1f ops/s   p50 %7.1f ms   p99 %7.1f ms" %
              (name, len(v) / wall, pct(v, 50), pct(v, 99)))


def bench_idle(srv, n, pid):
    addr = account(srv, "idle")
    base = rss_kb(pid)
    conns = []
    for _ in range(n):
        conns.append(connect(srv, addr))
    time.sleep(1)
    after = rss_kb(pid)
    print("idle: %d logged-in TLS connections add %.1f KB RSS each (%d -> %d MB)" %
          (n, (after - base) / n, base // 1024, after // 1024))
    for c in conns:
        c.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roost", required=True)
    ap.add_argument("--big", type=int, default=100000)
    ap.add_argument("--clients", default="10,100")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--idle", type=int, default=1000)
    args = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import conftest
    conftest.ROOST_BIN = os.path.abspath(args.roost)
    base = tempfile.mkdtemp(prefix="roost-bench-imap-")
    os.chmod(base, 0o755)
    n_conn = max(args.idle, max(int(c) for c in args.clients.split(","))) + 100
    srv = Roost(base, "bench", extra={"limits.connections": str(n_conn + 100),
                                      "limits.connections_per_ip": str(n_conn + 100)})
    try:
        srv.start()
        srv.cli("domain", "add", "bench.test", check=True)
        pid = srv.proc.pid
        if args.big > 0:
            bench_big(srv, args.big)
        for c in args.clients.split(","):
            if int(c) > 0:
                bench_mix(srv, int(c), args.seconds, pid)
        if args.idle > 0:
            bench_idle(srv, args.idle, pid)
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
