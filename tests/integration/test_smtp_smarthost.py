"""The smarthost's TLS is authenticated ([smtp] relayhost_tls = starttls or
implicit): its certificate must chain to a trusted CA ([smtp] relayhost_ca,
else the system store) and carry the name (or IP address) written in
relayhost. A certificate that fails is a temporary failure: the message
stays queued with a 4.7.5 error naming the reason, and is retried.
[smtp] relayhost_verify = no accepts any certificate.

The smarthost is a FakeMX (fakes.py) with certificates from a throw-away CA
(fakes.TestCA). The module's server relays through relay.smarthost.test,
which the fake DNS points at a new FakeMX in each test."""
import os
import smtplib
import subprocess
import time
import uuid

import pytest

from conftest import Roost, free_port, _as_owner
from fakes import FakeImplicitTLSMX, FakeMX, FakeNet, TestCA

PASSWORD = "pw-123456"
RELAY = "relay.smarthost.test"


@pytest.fixture(scope="module")
def ca(base_dir):
    return TestCA(os.path.join(base_dir, "smarthost-ca"))


@pytest.fixture(scope="module")
def other_ca(base_dir):
    return TestCA(os.path.join(base_dir, "smarthost-other-ca"), name="Untrusted CA")


def roost_extra(dns, relayhost, **more):
    extra = {"smtp.relayhost": relayhost,
             "dns.resolver": "127.0.0.1:%d" % dns.port,
             "dns.timeout": "2s",
             "queue.retry_min": "1s",
             "queue.retry_max": "2s",
             "queue.connect_timeout": "3s"}
    extra.update(more)
    return extra


def stop_cluster(r):
    r.stop()
    pg = os.path.join(r.data_dir, "pgdata")
    if os.path.isdir(pg):
        pg_ctl = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        subprocess.run(_as_owner(pg, [pg_ctl, "-D", pg, "-m", "immediate", "stop"]),
                       capture_output=True)


@pytest.fixture(scope="module")
def env(base_dir, dns, ca):
    port = free_port()
    r = Roost(base_dir, "smarthost", extra=roost_extra(
        dns, "%s:%d" % (RELAY, port), **{"smtp.relayhost_ca": ca.cert}))
    r.relay_port = port
    r.start()
    yield r
    stop_cluster(r)


@pytest.fixture
def relays(dns):
    """relays(env, tls_context): a FakeMX on a new loopback address that
    RELAY now resolves to."""
    net = FakeNet(dns, 0)
    started = []

    def make(env, tls):
        net.port = env.relay_port
        ip = net.ip()
        mx = FakeMX(ip, env.relay_port, tls=tls).start()
        started.append(mx)
        dns.clear(RELAY)
        dns.a(RELAY, ip)
        return mx
    yield make
    for mx in started:
        mx.stop()


def local_sender(r):
    d = "local%s.example" % uuid.uuid4().hex[:10]
    r.cli("domain", "add", d, check=True)
    r.cli("user", "add", "alice@" + d, input=PASSWORD + "\n", check=True)
    return "alice@" + d


def submit(r, sender, rcpt):
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: via the smarthost\r\n"
           "Message-ID: <%s@test>\r\n\r\nHello.\r\n" % (sender, rcpt, uuid.uuid4().hex))
    with smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=30) as c:
        c.login(sender, PASSWORD)
        assert c.sendmail(sender, [rcpt], msg.encode()) == {}


def queue_rows(r, sender):
    return r.psql("SELECT r.recipient, r.status, r.last_error FROM queue q "
                  "JOIN queue_recipients r ON r.queue_id = q.id WHERE q.sender = '%s'" % sender)


