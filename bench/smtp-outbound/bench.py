#!/usr/bin/python3
"""Outbound queue throughput: how fast `roost serve` drains its queue to a
fake remote MX (aiosmtpd on loopback, found through a fake DNS server).

  1. messages are submitted (port 587, AUTH) while the MX is down, so each
     is DKIM-signed, queued and deferred once: that rate is printed too;
  2. the MX comes up, every row is made due at once and the runners are
     woken; the time until the queue is empty gives messages/s.
Repeated for several [queue] runners values. Run from the repository root:
  ROOST_BIN=build-rel/roost /usr/bin/python3 bench/smtp-outbound/bench.py [--messages N]
"""
import argparse
import os
import shutil
import smtplib
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from conftest import Roost, free_port  # noqa: E402
from fakes import FakeDNS, FakeMX  # noqa: E402

PASSWORD = "bench-password"


def body(i, size):
    line = "line of message %d, realistic enough, with a few words in it.\r\n" % i
    return (line * (size // len(line) + 1))[:size]


def submit(r, sender, rcpts_for, count, size):
    t0 = time.time()
    with smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=60) as c:
        c.login(sender, PASSWORD)
        for i in range(count):
            rcpts = rcpts_for(i)
            msg = ("From: <%s>\r\nTo: %s\r\nSubject: bench %d\r\nMessage-ID: <%s@bench>\r\n"
                   "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n" % (
                       sender, ", ".join(rcpts), i, uuid.uuid4().hex, body(i, size)))
            c.sendmail(sender, rcpts, msg.encode())
    return time.time() - t0


def wait(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def run(r, dns, ip, port, runners, count, size):
    r.extra["queue.runners"] = str(runners)
    r.write_config()
    try:
        r.start()
        local = "bench%s.example" % uuid.uuid4().hex[:8]
        remote = "remote%s.example" % uuid.uuid4().hex[:8]
        r.cli("domain", "add", local, check=True)
        r.cli("user", "add", "alice@" + local, input=PASSWORD + "\n", check=True)
        dns.mx(remote, (10, "mx." + remote))
        dns.a("mx." + remote, ip)
        sender = "alice@" + local
        # One recipient mostly, every fourth message three (one connection each).
        rcpts = lambda i: (["u%d@%s" % (i, remote)] if i % 4 else
                           ["u%d-%d@%s" % (i, k, remote) for k in range(3)])
        sub = submit(r, sender, rcpts, count, size)
        ok = wait(lambda: r.psql("SELECT count(*) FROM queue WHERE attempts = 0")[0][0] == 0, 120)
        assert ok, "messages were not all deferred"
        mx = FakeMX(ip, port).start()
        try:
            t0 = time.time()
            r.psql("UPDATE queue SET next_attempt_at = now(); NOTIFY roost_queue")
            ok = wait(lambda: r.psql("SELECT count(*) FROM queue")[0][0] == 0, 600)
            elapsed = time.time() - t0
            assert ok and len(mx.messages) == count, (len(mx.messages), count)
        finally:
            mx.stop()
        return sub, elapsed
    finally:
        r.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--runners", default="1,4,16")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="roost-bench-out-")
    os.chmod(base, 0o755)
    dns = FakeDNS().start()
    port = free_port()
    try:
        r = Roost(base, "bench", extra={
            "dns.resolver": "127.0.0.1:%d" % dns.port, "queue.smtp_port": str(port),
            "queue.retry_min": "1h", "queue.connect_timeout": "2s",
            "database.pool_size": "40"})
        print("messages=%d size=%dB (every 4th message to 3 recipients)" % (
            args.messages, args.size))
        for i, n in enumerate(int(x) for x in args.runners.split(",")):
            sub, drain = run(r, dns, "127.0.1.%d" % (10 + i), port, n, args.messages, args.size)
            print("runners=%-3d submit+sign+queue: %7.1f msg/s   queue drain to MX: %7.1f msg/s"
                  % (n, args.messages / sub, args.messages / drain), flush=True)
    finally:
        dns.stop()
        pg = os.path.join(base, "bench", "data", "pgdata")
        if os.path.isdir(pg):
            import glob
            import subprocess
            from conftest import _as_owner
            pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
            subprocess.run(_as_owner(pg, [pg_ctl, "-D", pg, "-m", "immediate", "stop"]),
                           capture_output=True)
        if os.environ.get("ROOST_KEEP_TEST_DIR") != "1":
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
