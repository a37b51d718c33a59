#!/usr/bin/python3
"""bench/pop3: login + STAT + RETR of every message of a 1,000-message
maildrop over TLS (pop3s), with 1 and 16 accounts at once; prints
messages/s, MB/s and the login rate. Starts its own `roost serve` (managed
PostgreSQL in a temporary directory) and removes it afterwards.

    /usr/bin/python3 bench/pop3/bench_pop3.py --roost build-release/roost

Not part of the test run; the figures are printed, never asserted."""
import argparse
import glob
import multiprocessing
import os
import poplib
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from conftest import Roost, _as_owner  # noqa: E402  (the integration harness)

PASSWORD = "bench-pass-1"


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_message(i, size):
    rnd = random.Random(i)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "roost", "mail", "pop3", ".dot"]
    body, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(words) for _ in range(12))
        body.append(line)
        n += len(line) + 2
    head = ["From: bench@example.org", "To: user@bench.test", "Subject: bench %d" % i,
            "Message-ID: <bench-%d@example.org>" % i, ""]
    return "\r\n".join(head + body) + "\r\n"


def fill(srv, addrs, messages, size, jobs):
    def one(i):
        srv.cli("deliver", *addrs, input=make_message(i, size), check=True)
    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(one, range(messages)))


def session(port, addr, retrieve):
    """One login + STAT (+ RETR of everything) + QUIT. Returns (messages, octets)."""
    p = poplib.POP3_SSL("127.0.0.1", port, context=tls_ctx(), timeout=300)
    p.user(addr)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    octets = 0
    if retrieve:
        for i in range(1, count + 1):
            octets += p.retr(i)[2]
    p.quit()
    return count, octets


def _worker(args):
    port, addr, retrieve, repeat = args
    t0 = time.monotonic()
    total = [0, 0]
    for _ in range(repeat):
        c, o = session(port, addr, retrieve)
        total[0] += c
        total[1] += o
    return total[0], total[1], time.monotonic() - t0


def run(port, addrs, retrieve, repeat=1):
    t0 = time.monotonic()
    with multiprocessing.Pool(len(addrs)) as pool:
        results = pool.map(_worker, [(port, a, retrieve, repeat) for a in addrs])
    wall = time.monotonic() - t0
    return sum(r[0] for r in results), sum(r[1] for r in results), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roost", default=os.path.join(HERE, "..", "..", "build", "roost"))
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=8192, help="approximate bytes per message")
    ap.add_argument("--accounts", type=int, default=16)
    ap.add_argument("--logins", type=int, default=10, help="login rounds per account")
    args = ap.parse_args()
    os.environ["ROOST_BIN"] = os.path.abspath(args.roost)
    import conftest
    conftest.ROOST_BIN = os.environ["ROOST_BIN"]
    base = tempfile.mkdtemp(prefix="roost-bench-pop3-")
    os.chmod(base, 0o755)
    srv = Roost(base, "bench", extra={"server.log_level": "info",
                                      "limits.connections_per_ip": "1000"})
    try:
        srv.start()
        srv.cli("domain", "add", "bench.test", check=True)
        addrs = ["user%02d@bench.test" % i for i in range(args.accounts)]
        for a in addrs:
            srv.cli("user", "add", a, input=PASSWORD + "\n", check=True)
        t0 = time.monotonic()
        fill(srv, addrs, args.messages, args.size, 4)
        print("filled %d maildrops of %d messages in %.1f s" % (
            len(addrs), args.messages, time.monotonic() - t0))
        port = srv.ports["pop3s"]
        t0 = time.monotonic()
        session(port, addrs[0], False)
        print("first login (sizes computed for %d new messages): %.3f s" % (
            args.messages, time.monotonic() - t0))
        run(port, addrs, False)  # every maildrop's first login, not measured
        for n in (1, len(addrs)):
            msgs, octets, wall = run(port, addrs[:n], True)
            print("RETR all, %2d account(s) at once: %6d messages in %6.2f s: "
                  "%8.0f messages/s %7.1f MB/s" % (n, msgs, wall, msgs / wall,
                                                     octets / wall / 1e6))
        for n in (1, len(addrs)):
            _, _, wall = run(port, addrs[:n], False, args.logins)
            logins = n * args.logins
            print("login+STAT+QUIT over TLS, %2d at once: %5d logins in %6.2f s: "
                  "%7.1f logins/s (1,000-message maildrop)" % (n, logins, wall, logins / wall))
    finally:
        srv.stop()
        pg = os.path.join(srv.data_dir, "pgdata")
        if os.path.isdir(pg):
            pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
            subprocess.run(_as_owner(pg, [pg_ctl, "-D", pg, "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