def wait_until(pred, what, r, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("%s:\n%s" % (what, r.log_text()[-3000:]))


def wait_deferred(r, sender):
    """The queue rows once the first attempt has recorded an error."""
    return wait_until(lambda: [row for row in queue_rows(r, sender) or [] if row[2]],
                      "no deferral recorded", r)


def wait_delivered(r, sender, mx):
    mx.wait(1)
    wait_until(lambda: not queue_rows(r, sender), "queue not empty", r)


def remote_rcpt():
    return "bob@r%s.example" % uuid.uuid4().hex[:10]


# ---- verification on (the default) ----

def test_trusted_certificate_with_the_right_name_delivers(env, ca, relays):
    mx = relays(env, ca.server_context(RELAY, dns_names=[RELAY]))
    sender, rcpt = local_sender(env), remote_rcpt()
    submit(env, sender, rcpt)
    wait_delivered(env, sender, mx)
    assert mx.messages[0][1] == [rcpt]
    assert mx.sessions[0]["tls"] is True


def test_wildcard_certificate_matches_one_label(env, ca, relays):
    mx = relays(env, ca.server_context("smarthost", dns_names=["*.smarthost.test"]))
    sender = local_sender(env)
    submit(env, sender, remote_rcpt())
    wait_delivered(env, sender, mx)


def test_wrong_name_stays_queued_then_delivers_when_fixed(env, ca, relays):
    wrong = relays(env, ca.server_context("other.test", dns_names=["other.test"]))
    sender, rcpt = local_sender(env), remote_rcpt()
    submit(env, sender, rcpt)
    rows = wait_deferred(env, sender)
    assert rows[0][1] == "pending"
    assert rows[0][2].startswith("451 4.7.5 TLS certificate of %s not verified" % RELAY), rows
    assert "hostname mismatch" in rows[0][2]
    assert wrong.messages == []
    assert "event=tls_verify_failed host=\"%s\"" % RELAY in env.log_text() or \
        "event=tls_verify_failed host=%s" % RELAY in env.log_text()
    # Retried: once the smarthost shows the right certificate, it goes out.
    good = relays(env, ca.server_context(RELAY, dns_names=[RELAY]))
    wait_delivered(env, sender, good)
    assert good.messages[0][1] == [rcpt]
    assert wrong.messages == []


def test_common_name_alone_is_not_enough(env, ca, relays):
    # RFC 6125 6.4.4: with subjectAltNames present the CN is not consulted;
    # here the only DNS name is another host's.
    mx = relays(env, ca.server_context(RELAY, dns_names=["mail.smarthost.test"]))
    sender = local_sender(env)
    submit(env, sender, remote_rcpt())
    rows = wait_deferred(env, sender)
    assert "4.7.5" in rows[0][2] and "hostname mismatch" in rows[0][2], rows
    assert mx.messages == []


def test_untrusted_ca_stays_queued(env, other_ca, relays):
    mx = relays(env, other_ca.server_context(RELAY, dns_names=[RELAY]))
    sender = local_sender(env)
    submit(env, sender, remote_rcpt())
    rows = wait_deferred(env, sender)
    assert rows[0][1] == "pending"
    assert rows[0][2].startswith("451 4.7.5 TLS certificate of %s not verified" % RELAY), rows
    assert "unable to get local issuer certificate" in rows[0][2]
    assert mx.messages == []
    time.sleep(2.5)  # retried (retry_min 1s), still refused, still queued
    rows = queue_rows(env, sender)
    assert rows and rows[0][1] == "pending" and "4.7.5" in rows[0][2]
    assert mx.messages == []


def test_no_starttls_offered_stays_queued(env, relays):
    mx = relays(env, None)
    sender = local_sender(env)
    submit(env, sender, remote_rcpt())
    rows = wait_deferred(env, sender)
    assert rows[0][2].startswith("451 4.7.4 STARTTLS required but not offered"), rows
    assert mx.messages == []


# ---- other configurations ----

def test_verify_no_accepts_any_certificate(base_dir, fresh, dns, other_ca):
    port = free_port()
    ip = FakeNet(dns, port).ip()
    mx = FakeMX(ip, port, tls=other_ca.server_context("other.test",
                                                      dns_names=["other.test"])).start()
    try:
        r = fresh(extra=roost_extra(dns, "%s:%d" % (ip, port),
                                    **{"smtp.relayhost_verify": "no"})).start()
        sender = local_sender(r)
        submit(r, sender, remote_rcpt())
        wait_delivered(r, sender, mx)
        assert mx.sessions[0]["tls"] is True
    finally:
        mx.stop()


def test_ip_literal_relayhost_checks_the_ip_address(base_dir, fresh, dns, ca):
    port = free_port()
    net = FakeNet(dns, port)
    ip, other_ip = net.ip(), net.ip()
    r = fresh(extra=roost_extra(dns, "%s:%d" % (ip, port),
                                **{"smtp.relayhost_ca": ca.cert})).start()
    # A certificate for another address: refused.
    mx = FakeMX(ip, port, tls=ca.server_context("relay", ips=[other_ip],
                                                dns_names=[ip])).start()
    try:
        sender = local_sender(r)
        submit(r, sender, remote_rcpt())
        rows = wait_deferred(r, sender)
        assert "4.7.5" in rows[0][2] and "IP address mismatch" in rows[0][2], rows
    finally:
        mx.stop()
    # One for this address: delivered on the next attempt.
    mx = FakeMX(ip, port, tls=ca.server_context("relay", ips=[ip])).start()
    try:
        wait_delivered(r, sender, mx)
    finally:
        mx.stop()


def test_implicit_tls_is_verified_too(base_dir, fresh, dns, ca):
    port = free_port()
    net = FakeNet(dns, port)
    name = "smtps.smarthost.test"
    ip = net.ip()
    dns.a(name, ip)
    r = fresh(extra=roost_extra(dns, "%s:%d" % (name, port),
                                **{"smtp.relayhost_tls": "implicit",
                                   "smtp.relayhost_ca": ca.cert})).start()
    mx = FakeImplicitTLSMX(ip, port, ca.server_context("x", dns_names=["other.test"])).start()
    try:
        sender = local_sender(r)
        submit(r, sender, remote_rcpt())
        rows = wait_deferred(r, sender)
        assert rows[0][2].startswith("451 4.7.5 TLS certificate of %s not verified" % name)
        assert mx.messages == []
    finally:
        mx.stop()
    mx = FakeImplicitTLSMX(ip, port, ca.server_context(name, dns_names=[name])).start()
    try:
        wait_delivered(r, sender, mx)
    finally:
        mx.stop()


def test_unreadable_ca_file_is_a_config_error(base_dir, fresh, dns):
    missing = os.path.join(base_dir, "no-such-ca.pem")
    r = fresh(extra=roost_extra(dns, "%s:25" % RELAY, **{"smtp.relayhost_ca": missing}))
    with pytest.raises(AssertionError) as e:
        r.start(timeout=60)
    assert "relayhost_ca" in str(e.value) and missing in str(e.value)


def test_ordinary_mx_starttls_stays_opportunistic(base_dir, fresh, dns, other_ca):
    # Without a smarthost, STARTTLS to a domain's MX accepts any certificate
    # (RFC 3207/7672 without DANE): an untrusted one with the wrong name.
    port = free_port()
    net = FakeNet(dns, port)
    r = fresh(extra={"dns.resolver": "127.0.0.1:%d" % dns.port, "dns.timeout": "2s",
                     "queue.smtp_port": str(port), "queue.retry_min": "1s"}).start()
    remote = "r%s.example" % uuid.uuid4().hex[:10]
    dns.mx(remote, (10, "mx." + remote))
    mx = net.mx_server("mx." + remote,
                       tls=other_ca.server_context("other.test", dns_names=["other.test"]))
    try:
        sender = local_sender(r)
        submit(r, sender, "bob@" + remote)
        wait_delivered(r, sender, mx)
        assert mx.sessions[0]["tls"] is True
    finally:
        mx.stop()
