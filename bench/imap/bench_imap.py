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
import asyncio
import concurrent.futures
import imaplib
import multiprocessing
import os
import random
import re
import resource
import shutil
import ssl
import subprocess
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
    so the time is the server's, not imaplib's parsing. The bytes gather in
    one bytearray: `data += chunk` on bytes copied the whole answer again
    for every TLS record (16 KB), 4 MB of FETCH took the client 300-700 ms
    the first time and was taken for the server's time."""
    tag = m._new_tag()
    m.send(tag + b" " + cmd.encode() + b"\r\n")
    data = bytearray()
    chunk = bytearray(1 << 20)
    needle = b"\r\n" + tag + b" "
    while needle not in data[-65536:] or not data.endswith(b"\r\n"):
        n = m.sock.recv_into(chunk)
        if not n:
            raise EOFError
        data += memoryview(chunk)[:n]
    return bytes(data)


def make_big(srv, addr, n):
    """n entries with distinct message rows cloned from one template: every
    row gets its own words ("rareNNN" in one message in 1000, the common
    words in all) so SEARCH TEXT has real work."""
    srv.cli("deliver", addr, input=message(0), check=True)
    for _ in range(600):  # the indexer files its text from the blob
        if srv.psql("SELECT count(*) FROM search_pending")[0][0] == 0:
            break
        time.sleep(0.05)
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
      SELECT body INTO ttxt FROM message_search WHERE message_id = tid;
      INSERT INTO messages (sha256, size, header_size, sent_date, subject, from_addr, to_addr,
          envelope, body, bodystructure, parts, headers, preview)
        SELECT sha256(tsha || int8send(g)), t.size, t.header_size, t.sent_date, 'bench ' || g,
               t.from_addr, t.to_addr, t.envelope, t.body, t.bodystructure, t.parts, t.headers,
               t.preview
        FROM messages t, generate_series(2, %(n)d) g
        WHERE t.id = tid;
      -- As the indexer files them (db/indexer.c).
      INSERT INTO message_search (message_id, headers, body, words)
        SELECT m.id, lower(m.headers), t.body, search_words(t.body)
        FROM generate_series(2, %(n)d) g
        CROSS JOIN LATERAL (SELECT lower('bench ' || g || ' ' || ttxt || ' rare' || (g %% 1000))
                            AS body) t
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, modseq, internaldate, size)
        SELECT mbid, g, m.id, CASE WHEN g %% 3 = 0 THEN 0 ELSE 1 END, g + 1, now(), tsize
        FROM generate_series(2, %(n)d) g
        JOIN messages m ON m.sha256 = sha256(tsha || int8send(g));
      UPDATE mailboxes SET uidnext = %(n)d + 1, highestmodseq = %(n)d + 2,
          messages = %(n)d, size_bytes = tsize * %(n)d WHERE id = mbid;
    END $$""" % {"addr": addr, "n": n})
    vacuum_analyze(srv)


def vacuum_analyze(srv):
    """A real mailbox of this size was vacuumed by autovacuum long before
    anyone selected it (hint bits set, visibility map, statistics); rows
    loaded by SQL a moment ago are not, and the first reader would pay for
    setting their hint bits. VACUUM cannot run inside a transaction."""
    import psycopg2
    conn = psycopg2.connect(host=os.path.join(srv.data_dir, "run"), dbname="roost", user="roost")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
    finally:
        conn.close()


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


# ---- Mix and memory phases: asyncio clients in several processes ----
#
# One Python thread per client cannot drive 1,000 clients, let alone 10,000
# idle TLS connections: each worker process runs its share of the clients as
# asyncio tasks and talks to the parent over a pipe.

class ImapError(Exception):
    pass


LITERAL_RE = re.compile(rb"\{(\d+)\+?\}\r\n$")


class AsyncImap:
    """A minimal IMAP client on an asyncio TLS stream: enough for the bench
    (tagged commands, server literals, LITERAL+ for APPEND, IDLE)."""

    def __init__(self, reader, writer):
        self.r, self.w, self.n = reader, writer, 0

    @classmethod
    async def open(cls, port, src, ctx):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, local_addr=(src, 0), limit=1 << 20)
        m = cls(reader, writer)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(greeting[:80])
        return m

    async def readline(self):
        line = await self.r.readline()
        if not line:
            raise ImapError("connection closed")
        return line

    async def response(self, tag):
        """Reads up to the tagged reply; returns (tagged line, untagged bytes)."""
        data = []
        while True:
            line = await self.readline()
            while True:
                lit = LITERAL_RE.search(line)
                if lit is None:
                    break
                data.append(line)
                data.append(await self.r.readexactly(int(lit.group(1))))
                line = await self.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise ImapError(line[:120])
                return line, b"".join(data)
            data.append(line)

    async def cmd(self, text, literal=None):
        self.n += 1
        tag = b"b%d" % self.n
        if literal is None:
            self.w.write(tag + b" " + text + b"\r\n")
        else:
            self.w.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        return await self.response(tag)

    async def idle_start(self):
        self.n += 1
        tag = b"b%d" % self.n
        self.w.write(tag + b" IDLE\r\n")
        while not (await self.readline()).startswith(b"+"):
            pass
        return tag

    async def idle_done(self, tag):
        self.w.write(b"DONE\r\n")
        return await self.response(tag)

    def close(self):
        self.w.transport.abort()


def source_ip(i, spread):
    """Client addresses 127.0.0.1 .. 127.0.0.<spread>, so no one source
    address carries more than its share (and its ephemeral ports)."""
    return "127.0.0.%d" % (1 + i % spread)


async def login_select(port, src, addr, ctx):
    m = await AsyncImap.open(port, src, ctx)
    await m.cmd(b"LOGIN " + addr.encode() + b" " + PASSWORD.encode())
    _, data = await m.cmd(b"SELECT INBOX")
    found = re.search(rb"\* (\d+) EXISTS", data)
    return m, int(found.group(1)) if found else 0


async def idle_open(job, clients, count, errors):
    """Opens count more connections (LOGIN, SELECT INBOX, then IDLE if
    asked), at most 32 handshakes at a time. Connections from number
    job["select_below"] on only log in (see bench_idle)."""
    sem = asyncio.Semaphore(32)
    ctx = tls_ctx()

    async def one(i):
        async with sem:
            try:
                port, src = job["port"], source_ip(i, job["spread"])
                addr = job["addrs"][i % len(job["addrs"])]
                if i % job["stride"] >= job["select_below"]:
                    m = await AsyncImap.open(port, src, ctx)
                    await m.cmd(b"LOGIN " + addr.encode() + b" " + PASSWORD.encode())
                    clients.append(m)
                    return
                m, _ = await login_select(port, src, addr, ctx)
                if job["idle_cmd"]:
                    await m.idle_start()
                clients.append(m)
            except (OSError, ImapError, asyncio.IncompleteReadError) as e:
                errors.append(str(e)[:100])
    first = job["first"] + len(clients) + len(errors)
    await asyncio.gather(*(one(first + k) for k in range(count)))


async def idle_worker_main(job, pipe):
    loop = asyncio.get_running_loop()
    clients, errors = [], []
    while True:
        msg = await loop.run_in_executor(None, pipe.recv)
        if msg[0] == "open":
            await idle_open(job, clients, msg[1], errors)
            pipe.send(("opened", len(clients), errors[:3], len(errors)))
        else:
            for m in clients:
                m.close()
            await asyncio.sleep(0.2)
            pipe.send(("closed",))
            return


MIX_STEPS = ["SELECT", "FETCH 1:* (UID FLAGS)", "FETCH 50 headers", "FETCH full", "SEARCH",
             "STORE", "APPEND", "EXPUNGE", "IDLE+DONE"]


def mix_steps(m, rnd, appended, exists, last):
    """The mix of one round: (name, coroutine function) pairs."""
    async def append():
        line, _ = await m.cmd(b"APPEND INBOX", appended)
        found = re.search(rb"APPENDUID \d+ (\d+)", line)
        last[0] = found.group(1) if found else None

    async def expunge():
        if last[0] is not None:
            await m.cmd(b"UID STORE " + last[0] + b" +FLAGS.SILENT (\\Deleted)")
        await m.cmd(b"EXPUNGE")

    async def idle():
        await m.idle_done(await m.idle_start())

    n = max(1, min(exists, 100))
    return [
        ("SELECT", lambda: m.cmd(b"SELECT INBOX")),
        ("FETCH 1:* (UID FLAGS)", lambda: m.cmd(b"FETCH 1:* (UID FLAGS)")),
        ("FETCH 50 headers", lambda: m.cmd(
            b"FETCH 1:50 (UID BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])")),
        ("FETCH full", lambda: m.cmd(b"FETCH %d (BODY.PEEK[])" % rnd.randint(1, n))),
        ("SEARCH", lambda: m.cmd(b"SEARCH TEXT " + rnd.choice(WORDS).encode())),
        ("STORE", lambda: m.cmd(b"STORE %d +FLAGS (\\Flagged)" % rnd.randint(1, n))),
        ("APPEND", append),
        ("EXPUNGE", expunge),
        ("IDLE+DONE", idle),
    ]


async def mix_client_run(m, exists, seed, go, until, lat, errors):
    rnd = random.Random(seed)
    appended = message(10000 + seed).encode()
    last = [None]
    steps = mix_steps(m, rnd, appended, exists, last)
    await go.wait()
    try:
        while time.monotonic() < until[0]:
            for name, fn in steps:
                t0 = time.monotonic()
                await fn()
                lat.setdefault(name, []).append((time.monotonic() - t0) * 1000)
        await m.cmd(b"LOGOUT")
    except (OSError, ImapError, asyncio.IncompleteReadError) as e:
        errors.append(str(e)[:100])
    m.close()


async def mix_worker_main(job, pipe):
    loop = asyncio.get_running_loop()
    ctx, sem = tls_ctx(), asyncio.Semaphore(32)
    errors, lat = [], {}

    async def login(i):
        async with sem:
            try:
                return i, await login_select(job["port"], source_ip(i, job["spread"]),
                                             job["addrs"][i % len(job["addrs"])], ctx)
            except (OSError, ImapError, asyncio.IncompleteReadError) as e:
                errors.append(str(e)[:100])
                return i, None
    ready = [r for r in await asyncio.gather(*(login(i) for i in job["ids"])) if r[1]]
    pipe.send(("ready", len(ready), errors[:3]))
    seconds = (await loop.run_in_executor(None, pipe.recv))[1]
    go, until = asyncio.Event(), [time.monotonic() + seconds]
    tasks = [asyncio.create_task(mix_client_run(m, exists, i, go, until, lat, errors))
             for i, (m, exists) in ready]
    go.set()
    await asyncio.gather(*tasks)
    pipe.send(("stats", lat, errors[:3], len(errors)))


def worker_entry(kind, job, pipe):
    asyncio.run(idle_worker_main(job, pipe) if kind == "idle" else mix_worker_main(job, pipe))


def start_workers(kind, jobs):
    mp = multiprocessing.get_context("fork")
    workers = []
    for job in jobs:
        parent, child = mp.Pipe()
        p = mp.Process(target=worker_entry, args=(kind, job, child), daemon=True)
        p.start()
        workers.append((p, parent))
    return workers


def stop_workers(workers):
    for p, _ in workers:
        p.join(30)
        if p.is_alive():
            p.kill()


def bench_accounts(srv, prefix, n):
    """n accounts with a {SHA512-CRYPT} hash set in SQL, so that thousands
    of logins cost milliseconds each, not argon2id's 19 MiB and ~50 ms."""
    addrs = ["%s%d@bench.test" % (prefix, i) for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda a: srv.cli("user", "add", a, input=PASSWORD + "\n", check=True),
                    addrs))
    crypt = subprocess.run(["openssl", "passwd", "-6", "-salt", "roostbench", PASSWORD],
                           capture_output=True, text=True, check=True).stdout.strip()
    srv.psql("UPDATE accounts SET password_hash = '{SHA512-CRYPT}%s' WHERE address LIKE '%s%%'"
             % (crypt, prefix))
    return addrs


