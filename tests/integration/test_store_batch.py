"""Concurrent deliveries sharing a transaction (db/store-deliver-batch.c):
under bursts of SMTP sessions and IMAP APPENDs, every accepted message is
in every mailbox it was accepted for and no other, UIDs stay dense and
unique, the mailbox and quota counters match the entries, and a recipient
over quota in an all-or-nothing delivery fails that delivery alone. The
/metrics counters show that transactions were shared."""
import imaplib
import random
import re
import smtplib
import ssl
import threading
import time
import uuid

from conftest import metrics

PASSWORD = "batch-pass-1"


def setup_domain(srv, users, quota=None):
    d = "b%s.example" % uuid.uuid4().hex[:10]
    srv.cli("domain", "add", d, check=True)
    for u in users:
        args = ["user", "add", "%s@%s" % (u, d)]
        if quota and u in quota:
            args += ["--quota", quota[u]]
        srv.cli(*args, input=PASSWORD + "\n", check=True)
    return d


def message(subject, size):
    body = ("batch test line %s\r\n" % subject) * (size // 30 + 1)
    return ("From: sender@remote.example\r\nTo: group@example\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.example>\r\n\r\n%s" % (subject, uuid.uuid4().hex,
                                                           body)).encode()


def burst(srv, plan, codes=(452, 552)):
    """Sends plan (a list per connection of (subject, recipients, size)) over
    concurrent SMTP sessions; returns {subject: (recipients, delivered_to)}:
    the recipients whose RCPT was accepted if DATA was, else none."""
    outcome = {}
    lock = threading.Lock()
    errors = []

    def worker(items):
        try:
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as c:
                c.ehlo()
                for subject, rcpts, size in items:
                    try:
                        refused = c.sendmail("sender@remote.example", rcpts,
                                             message(subject, size))
                        for code, _ in refused.values():
                            assert code in codes, refused
                        got = [r for r in rcpts if r not in refused]
                    except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as e:
                        code = getattr(e, "smtp_code", None)
                        if code is None:  # SMTPRecipientsRefused: every RCPT refused
                            code = min(v[0] for v in e.recipients.values())
                        assert code in codes, e
                        got = []
                        c.rset()
                    with lock:
                        outcome[subject] = (rcpts, got)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(items,)) for items in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return outcome


def stored(srv, domain):
    """{address: [(uid, subject, size)]} of the INBOXes of a domain."""
    rows = srv.psql(
        "SELECT a.address, e.uid, g.subject, e.size FROM accounts a "
        "JOIN domains d ON d.id = a.domain_id JOIN mailboxes m ON m.account_id = a.id "
        "JOIN mailbox_entries e ON e.mailbox_id = m.id JOIN messages g ON g.id = e.message_id "
        "WHERE d.name = '%s' AND m.name = 'INBOX' ORDER BY a.address, e.uid" % domain)
    out = {}
    for addr, uid, subject, size in rows:
        out.setdefault(addr, []).append((int(uid), subject, int(size)))
    return out


def assert_counters(srv, domain):
    """Each mailbox's counters and each account's quota use match its rows."""
    rows = srv.psql(
        "SELECT m.messages, m.uidnext, m.size_bytes, "
        "(SELECT count(*) FROM mailbox_entries e WHERE e.mailbox_id = m.id), "
        "(SELECT coalesce(max(uid), 0) FROM mailbox_entries e WHERE e.mailbox_id = m.id), "
        "(SELECT coalesce(sum(size), 0) FROM mailbox_entries e WHERE e.mailbox_id = m.id) "
        "FROM mailboxes m JOIN accounts a ON a.id = m.account_id "
        "JOIN domains d ON d.id = a.domain_id WHERE d.name = '%s'" % domain)
    for messages, uidnext, size, count, maxuid, total in rows:
        assert int(messages) == int(count)
        assert int(uidnext) == int(maxuid) + 1
        assert int(size) == int(total)
    rows = srv.psql(
        "SELECT a.used_bytes, a.quota_bytes, (SELECT coalesce(sum(e.size), 0) FROM mailboxes m "
        "JOIN mailbox_entries e ON e.mailbox_id = m.id WHERE m.account_id = a.id) "
        "FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE d.name = '%s'" % domain)
    for used, quota, total in rows:
        assert int(used) == int(total)
        assert int(quota) == 0 or int(used) <= int(quota)


def assert_outcome(srv, domain, outcome, users):
    """Accepted: in each recipient's INBOX once; refused: in none."""
    have = stored(srv, domain)
    for u in users:
        addr = "%s@%s" % (u, domain)
        entries = have.get(addr, [])
        uids = [e[0] for e in entries]
        assert uids == list(range(1, len(uids) + 1)), "UIDs of %s: %r" % (addr, uids)
        want = sorted(s for s, (rcpts, got) in outcome.items() if addr in got)
        assert sorted(e[1] for e in entries) == want, addr


