"""Outbound mail: the queue, MX routing, retries, DSNs, DKIM, the queue
CLI and crash safety, against a fake DNS server and fake remote MX hosts
(fakes.py) on loopback. One installation serves the module; its remote
port ([queue] smtp_port) is shared by every fake MX, which differ by
loopback address."""
import email
import email.policy
import os
import re
import signal
import smtplib
import subprocess
import time
import uuid

import dkim
import pytest

from conftest import Roost, free_port, metrics, _as_owner
from fakes import FakeMX, FakeNet, self_signed_context

PASSWORD = "pw-123456"


@pytest.fixture(scope="module")
def env(base_dir, dns):
    port = free_port()
    r = Roost(base_dir, "outbound", extra={
        "dns.resolver": "127.0.0.1:%d" % dns.port,
        "dns.timeout": "2s",
        "queue.smtp_port": str(port),
        "queue.retry_min": "1s",
        "queue.retry_max": "2s",
        "queue.connect_timeout": "3s",
        "queue.runners": "2",
    })
    r.start()
    r.mx_port = port
    yield r
    r.stop()
    pg = os.path.join(r.data_dir, "pgdata")
    if os.path.isdir(pg):
        pg_ctl = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        subprocess.run(_as_owner(pg, [pg_ctl, "-D", pg, "-m", "immediate", "stop"]),
                       capture_output=True)


@pytest.fixture
def net(env, dns):
    n = FakeNet(dns, env.mx_port)
    yield n
    n.stop()


def uniq(prefix="o"):
    return "%s%s.example" % (prefix, uuid.uuid4().hex[:10])


def local_sender(env):
    d = uniq("local")
    env.cli("domain", "add", d, check=True)
    env.cli("user", "add", "alice@" + d, input=PASSWORD + "\n", check=True)
    return "alice@" + d


def remote_domain(dns, net, host="mx", **kw):
    """A new remote domain with one MX host served by a FakeMX."""
    remote = uniq()
    dns.mx(remote, (10, "%s.%s" % (host, remote)))
    return remote, net.mx_server("%s.%s" % (host, remote), **kw)


def deferred_entry(env, dns, net):
    """A message from a new local sender to a remote MX that always answers
    451 at RCPT, waited for until its first attempt failed: (sender, remote,
    mx, queue id)."""
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    mx.tempfail_rcpt = -1
    submit(env, sender, ["bob@" + remote])
    rows = wait_queued(env, sender, pred=lambda rows: rows and rows[0][3])
    assert "451 4.3.0" in rows[0][3]
    return sender, remote, mx, rows[0][0]


def message(sender, to, subject="hello", body="Hi there.\r\n"):
    return ("From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@test>\r\n\r\n%s" % (sender, ", ".join(to), subject,
                                                 uuid.uuid4().hex, body)).encode()


def submit(env, sender, rcpts, data=None, **kw):
    with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=30) as c:
        c.login(sender, PASSWORD)
        refused = c.sendmail(sender, rcpts, data or message(sender, rcpts), **kw)
        assert refused == {}


def inbox(env, address):
    rows = env.psql(
        "SELECT b.data FROM accounts a JOIN mailboxes m ON m.account_id = a.id "
        "JOIN mailbox_entries e ON e.mailbox_id = m.id JOIN messages g ON g.id = e.message_id "
        "JOIN blobs b ON b.sha256 = g.sha256 WHERE a.address = '%s' AND m.name = 'INBOX' "
        "ORDER BY e.uid" % address.lower())
    return [bytes(r[0]) for r in rows]


