"""RSS per idle logged-in TLS IMAP connection with COMPRESS=DEFLATE.
Each client: TLS, LOGIN, [COMPRESS DEFLATE], SELECT INBOX, FETCH 1:20
(FLAGS BODY.PEEK[HEADER]) and FETCH 1 BODY.PEEK[], then IDLE.
Usage: bench_compress_idle.py ROOST_BIN N [--plain]"""
import asyncio
import multiprocessing
import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
import conftest  # noqa: E402

PASSWORD = "bench-pass-1"
HISTORY = 0   # --history BYTES: command text sent before idling
SETTLE = 4    # seconds after the last client is idle
IDLE = True   # --no-idle: wait for the next command instead of IDLE


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


class Client:
    def __init__(self, r, w):
        self.r, self.w, self.z, self.buf, self.n = r, w, None, b"", 0

    async def fill(self):
        chunk = await self.r.read(65536)
        if not chunk:
            raise EOFError
        self.buf += self.z[1].decompress(chunk) if self.z else chunk

    async def line(self):
        while b"\r\n" not in self.buf:
            await self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    async def read(self, n):
        while len(self.buf) < n:
            await self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def send(self, data):
        if self.z:
            data = self.z[0].compress(data) + self.z[0].flush(zlib.Z_SYNC_FLUSH)
        self.w.write(data)

    async def cmd(self, text):
        self.n += 1
        tag = b"a%d" % self.n
        self.send(tag + b" " + text + b"\r\n")
        while True:
            line = await self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                await self.read(int(m.group(1)))
            elif line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), line
                return


async def one(port, addr, compress, sem, clients, src):
    async with sem:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, local_addr=(src, 0))
        c = Client(r, w)
        await c.line()
        await c.cmd(b"LOGIN " + addr.encode() + b" " + PASSWORD.encode())
        if compress:
            await c.cmd(b"COMPRESS DEFLATE")
            c.z = (zlib.compressobj(wbits=-15, memLevel=1), zlib.decompressobj(wbits=-15))
        await c.cmd(b"SELECT INBOX")
        await c.cmd(b"FETCH 1:20 (FLAGS BODY.PEEK[HEADER])")
        await c.cmd(b"FETCH 1 BODY.PEEK[]")
        # What a mail client sends all day: header fetches, flag changes.
        sent, k = 0, 0
        while sent < HISTORY:
            k += 1
            uid = 1 + (k * 7919) % 20
            cmd = [b"UID FETCH %d (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc "
                   b"Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
                   b"In-Reply-To Content-Type Reply-To)])" % uid,
                   b"UID STORE %d +FLAGS (\\Seen)" % uid, b"NOOP"][k % 3]
            sent += len(cmd) + 8
            await c.cmd(cmd)
        if IDLE:
            c.send(b"i IDLE\r\n")
            while not (await c.line()).startswith(b"+"):
                pass
        clients.append(c)


def worker(port, addrs, ids, compress, pipe):
    async def main():
        clients = []
        sem = asyncio.Semaphore(16)
        await asyncio.gather(*(one(port, addrs[i % len(addrs)], compress, sem, clients,
                                   "127.0.0.%d" % (1 + i % 50)) for i in ids))
        pipe.send(len(clients))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        for c in clients:
            c.w.transport.abort()
    asyncio.run(main())


def message(i):
    body = "".join("line %d of a message body with some words in it\r\n" % k for k in range(80))
    return ("From: Bench <bench@example.org>\r\nTo: user@bench.test\r\nSubject: bench %d\r\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <bench-%d@example.org>\r\n\r\n%s"
            % (i, i, body))


def run(n, compress, procs=2):
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    base = tempfile.mkdtemp(prefix="roost-imapmem-")
    os.chmod(base, 0o755)
    srv = conftest.Roost(base, "b", extra={"server.log_level": "info",
                                           "limits.connections": str(n + 200),
                                           "limits.connections_per_ip": str(n)})
    try:
        srv.start()
        srv.cli("domain", "add", "bench.test", check=True)
        addrs = ["u%d@bench.test" % i for i in range(10)]
        for a in addrs:
            srv.cli("user", "add", a, input=PASSWORD + "\n", check=True)
        crypt = subprocess.run(["openssl", "passwd", "-6", "-salt", "roostbench", PASSWORD],
                               capture_output=True, text=True, check=True).stdout.strip()
        srv.psql("UPDATE accounts SET password_hash = '{SHA512-CRYPT}%s'" % crypt)
        for i in range(20):
            srv.cli("deliver", *addrs, input=message(i), check=True)
        pid = srv.proc.pid
        results = []
        # Warm-up: a few sessions open and closed (pool, caches, arenas).
        for step in ("warm", "half", "full"):
            count = 50 if step == "warm" else n // 2
            mp = multiprocessing.get_context("fork")
            ws = []
            for k in range(procs):
                a, b = mp.Pipe()
                ids = list(range(len(results) * 100000 + k, len(results) * 100000 + count, procs))
                p = mp.Process(target=worker, args=(srv.ports["imaps"], addrs, ids, compress, b))
                p.start()
                ws.append((p, a))
            if step == "warm":
                [a.recv() for _, a in ws]
                for p, a in ws:
                    a.send("close")
                    p.join()
                time.sleep(1)
                results.append(("base", 0, rss_kb(pid)))
                continue
            opened = sum(a.recv() for _, a in ws)
            time.sleep(SETTLE)
            results.append((step, opened, rss_kb(pid)))
            if step == "full" and os.environ.get("GDB_STATS"):
                subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)malloc_stats()", "-ex", "call (int)malloc_trim(0)", "-ex", "call (void)malloc_stats()"],
                               capture_output=True)
                time.sleep(1)
                log = open(srv.log_path, "rb").read().decode("utf-8", "replace")
                tail = log[log.find("Arena 0:", len(log) - 200000):]
                tot = [l for l in tail.splitlines() if l.startswith(("system bytes", "in use"))]
                print("malloc totals before/after trim:", tot[-4:] if len(tot) >= 4 else tot,
                      "RSS after trim", rss_kb(pid))
            if step == "half":
                keep = ws
            else:
                for p, a in ws + keep:
                    a.send("close")
                    p.join()
        base_rss = results[0][2]
        total = results[1][1] + results[2][1]
        print("%s n=%d opened=%d RSS base %d KB, half %d KB, full %d KB: %.1f KB/conn "
              "(second half %.1f KB/conn)" % (
                  "COMPRESS" if compress else "plain", n, total, base_rss, results[1][2],
                  results[2][2], (results[2][2] - base_rss) / total,
                  (results[2][2] - results[1][2]) / max(1, results[2][1])))
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    conftest.ROOST_BIN = os.path.abspath(sys.argv[1])
    if "--history" in sys.argv:
        HISTORY = int(sys.argv[sys.argv.index("--history") + 1])
    IDLE = "--no-idle" not in sys.argv
    print("history=%d idle=%s" % (HISTORY, IDLE))
    run(int(sys.argv[2]), "--plain" not in sys.argv)