def test_smtp_bursts_share_transactions_and_keep_mailboxes_exact(server):
    users = ["u%d" % i for i in range(6)]
    d = setup_domain(server, users)
    addrs = ["%s@%s" % (u, d) for u in users]
    before = metrics(server)
    rnd = random.Random(7)
    outcome = {}
    for rnd_no in range(4):  # until transactions were shared, at most four bursts
        plan = [[("burst%d-%d-%d" % (rnd_no, c, i), rnd.sample(addrs, rnd.randint(1, 3)),
                  rnd.randint(200, 20000)) for i in range(6)] for c in range(24)]
        outcome.update(burst(server, plan))
        if metrics(server)["roost_delivery_batched_total"] > before["roost_delivery_batched_total"]:
            break
    after = metrics(server)
    assert after["roost_delivery_batches_total"] > before["roost_delivery_batches_total"]
    # A shared transaction holds at least two deliveries.
    assert (after["roost_delivery_batched_total"] - before["roost_delivery_batched_total"]
            >= 2 * (after["roost_delivery_batches_total"] - before["roost_delivery_batches_total"]))
    assert all(got == rcpts for rcpts, got in outcome.values())
    assert_outcome(server, d, outcome, users)
    assert_counters(server, d)


def quota_round(srv, seed):
    users = ["a", "b", "q"]
    d = setup_domain(srv, users, quota={"q": "60K"})
    a, b, q = ("%s@%s" % (u, d) for u in users)
    rnd = random.Random(seed)
    shapes = [[a, q], [q], [a, b], [b, q], [a]]
    plan = [[("quota-%d-%d" % (c, i), rnd.choice(shapes), 9000) for i in range(4)]
            for c in range(20)]
    outcome = burst(srv, plan)
    short = [s for s, (rcpts, got) in outcome.items() if got != rcpts]
    assert short, "q's quota holds about six of the messages addressed to it"
    assert all(q in outcome[s][0] for s in short), "only deliveries that include q fail"
    assert any(q in got for rcpts, got in outcome.values())
    assert_outcome(srv, d, outcome, users)
    assert_counters(srv, d)


def test_over_quota_recipient_fails_its_delivery_alone(fresh):
    # RCPT finds room for q in many sessions at once; their DATA then
    # meets in shared transactions where q's quota runs out, and those
    # must be rolled back and stored alone (until that happened once).
    # One lane: the sessions' deliveries queue behind each other and share
    # transactions however fast each one is stored.
    srv = fresh(extra={"database.delivery_lanes": "1"}).start()
    for seed in range(10):
        quota_round(srv, seed)
        if metrics(srv)["roost_delivery_batch_retries_total"] > 0:
            break
    assert metrics(srv)["roost_delivery_batch_retries_total"] > 0


def test_identical_appends_at_once_store_one_message(server):
    d = setup_domain(server, ["app"])
    addr = "app@" + d
    body = message("same-" + uuid.uuid4().hex, 30000)
    errors, uids = [], []
    lock = threading.Lock()

    def append():
        try:
            m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=60)
            m.starttls(ssl_context=_insecure())
            m.login(addr, PASSWORD)
            typ, data = m.append("INBOX", None, None, body)
            assert typ == "OK", data
            uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)
            with lock:
                uids.append(int(uid))
            m.logout()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=append) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(uids) == list(range(1, 13))
    rows = server.psql(
        "SELECT count(DISTINCT e.message_id), count(*) FROM mailbox_entries e "
        "JOIN mailboxes m ON m.id = e.mailbox_id JOIN accounts a ON a.id = m.account_id "
        "WHERE a.address = '%s'" % addr)
    assert [int(v) for v in rows[0]] == [1, 12]
    assert_counters(server, d)
    # The server still answers.
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as c:
        assert c.noop()[0] == 250


def _insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_database_sessions_killed_during_bursts(server):
    """Backends of the server terminated in the middle of shared
    transactions: every delivery still answers (250 or a temporary
    failure), each accepted message is in each of its recipients' INBOX
    once, the counters match the rows, and the server goes on serving."""
    users = ["k%d" % i for i in range(4)]
    d = setup_domain(server, users)
    addrs = ["%s@%s" % (u, d) for u in users]
    rnd = random.Random(5)
    plan = [[("kill-%d-%d" % (c, i), rnd.sample(addrs, rnd.randint(1, 3)), rnd.randint(500, 30000))
             for i in range(8)] for c in range(16)]
    stop = threading.Event()
    kills = []

    def killer():
        while not stop.is_set():
            kills.append(server.psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'roost' AND state = 'active' "
                "AND pid <> pg_backend_pid()")[0][0])
            time.sleep(0.03)

    k = threading.Thread(target=killer)
    k.start()
    try:
        outcome = burst(server, plan, codes=(421, 451, 452, 552))
    finally:
        stop.set()
        k.join()
    assert sum(int(n) for n in kills) > 0, "no backend was caught at work"
    have = stored(server, d)
    for addr in addrs:
        entries = have.get(addr, [])
        assert [e[0] for e in entries] == list(range(1, len(entries) + 1))
        subjects = [e[1] for e in entries]
        for s, (rcpts, got) in outcome.items():
            if addr in got:
                assert subjects.count(s) == 1, (addr, s)
    assert_counters(server, d)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as c:
        assert c.sendmail("sender@remote.example", addrs, message("after", 100)) == {}