def wait_inbox(env, address, count=1, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = inbox(env, address)
        if len(msgs) >= count:
            return msgs
        time.sleep(0.1)
    raise AssertionError("no DSN for %s:\n%s" % (address, env.log_text()[-3000:]))


def queue_rows(env, sender):
    return env.psql("SELECT q.id, r.recipient, r.status, r.last_error FROM queue q "
                    "JOIN queue_recipients r ON r.queue_id = q.id WHERE q.sender = '%s' "
                    "ORDER BY r.recipient" % sender)


def wait_queue_empty(env, sender, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not queue_rows(env, sender):
            return
        time.sleep(0.1)
    raise AssertionError("queue not empty: %r" % (queue_rows(env, sender),))


def wait_queued(env, sender, timeout=30, pred=lambda rows: bool(rows)):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = queue_rows(env, sender)
        if pred(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError("queue: %r" % (queue_rows(env, sender),))


def report(dsn_bytes):
    """(message, per-message fields, [per-recipient fields], third part)."""
    m = email.message_from_bytes(dsn_bytes, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    fields = [dict(b.items()) for b in blocks]
    return m, fields[0], fields[1:], parts[2]


def test_delivery_signed_and_verified(env, dns, net):
    sender = local_sender(env)
    domain = sender.split("@")[1]
    remote, mx = remote_domain(dns, net, host="mx1")
    # The records to publish, as the admin would; the DKIM one goes into DNS.
    out = env.cli("domain", "dns", domain, check=True).stdout
    assert "%s.\tIN\tMX\t10 mail.test.example." % domain in out
    assert '"v=spf1 mx -all"' in out
    assert '_dmarc.%s.\tIN\tTXT\t"v=DMARC1; p=none; rua=mailto:postmaster@%s"' % (
        domain, domain) in out
    assert "PRIVATE" not in out
    line = [l for l in out.splitlines() if "._domainkey." in l][0]
    name = line.split("\t")[0]
    strings = re.findall(r'"([^"]*)"', line)
    assert all(len(s) <= 255 for s in strings) and len(strings) >= 2
    dns.txt(name, "".join(strings))

    submit(env, sender, ["bob@" + remote, "carol@" + remote])
    msgs = mx.wait(1)
    assert len(msgs) == 1, "one connection, one transaction for both recipients"
    mail_from, rcpts, data, _ = msgs[0]
    assert mail_from == sender
    assert sorted(rcpts) == sorted(["bob@" + remote, "carol@" + remote])
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=" +
                           domain.encode())
    assert b"Received: " in data
    # Verified by python3-dkim, with the key fetched from the fake DNS.
    assert dkim.verify(data, dnsfunc=lambda n, timeout=5: dns.query_txt(n.decode())[0])
    # Tampering breaks it.
    assert not dkim.verify(data.replace(b"Hi there.", b"Hi there!"),
                           dnsfunc=lambda n, timeout=5: dns.query_txt(n.decode())[0])
    wait_queue_empty(env, sender)
    env.wait_for_log("rcpt=\"carol@%s\" mx=mx1.%s status=sent dsn=2.0.0" % (remote, remote))


def test_opportunistic_starttls_and_8bitmime(env, dns, net, base_dir):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net, tls=self_signed_context(base_dir))
    body = "Gr\u00fc\u00dfe aus K\u00f6ln.\r\n"
    data = message(sender, ["bob@" + remote], body=body)
    data = data.replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Content-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\n\r\n", 1)
    submit(env, sender, ["bob@" + remote], data, mail_options=["BODY=8BITMIME"])
    got = mx.wait(1)[0]
    assert body.encode() in got[2]
    assert mx.sessions[0]["tls"] is True
    assert "BODY=8BITMIME" in mx.sessions[0]["mail_options"]
    wait_queue_empty(env, sender)


def test_big_mx_answer_over_tcp(env, dns, net):
    """An MX answer too big for a UDP datagram: the resolver retries over
    TCP. The 30 hosts of lower preference are dead; the last one works."""
    sender = local_sender(env)
    remote = uniq()
    hosts = [(10, "mail-exchanger-number-%02d-with-a-long-name.%s" % (i, remote))
             for i in range(30)]
    dns.mx(remote, *hosts, (50, "last." + remote))
    for _, h in hosts:
        net.dead_host(h)
    mx = net.mx_server("last." + remote)
    submit(env, sender, ["bob@" + remote])
    mx.wait(1)
    assert (remote, "MX", "tcp") in dns.queries
    wait_queue_empty(env, sender)


def test_ed25519_key_and_success_notice(env, dns, net):
    sender = local_sender(env)
    domain = sender.split("@")[1]
    remote, mx = remote_domain(dns, net)
    old = env.cli("domain", "dns", domain, check=True).stdout
    out = env.cli("domain", "dns", domain, "--new-dkim-key", "ed25519-sha256", check=True).stdout
    line = [l for l in out.splitlines() if "._domainkey." in l][0]
    assert "k=ed25519" in line and line not in old
    name = line.split("\t")[0]
    dns.txt(name, "".join(re.findall(r'"([^"]*)"', line)))
    with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=30) as c:
        c.login(sender, PASSWORD)
        c.ehlo()
        c.sendmail(sender, ["bob@" + remote], message(sender, ["bob@" + remote]),
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    data = mx.wait(1)[0][2]
    assert b"a=ed25519-sha256" in data
    assert dkim.verify(data, dnsfunc=lambda n, timeout=5: dns.query_txt(n.decode())[0])
    dsn = wait_inbox(env, sender)[0]
    m, _, per_rcpt, _ = report(dsn)
    assert m["Subject"] == "Successful Mail Delivery Report"
    assert per_rcpt[0]["Action"] == "relayed" and per_rcpt[0]["Status"] == "2.0.0"
    r = env.cli("domain", "dns", domain, "--new-dkim-key", "dsa")
    assert r.returncode == 2


def test_domain_dns_unknown_domain(env):
    r = env.cli("domain", "dns", uniq("nope"))
    assert r.returncode == 1
    assert "unknown domain" in r.stderr


def test_tempfail_then_success_with_backoff(env, dns, net):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    mx.tempfail_data = 2
    submit(env, sender, ["bob@" + remote])
    msgs = mx.wait(1, timeout=40)
    assert len(msgs) == 1 and mx.data_attempts == 3
    wait_queue_empty(env, sender)
    log = env.log_text()
    assert log.count("rcpt=\"bob@%s\" mx=mx.%s status=deferred dsn=4.3.0" % (remote, remote)) == 2
    assert inbox(env, sender) == []  # no DSN for a success without NOTIFY=SUCCESS


def test_bounce_dsn_in_sender_inbox(env, dns, net):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    mx.rcpt_replies["nobody@" + remote] = "550 5.1.1 no such user here"
    data = message(sender, ["bob@" + remote, "nobody@" + remote], subject="bounce me")
    submit(env, sender, ["bob@" + remote, "nobody@" + remote], data)
    assert mx.wait(1)[0][1] == ["bob@" + remote]
    dsn = wait_inbox(env, sender)[0]
    m, per_msg, per_rcpt, original = report(dsn)
    assert m["To"] == "<%s>" % sender
    assert m["From"].startswith("Mail Delivery System <MAILER-DAEMON@mail.test.example>")
    assert m["Auto-Submitted"] == "auto-replied"
    assert per_msg["Reporting-MTA"] == "dns; mail.test.example"
    assert "Arrival-Date" in per_msg
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; nobody@" + remote
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx." + remote
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1 no such user here")
    assert original.get_content_type() == "text/rfc822-headers"
    assert b"Subject: bounce me" in original.as_bytes()
    assert b"Hi there." not in original.as_bytes()
    wait_queue_empty(env, sender)
    env.wait_for_log("rcpt=\"nobody@%s\" mx=mx.%s status=bounced dsn=5.1.1" % (remote, remote))


def test_notify_never_and_ret_full(env, dns, net):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    mx.rcpt_replies["a@" + remote] = "550 5.1.1 nope"
    mx.rcpt_replies["b@" + remote] = "550 5.1.1 nope"
    with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=30) as c:
        c.login(sender, PASSWORD)
        c.ehlo()
        data = message(sender, ["a@" + remote, "b@" + remote], subject="full")
        c.mail(sender, ["RET=FULL", "ENVID=env42"])
        assert c.rcpt("a@" + remote, ["NOTIFY=NEVER"])[0] == 250
        assert c.rcpt("b@" + remote, ["NOTIFY=FAILURE", "ORCPT=rfc822;b@" + remote])[0] == 250
        assert c.data(data)[0] == 250
    dsn = wait_inbox(env, sender)[0]
    _, per_msg, per_rcpt, original = report(dsn)
    assert per_msg["Original-Envelope-Id"] == "env42"
    assert [r["Final-Recipient"] for r in per_rcpt] == ["rfc822; b@" + remote]
    assert per_rcpt[0]["Original-Recipient"] == "rfc822;b@" + remote
    assert original.get_content_type() == "message/rfc822"
    assert b"Hi there." in original.as_bytes()
    wait_queue_empty(env, sender)
    time.sleep(0.5)
    assert len(inbox(env, sender)) == 1


def test_mx_fallback(env, dns, net):
    sender = local_sender(env)
    remote = uniq()
    dns.mx(remote, (20, "backup." + remote), (10, "primary." + remote))
    net.dead_host("primary." + remote)
    mx = net.mx_server("backup." + remote)
    submit(env, sender, ["bob@" + remote])
    assert mx.wait(1)[0][1] == ["bob@" + remote]
    wait_queue_empty(env, sender)
    env.wait_for_log("rcpt=\"bob@%s\" mx=backup.%s status=sent" % (remote, remote))


def test_a_fallback_without_mx(env, dns, net):
    sender = local_sender(env)
    remote = uniq()
    mx = net.mx_server(remote)  # only an A record for the domain itself
    submit(env, sender, ["bob@" + remote])
    assert mx.wait(1)[0][1] == ["bob@" + remote]
    wait_queue_empty(env, sender)


def test_null_mx_and_nxdomain_bounce(env, dns, net):
    sender = local_sender(env)
    nullmx, missing = uniq(), uniq()
    dns.mx(nullmx, (0, "."))
    submit(env, sender, ["bob@" + nullmx, "bob@" + missing])
    dsn = wait_inbox(env, sender)[0]
    _, _, per_rcpt, _ = report(dsn)
    status = {r["Final-Recipient"]: r["Status"] for r in per_rcpt}
    assert status == {"rfc822; bob@" + nullmx: "5.1.10", "rfc822; bob@" + missing: "5.1.2"}
    wait_queue_empty(env, sender)


def test_expiry_bounces_with_last_error(env, dns, net):
    sender, remote, mx, qid = deferred_entry(env, dns, net)
    # Older than [queue] max_age (5 days): the next attempt gives up.
    env.psql("UPDATE queue SET created_at = now() - interval '6 days' WHERE id = %d" % qid)
    env.cli("queue", "retry", str(qid), check=True)
    dsn = wait_inbox(env, sender)[0]
    _, _, per_rcpt, _ = report(dsn)
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "4.4.7"
    assert "451 4.3.0" in per_rcpt[0]["Diagnostic-Code"]
    wait_queue_empty(env, sender)
    assert mx.messages == []


def test_delay_notice_once_then_queue_cli(env, dns, net):
    sender, remote, mx, qid = deferred_entry(env, dns, net)
    out = env.cli("queue", "list", check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("%d\t" % qid)][0]
    assert "<%s>" % sender in line
    assert "bob@%s (pending)" % remote in line
    assert "451 4.3.0" in line
    # Past [queue] delay_notice (4 hours): one notice, then no more.
    env.psql("UPDATE queue SET created_at = now() - interval '5 hours' WHERE id = %d" % qid)
    env.cli("queue", "retry", str(qid), check=True)
    dsn = wait_inbox(env, sender)[0]
    m, _, per_rcpt, _ = report(dsn)
    assert per_rcpt[0]["Action"] == "delayed"
    assert m["Subject"].startswith("Delayed Mail")
    assert env.psql("SELECT delay_notified FROM queue WHERE id = %d" % qid) == [(True,)]
    env.cli("queue", "retry", str(qid), check=True)
    time.sleep(3)
    assert len(inbox(env, sender)) == 1
    # delete: gone, and no bounce.
    assert env.cli("queue", "delete", str(qid), check=True).returncode == 0
    assert queue_rows(env, sender) == []
    time.sleep(1)
    assert len(inbox(env, sender)) == 1
    r = env.cli("queue", "delete", str(qid))
    assert r.returncode == 1 and "no queue entry" in r.stderr
    r = env.cli("queue", "retry", "12x")
    assert r.returncode != 0 and "not a queue id" in r.stderr


def test_smtputf8_needed_but_not_offered(env, dns, net):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net, smtputf8=False)
    rcpt = "jos\u00e9@" + remote
    with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=30) as c:
        c.login(sender, PASSWORD)
        c.ehlo()
        c.sendmail(sender, [rcpt], message(sender, ["x@" + remote]), mail_options=["SMTPUTF8"])
    dsn = wait_inbox(env, sender)[0]
    _, _, per_rcpt, _ = report(dsn)
    assert per_rcpt[0]["Status"] == "5.6.7"
    assert mx.messages == []