def deliver_all(srv, addrs, n):
    """n messages, each delivered once to all addrs (stored once)."""
    for i in range(n):
        for k in range(0, len(addrs), 200):
            srv.cli("deliver", *addrs[k:k + 200], input=message(i), check=True)


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every 100 ms; .peak is the highest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, rss_kb(pid), threading.Event()

    def run(self):
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, rss_kb(self.pid))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def split(ids, procs):
    return [ids[k::procs] for k in range(procs) if ids[k::procs]]


def bench_mix(srv, clients, seconds, pid, procs, spread):
    accounts = max(1, clients // 10)
    addrs = bench_accounts(srv, "mix%d-" % clients, accounts)
    deliver_all(srv, addrs, 100)
    jobs = [{"port": srv.ports["imaps"], "addrs": addrs, "ids": ids, "spread": spread}
            for ids in split(list(range(clients)), procs)]
    workers = start_workers("mix", jobs)
    ready = [pipe.recv() for _, pipe in workers]
    n_ready = sum(r[1] for r in ready)
    sampler = RssSampler(pid)
    sampler.start()
    t0 = time.monotonic()
    for _, pipe in workers:
        pipe.send(("go", seconds))
    results = [pipe.recv() for _, pipe in workers]
    wall = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    stop_workers(workers)
    lat, errs, n_err = {}, [], 0
    for r in results:
        for name, v in r[1].items():
            lat.setdefault(name, []).extend(v)
        errs += r[2]
        n_err += r[3]
    print("mix: %d clients (%d logged in) on %d accounts, %d processes, %.1f s "
          "(server peak RSS %d MB, %d errors%s)" %
          (clients, n_ready, accounts, len(workers), wall, sampler.peak // 1024, n_err,
           (": " + "; ".join(errs[:2])) if errs else ""))
    total = 0
    for name in MIX_STEPS:
        v = lat.get(name, [])
        total += len(v)
        if v:
            print("  %-22s %8.1f ops/s   p50 %7.1f ms   p99 %7.1f ms" %
                  (name, len(v) / wall, pct(v, 50), pct(v, 99)))
    print("  %-22s %8.1f ops/s" % ("all commands", total / wall))


def smaps_kb(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return "?"


def db_backends(srv):
    return srv.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'roost' "
                    "AND pid <> pg_backend_pid()")[0][0]


def idle_step(workers, pid, counts):
    for (_, pipe), k in zip(workers, counts):
        pipe.send(("open", k))
    replies = [pipe.recv() for _, pipe in workers]
    time.sleep(2)  # let the sessions settle (the last replies, IDLE)
    opened = sum(r[1] for r in replies)
    n_err = sum(r[3] for r in replies)
    errs = [e for r in replies for e in r[2]]
    return opened, n_err, errs, rss_kb(pid), smaps_kb(pid)


def select_budget(n):
    """A selected session holds its socket and the notifier's eventfd: when
    the open-files limit (which the server inherits) cannot take two per
    connection, the rest only log in."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return max(0, min(n, hard - n - 400))


def bench_idle(srv, n, pid, procs, spread, idle_cmd):
    addrs = bench_accounts(srv, "idle", max(1, min(100, n // 100)))
    deliver_all(srv, addrs, 20)
    selected = select_budget(n)
    # Worker k opens connections k*stride, k*stride+1, ...; the first
    # select_below of each worker's share select INBOX.
    stride = -(-n // procs)
    jobs = [{"port": srv.ports["imaps"], "addrs": addrs, "first": k * stride, "spread": spread,
             "idle_cmd": idle_cmd, "stride": stride, "select_below": -(-selected // procs)}
            for k in range(procs)]
    # One login per worker first (then closed): the pool, caches and the
    # first thread arenas are not a per-connection cost.
    workers = start_workers("idle", jobs)
    idle_step(workers, pid, [1] * procs)
    for _, pipe in workers:
        pipe.send(("close",))
        pipe.recv()
    stop_workers(workers)
    workers = start_workers("idle", jobs)
    time.sleep(1)
    base, base_sm = rss_kb(pid), smaps_kb(pid)
    half = [len(ids) for ids in split(list(range(n // 2)), procs)]
    rest = [len(ids) for ids in split(list(range(n - n // 2)), procs)]
    h_open, _, _, h_rss, _ = idle_step(workers, pid, half + [0] * (procs - len(half)))
    opened, n_err, errs, rss, sm = idle_step(workers, pid, rest + [0] * (procs - len(rest)))
    per = (rss - base) / max(1, opened)
    marginal = (rss - h_rss) / max(1, opened - h_open)
    print("idle: %d logged-in TLS connections, %d of them SELECT INBOX%s, %d failed%s" %
          (opened, min(opened, selected), ", then IDLE" if idle_cmd else "", n_err,
           (": " + "; ".join(errs[:2])) if errs else ""))
    if selected < n:
        print("  (open files limited to %d: %d connections only log in, without the "
              "eventfd a selected mailbox holds)" %
              (resource.getrlimit(resource.RLIMIT_NOFILE)[1], n - selected))
    print("  RSS %d -> %d MB: %.1f KB per connection (%.1f KB each for the second half)" %
          (base // 1024, rss // 1024, per, marginal))
    print("  of which anonymous %.1f KB, file-backed %.1f KB per connection; "
          "server threads %s, database connections %d" %
          ((sm.get("Anonymous", 0) - base_sm.get("Anonymous", 0)) / max(1, opened),
           ((sm.get("Rss", 0) - sm.get("Anonymous", 0)) -
            (base_sm.get("Rss", 0) - base_sm.get("Anonymous", 0))) / max(1, opened),
           proc_status(pid, "Threads"), db_backends(srv)))
    print("  kernel page tables (VmPTE) %s kB, not counted in RSS" % proc_status(pid, "VmPTE"))
    for _, pipe in workers:
        pipe.send(("close",))
        pipe.recv()
    stop_workers(workers)


def raise_nofile(want):
    """Room for the client sockets of the workers and for the server's
    socket and IDLE eventfd per connection (it inherits our limits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < want:
        print("warning: open files limited to %d (need about %d)" % (hard, want))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roost", required=True)
    ap.add_argument("--big", type=int, default=100000)
    ap.add_argument("--clients", default="10,100,1000")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--no-idle-cmd", action="store_true",
                    help="memory phase: stay selected without entering IDLE")
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--spread", type=int, default=50,
                    help="client source addresses 127.0.0.1..127.0.0.N")
    args = ap.parse_args()
    n_conn = max(args.idle, max(int(c) for c in args.clients.split(",")))
    raise_nofile(2 * n_conn + 4096)
    import conftest
    conftest.ROOST_BIN = os.path.abspath(args.roost)
    base = tempfile.mkdtemp(prefix="roost-bench-imap-")
    os.chmod(base, 0o755)
    per_ip = n_conn // max(1, args.spread) + 100
    srv = Roost(base, "bench", extra={"server.log_level": "info",
                                      "limits.connections": str(n_conn + 200),
                                      "limits.connections_per_ip": str(per_ip)})
    try:
        srv.start()
        srv.cli("domain", "add", "bench.test", check=True)
        pid = srv.proc.pid
        if args.big > 0:
            bench_big(srv, args.big)
        for c in args.clients.split(","):
            if int(c) > 0:
                bench_mix(srv, int(c), args.seconds, pid, min(args.procs, int(c)), args.spread)
        if args.idle > 0:
            bench_idle(srv, args.idle, pid, min(args.procs, args.idle), args.spread,
                       not args.no_idle_cmd)
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
