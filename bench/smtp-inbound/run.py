#!/usr/bin/python3
"""Runs bench-smtp-inbound against a throw-away Roost (see README.md).

    bench/smtp-inbound/run.py BUILD_DIR [MESSAGES] [CONNS...]

Makes a temporary installation (managed PostgreSQL, only the smtp listener),
adds a domain with 64 accounts ($ROOST_BENCH_USERS), and for each concurrency (default 1 8 32
128) sends MESSAGES messages (default 500) and measures the raw commit rate
at the same concurrency. Removes everything afterwards."""
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Accounts the messages go to. Deliveries to one mailbox serialize on its
# row lock until the commit, so few accounts measure lock waits, not SMTP.
USERS = int(os.environ.get("ROOST_BENCH_USERS", "64"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    build = os.path.abspath(sys.argv[1])
    messages = sys.argv[2] if len(sys.argv) > 2 else "500"
    conns = sys.argv[3:] or ["1", "8", "32", "128"]
    roost = os.path.join(build, "roost")
    gen = os.path.join(build, "bench", "smtp-inbound", "bench-smtp-inbound")
    base = tempfile.mkdtemp(prefix="roost-bench-smtp-")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    conf = os.path.join(base, "roost.conf")
    port = free_port()
    # $ROOST_BENCH_LANES sets [database] delivery_lanes (default: Roost's).
    lanes = os.environ.get("ROOST_BENCH_LANES")
    lanes = "delivery_lanes = %s\n" % lanes if lanes else ""
    with open(conf, "w") as f:
        f.write("[server]\nhostname = bench.example\ndata_dir = %s\nlog_level = warn\n"
                "[database]\npool_size = 40\n%s"
                "[listen]\nsmtp = 127.0.0.1:%d\nsubmission =\nsubmissions =\nimap =\nimaps =\n"
                "pop3 =\npop3s =\nhttps =\nhttp =\n"
                "[limits]\nconnections_per_ip = 1000\n"
                % (data, lanes, port))
    log = open(os.path.join(base, "serve.log"), "wb")
    proc = subprocess.Popen([roost, "serve", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        run = lambda *a, **k: subprocess.run([roost] + list(a) + ["-c", conf], check=True,
                                             capture_output=True, text=True, **k)
        run("domain", "add", "bench.example")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: run("user", "add", "user%d@bench.example" % i,
                                        input="bench-password\n"), range(USERS)))
        conninfo = "host=%s dbname=roost user=roost" % os.path.join(data, "run")
        for c in conns:
            subprocess.run([gen, str(port), conninfo, "bench.example", str(USERS), c, messages,
                            str(proc.pid)], check=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        log.close()
        if os.environ.get("ROOST_BENCH_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