def test_kill9_mid_delivery_delivers_once(env, dns, net):
    sender = local_sender(env)
    fast, slow = "a" + uniq(), "b" + uniq()
    dns.mx(fast, (10, "mx." + fast))
    dns.mx(slow, (10, "mx." + slow))
    mx_fast = net.mx_server("mx." + fast)
    mx_slow = net.mx_server("mx." + slow)
    mx_slow.stall_data = 1
    submit(env, sender, ["bob@" + fast, "bob@" + slow])
    assert mx_slow.stalled.wait(30), env.log_text()[-3000:]
    assert len(mx_fast.messages) == 1
    env.stop(signal.SIGKILL)
    env.start()
    # The row comes back at once (the claim died with the process); the
    # recipient already accepted is not sent again.
    mx_slow.wait(1, timeout=40)
    wait_queue_empty(env, sender)
    time.sleep(1)
    assert len(mx_fast.messages) == 1
    assert len(mx_slow.messages) == 1
    assert inbox(env, sender) == []


def test_smarthost_with_auth(base_dir, fresh, dns):
    port = free_port()
    relay = FakeMX("127.0.0.1", port, logins={"relayuser": "relay-secret"}).start()
    try:
        r = fresh(extra={"smtp.relayhost": "127.0.0.1:%d" % port,
                         "smtp.relayhost_tls": "none",
                         "smtp.relayhost_user": "relayuser",
                         "smtp.relayhost_password": "relay-secret",
                         "dns.resolver": "127.0.0.1:%d" % dns.port,
                         "queue.retry_min": "1s"}).start()
        sender = local_sender(r)
        remote = uniq()  # not in DNS at all: the smarthost routes it
        submit(r, sender, ["bob@" + remote])
        got = relay.wait(1)
        assert got[0][1] == ["bob@" + remote]
        assert relay.sessions[0]["auth"] == "relayuser"
        wait_queue_empty(r, sender)
        assert "relay-secret" not in r.log_text()
    finally:
        relay.stop()


def test_sigterm_mid_delivery_stops_promptly(env, dns, net):
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    mx.stall_data = 1
    submit(env, sender, ["bob@" + remote])
    assert mx.stalled.wait(30)
    t0 = time.time()
    assert env.stop() == 0
    assert time.time() - t0 < 15
    # The server is down (and its database with it): the CLI starts it.
    assert "bob@%s (pending)" % remote in env.cli("queue", "list", check=True).stdout
    env.start()
    mx.wait(1, timeout=40)
    wait_queue_empty(env, sender)
    assert len(mx.messages) == 1


def test_bounce_to_remote_sender_goes_out_with_null_sender(env, dns, net):
    """Mail from outside to a local alias forwarding to a remote address that
    refuses it: the DSN is queued to the remote sender with the null sender,
    and when that one is refused too nothing bounces further."""
    local = uniq("local")
    env.cli("domain", "add", local, check=True)
    target, mx_target = remote_domain(dns, net)
    mx_target.rcpt_replies["gone@" + target] = "550 5.1.1 gone"
    origin, mx_origin = remote_domain(dns, net)
    mx_origin.rcpt_replies["stranger@" + origin] = "550 5.1.1 no such user"
    env.cli("alias", "add", "fwd@" + local, "gone@" + target, check=True)
    for sender in ("someone@" + origin, "stranger@" + origin):
        with smtplib.SMTP("127.0.0.1", env.ports["smtp"], timeout=30) as c:
            c.sendmail(sender, ["fwd@" + local], message(sender, ["fwd@" + local]))
    mail_from, rcpts, data, _ = mx_origin.wait(1)[0]
    assert mail_from == "<>" and rcpts == ["someone@" + origin]
    _, _, per_rcpt, _ = report(data)
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; gone@" + target
    assert per_rcpt[0]["Status"] == "5.1.1"
    env.wait_for_log("rcpt=\"stranger@%s\" mx=mx.%s status=bounced" % (origin, origin))
    wait_queue_empty(env, "")
    assert len(mx_origin.messages) == 1
    assert len(mx_target.messages) == 0


def test_sent_mail_stays_counted_after_its_queue_row_goes(env, dns, net):
    before = metrics(env)["roost_messages_sent_24h"]
    sender = local_sender(env)
    remote, mx = remote_domain(dns, net)
    submit(env, sender, ["bob@" + remote, "carol@" + remote])
    mx.wait(1)
    wait_queue_empty(env, sender)
    assert metrics(env)["roost_messages_sent_24h"] >= before + 2
