"""LDAP directory against a real slapd (ldap_fixture.py): logins through
directory_authenticate (`roost ldap test ADDRESS --password` takes the same
path as IMAP/POP3/SMTP AUTH), provisioning, addresses and groups through
`roost deliver`, TLS, failover, the directory going away and coming back,
sync, the Active Directory preset, and filter injection attempts."""
import time
import uuid

import pytest

from conftest import Roost
from ldap_fixture import Slapd, free_port, stop_roost

# A running server reads LDAP settings again this often (LDAPX_RELOAD_S).
RELOAD_S = 2.5
MSG = "From: sender@example.net\r\nTo: x\r\nSubject: ldap test\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def slapd(base_dir):
    tag = uuid.uuid4().hex[:8]
    s = Slapd("corp-%s.test" % tag, "ad-%s.test" % tag, base_dir=base_dir)
    s.start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def roost(base_dir, slapd):
    r = Roost(base_dir, "ldap-" + uuid.uuid4().hex[:8])
    r.start()
    for d in (slapd.domain, slapd.ad_domain, "local-%s.test" % uuid.uuid4().hex[:6]):
        r.cli("domain", "add", d, check=True)
    ldap_set(r, slapd.settings_openldap())
    time.sleep(RELOAD_S)
    yield r
    stop_roost(r)


def ldap_set(r, settings):
    args = ["%s=%s" % kv for kv in settings.items() if kv[0] != "preset"]
    if "preset" in settings:
        args.insert(0, "preset=%s" % settings["preset"])
    return r.cli("ldap", "set", *args, check=True)


def login(r, name, password):
    return r.cli("ldap", "test", name, "--password", input=password + "\n")


def account(r, address):
    rows = r.psql("SELECT id, source, external_id, password_hash IS NULL, is_admin, disabled, "
                  "display_name, quota_bytes FROM accounts WHERE address = '%s'" % address)
    return rows[0] if rows else None


def inbox_count(r, address):
    return r.psql("SELECT count(*) FROM mailbox_entries e JOIN mailboxes m ON m.id = e.mailbox_id "
                  "JOIN accounts a ON a.id = m.account_id "
                  "WHERE a.address = '%s' AND m.name = 'INBOX'" % address)[0][0]


def deliver(r, *addresses):
    return r.cli("deliver", *addresses, input=MSG)


@pytest.fixture
def openldap(roost, slapd):
    yield roost
    ldap_set(roost, slapd.settings_openldap())
    time.sleep(RELOAD_S)


# ---- settings ----

def test_show_never_prints_the_bind_password(roost):
    out = roost.cli("ldap", "show", check=True).stdout
    assert "bind_password=(set)" in out
    assert "servicepw" not in out
    assert "user_filter=(objectClass=inetOrgPerson)" in out


def test_set_rejects_bad_values(roost):
    for bad in ("nosuch=1", "urls=http://x", "timeout=abc", "user_filter=uid=x", "starttls=maybe",
                "preset=novell", "novalue"):
        r = roost.cli("ldap", "set", bad)
        assert r.returncode != 0, bad
    assert "user_filter=(objectClass=inetOrgPerson)" in roost.cli("ldap", "show").stdout


def test_ldap_test_prints_what_roost_sees(roost, slapd):
    r = roost.cli("ldap", "test", "alice", check=True)
    assert "connection: ok (service bind)" in r.stdout
    assert "dn: uid=alice,ou=people,dc=example,dc=test" in r.stdout
    assert "address: alice@%s" % slapd.domain in r.stdout
    assert "alternate: a.smith@%s" % slapd.domain in r.stdout
    assert "name: Alice Smith" in r.stdout
    assert "quota: 1000000" in r.stdout
    r = roost.cli("ldap", "test", "nobody-here")
    assert r.returncode == 1 and "no such LDAP user" in r.stderr


# ---- logins ----

def test_first_login_provisions_the_account(roost, slapd):
    address = "alice@" + slapd.domain
    assert account(roost, address) is None
    r = login(roost, address, "alice-pw")
    assert r.returncode == 0, r.stderr
    assert "login: ok" in r.stdout and "source=ldap" in r.stdout
    acct = account(roost, address)
    assert acct[1] == "ldap"
    assert acct[2] == "uid=alice,ou=people,dc=example,dc=test"
    assert acct[3] is True  # no password hash stored
    assert acct[6] == "Alice Smith" and acct[7] == 1000000
    boxes = roost.psql("SELECT count(*) FROM mailboxes WHERE account_id = %d" % acct[0])[0][0]
    assert boxes == 6
    # A second login reuses the account.
    assert login(roost, address, "alice-pw").returncode == 0
    assert roost.psql("SELECT count(*) FROM accounts WHERE address = '%s'" % address)[0][0] == 1


def test_login_with_the_login_attribute(roost, slapd):
    r = login(roost, "bob", "bob-pw")
    assert r.returncode == 0 and "account: bob@%s" % slapd.domain in r.stdout


def test_wrong_password_and_unknown_user(roost, slapd):
    for name, pw in (("bob@" + slapd.domain, "wrong"), ("bob", "bob-pw "),
                     ("nobody@" + slapd.domain, "x"), ("nobody", "bob-pw"),
                     ("bob@elsewhere.example", "bob-pw")):
        r = login(roost, name, pw)
        assert r.returncode == 1 and "login: failed" in r.stdout, (name, r.stdout, r.stderr)


@pytest.mark.parametrize("name", [
    "*", "*)(uid=*", "alice)(uid=*", "*)(|(uid=*", "al*", "alice\\2a", "(uid=alice)",
    "alice)(|(objectClass=*)", "*@*", "alice\\00", "bob)(&",
])
def test_filter_injection_never_authenticates(roost, name):
    for pw in ("alice-pw", "bob-pw", "*"):
        r = login(roost, name, pw)
        assert r.returncode == 1 and "login: failed" in r.stdout, (name, pw, r.stdout)
    r = roost.cli("ldap", "test", name)
    assert "dn:" not in r.stdout


def test_local_and_ldap_accounts_side_by_side(roost, slapd):
    pm = "postmaster@" + slapd.domain
    roost.cli("user", "add", pm, input="local-secret\n", check=True)
    r = login(roost, pm, "local-secret")
    assert r.returncode == 0 and "source=local" in r.stdout
    assert login(roost, "alice@" + slapd.domain, "alice-pw").returncode == 0
    # An LDAP account's password cannot be set locally.
    r = roost.cli("user", "passwd", "alice@" + slapd.domain, input="other\n")
    assert r.returncode != 0 and "LDAP" in r.stderr


def test_admin_group_gives_the_admin_role(roost, slapd):
    r = login(roost, "dave", "dave-pw")
    assert r.returncode == 0 and "admin=yes" in r.stdout  # admins -> ops -> dave
    assert account(roost, "dave@" + slapd.domain)[4] is True
    r = login(roost, "bob", "bob-pw")
    assert "admin=no" in r.stdout


# ---- through the protocols of the running server ----

def _pop3_login(r, user, pw):
    import poplib
    p = poplib.POP3("127.0.0.1", r.ports["pop3"], timeout=20)
    try:
        p.user(user)
        return p.pass_(pw).decode()
    except poplib.error_proto as e:
        return str(e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0])
    finally:
        try:
            p.quit()
        except Exception:
            pass


def _imap_login(r, user, pw):
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=20)
    try:
        typ, data = m._simple_command("LOGIN", m._quote(user), m._quote(pw))
        return "%s %s" % (typ, data[0].decode() if data and data[0] else "")
    except imaplib.IMAP4.error as e:
        return "NO " + str(e)
    finally:
        try:
            m.logout()
        except Exception:
            pass


def _smtp_auth(r, user, pw):
    import base64
    import smtplib
    s = smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=20)
    try:
        s.ehlo("client.example")
        token = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
        code, msg = s.docmd("AUTH", "PLAIN " + token)
        return "%d %s" % (code, msg.decode())
    finally:
        s.close()


def _rcpt(r, address):
    import smtplib
    s = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=20)
    try:
        s.ehlo("client.example")
        s.mail("sender@example.net")
        code, msg = s.rcpt(address)
        return "%d %s" % (code, msg.decode())
    finally:
        s.close()


def test_login_over_pop3_imap_and_smtp(roost, slapd):
    d = slapd.domain
    assert _pop3_login(roost, "user2@" + d, "pw-2").startswith("+OK")
    assert _pop3_login(roost, "user2@" + d, "wrong").startswith("-ERR")
    assert _imap_login(roost, "user3", "pw-3").startswith("OK")
    assert _imap_login(roost, "user3", "pw-4").startswith("NO")
    assert _smtp_auth(roost, "user4@" + d, "pw-4").startswith("235")
    assert _smtp_auth(roost, "user4@" + d, "nope")[:3] == "535"
    assert _imap_login(roost, "*", "pw-3").startswith("NO")
    assert _imap_login(roost, "user3)(uid=*", "pw-3").startswith("NO")
    # An empty password would be an anonymous bind to LDAP: always refused.
    assert _imap_login(roost, "user3", "").startswith("NO")
    assert _smtp_auth(roost, "user4@" + d, "")[:1] in ("5", "4")
    assert not _pop3_login(roost, "user2\0*@" + d, "pw-2").startswith("+OK")
    assert _rcpt(roost, "u5.alt@" + d).startswith("250")
    assert _rcpt(roost, "nobody@" + d)[:3] == "550"


def test_protocols_answer_temporary_failures_while_ldap_is_down(roost, slapd):
    d = slapd.domain
    slapd.stop()
    try:
        time.sleep(0.5)
        assert "[SYS/TEMP]" in _pop3_login(roost, "user6@" + d, "pw-6")
        assert "[UNAVAILABLE]" in _imap_login(roost, "user6@" + d, "pw-6")
        assert _smtp_auth(roost, "user6@" + d, "pw-6").startswith("454")
        reply = _rcpt(roost, "u8.alt@" + d)
        # Never 550 for an LDAP address; RFC 3463 "directory server failure".
        assert reply.startswith("451 4.4.3"), reply
    finally:
        slapd.start()
    assert _imap_login(roost, "user6@" + d, "pw-6").startswith("OK")
    assert _rcpt(roost, "u8.alt@" + d).startswith("250")


def test_rcpt_while_ldap_is_down_is_a_directory_failure(roost, slapd):
    d = slapd.domain
    local = "rcpt-%s@%s" % (uuid.uuid4().hex[:8], d)
    roost.cli("user", "add", local, input="local-pw\n", check=True)
    unknown = "nobody-%s@%s" % (uuid.uuid4().hex[:8], d)
    slapd.stop()
    try:
        time.sleep(0.5)
        # Never looked up before (nothing cached): a user, an alternate
        # address, and one LDAP would not know: none may get 550 now.
        for addr in ("user30@" + d, "u31.alt@" + d, unknown):
            reply = _rcpt(roost, addr)
            assert reply.startswith("451 4.4.3 "), (addr, reply)
        # An account in the store is found without asking LDAP.
        assert _rcpt(roost, local).startswith("250")
    finally:
        slapd.start()
    assert _rcpt(roost, "user30@" + d).startswith("250")
    assert _rcpt(roost, "u31.alt@" + d).startswith("250")
    assert _rcpt(roost, unknown).startswith("550 5.1.1")


# ---- addresses and groups ----

def test_mail_to_alternate_address_provisions_and_delivers(roost, slapd):
    user = "user1@" + slapd.domain
    assert account(roost, user) is None
    r = deliver(roost, "alice.smith@" + slapd.domain, "user1+tag@" + slapd.domain)
    assert r.returncode == 0, r.stderr
    assert inbox_count(roost, "alice@" + slapd.domain) >= 1
    assert account(roost, user)[1] == "ldap"  # provisioned by mail
    assert inbox_count(roost, user) == 1


def test_group_delivery_with_nesting_and_a_loop(roost, slapd):
    d = slapd.domain
    before = {u: (inbox_count(roost, "%s@%s" % (u, d)) if account(roost, "%s@%s" % (u, d)) else 0)
              for u in ("alice", "bob", "carol")}
    r = deliver(roost, "staff@" + d)  # staff -> alice, eng -> bob, staff (loop)
    assert r.returncode == 0, r.stderr
    assert inbox_count(roost, "alice@" + d) == before["alice"] + 1
    assert inbox_count(roost, "bob@" + d) == before["bob"] + 1
    carol = account(roost, "carol@" + d)
    assert carol is None or inbox_count(roost, "carol@" + d) == before["carol"]


def test_unknown_address_is_refused(roost, slapd):
    r = deliver(roost, "nobody@" + slapd.domain)
    assert r.returncode == 67


# ---- TLS and failover ----

def test_starttls_and_ldaps_verify_the_ca(openldap, slapd):
    r = openldap
    ldap_set(r, {"urls": slapd.url, "starttls": "yes", "ca_file": slapd.ca_file})
    assert r.cli("ldap", "test").returncode == 0
    assert login(r, "bob", "bob-pw").returncode == 0
    ldap_set(r, {"urls": slapd.ldaps_url, "ca_file": slapd.ca_file})
    assert r.cli("ldap", "test").returncode == 0
    assert login(r, "bob", "bob-pw").returncode == 0
    for url in (slapd.url, slapd.ldaps_url):
        ldap_set(r, {"urls": url, "ca_file": slapd.wrong_ca_file, "tls_verify": "yes"})
        t = r.cli("ldap", "test")
        assert t.returncode == 75, (url, t.stdout, t.stderr)
        # The login is a temporary failure, never a success or a wrong "no".
        t = login(r, "bob", "bob-pw")
        assert t.returncode == 75 and "temporary failure" in t.stdout
    ldap_set(r, {"urls": slapd.ldaps_url, "ca_file": slapd.wrong_ca_file, "tls_verify": "no"})
    assert r.cli("ldap", "test").returncode == 0


def test_failover_to_the_next_url(openldap, slapd):
    dead = "ldap://127.0.0.1:%d" % free_port()
    ldap_set(openldap, {"urls": "%s %s" % (dead, slapd.url)})
    assert login(openldap, "bob", "bob-pw").returncode == 0


def test_directory_down_then_back(roost, slapd):
    d = slapd.domain
    slapd.stop()
    try:
        r = login(roost, "bob@" + d, "bob-pw")
        assert r.returncode == 75 and "temporary failure" in r.stdout
        r = login(roost, "bob", "wrong")
        assert r.returncode == 75
        r = deliver(roost, "user7@" + d)  # never seen: must be "try later"
        assert r.returncode == 75, r.stderr
        # Local accounts still work while LDAP is down.
        assert login(roost, "postmaster@" + d, "local-secret").returncode == 0
    finally:
        slapd.start()
    assert login(roost, "bob@" + d, "bob-pw").returncode == 0
    assert deliver(roost, "user7@" + d).returncode == 0


# ---- sync ----

def test_sync_disables_removed_users_and_copies_changes(roost, slapd):
    d = slapd.domain
    assert login(roost, "carol", "carol-pw").returncode == 0
    assert deliver(roost, "carol@" + d).returncode == 0
    slapd.delete("dc=example,dc=test", "uid=carol,ou=people,dc=example,dc=test")
    slapd.modify("dc=example,dc=test",
                 "dn: uid=bob,ou=people,dc=example,dc=test\nchangetype: modify\n"
                 "replace: cn\ncn: Robert Brown\n")
    slapd.modify("dc=example,dc=test",
                 "dn: uid=alice,ou=people,dc=example,dc=test\nchangetype: modify\n"
                 "replace: mailQuota\nmailQuota: 2000000\n")
    r = roost.cli("ldap", "sync", check=True)
    assert "disabled 1" in r.stdout
    carol = account(roost, "carol@" + d)
    assert carol[5] is True
    assert inbox_count(roost, "carol@" + d) == 1  # stored mail kept
    assert deliver(roost, "carol@" + d).returncode == 67
    assert _rcpt(roost, "carol@" + d).startswith("550 5.1.1")
    assert login(roost, "carol", "carol-pw").returncode == 1
    assert account(roost, "bob@" + d)[6] == "Robert Brown"
    assert account(roost, "alice@" + d)[7] == 2000000
    # A second pass changes nothing.
    assert "disabled 0" in roost.cli("ldap", "sync", check=True).stdout


def test_sync_runs_every_interval_in_the_server(openldap, slapd):
    r, d = openldap, slapd.domain
    if "event=ldap_sync_started" not in r.log_text():
        pytest.skip("roost serve does not start the LDAP sync thread (core/cli-serve.c)")
    assert login(r, "user9", "pw-9").returncode == 0
    slapd.modify("dc=example,dc=test",
                 "dn: uid=user9,ou=people,dc=example,dc=test\nchangetype: modify\n"
                 "replace: cn\ncn: Renamed Nine\n")
    ldap_set(r, {"sync_interval": "1"})
    deadline = time.time() + 15
    while time.time() < deadline and account(r, "user9@" + d)[6] != "Renamed Nine":
        time.sleep(0.2)
    assert account(r, "user9@" + d)[6] == "Renamed Nine"
    assert "event=ldap_sync result=ok" in r.log_text()
    ldap_set(r, {"sync_interval": "900"})


def test_sync_with_directory_down_disables_nobody(roost, slapd):
    slapd.stop()
    try:
        r = roost.cli("ldap", "sync")
        assert r.returncode == 75
    finally:
        slapd.start()
    assert roost.psql("SELECT count(*) FROM accounts WHERE source = 'ldap' AND disabled "
                      "AND address <> 'carol@%s'" % slapd.domain)[0][0] == 0


# ---- Active Directory preset ----

def test_active_directory_preset(openldap, slapd):
    r, d = openldap, slapd.ad_domain
    ldap_set(r, slapd.settings_ad())
    t = r.cli("ldap", "test", "erin", check=True)
    assert "alternate: erin.alt@%s" % d in t.stdout and "X500" not in t.stdout
    assert "name: Erin Jones" in t.stdout
    out = login(r, "erin", "erin-pw")
    assert out.returncode == 0 and "admin=yes" in out.stdout, out.stdout
    assert login(r, "erin@" + d, "erin-pw").returncode == 0  # userPrincipalName
    assert login(r, "ERIN", "wrong").returncode == 1
    out = login(r, "frank", "frank-pw")  # userAccountControl 514
    assert out.returncode == 1 and "login: disabled" in out.stdout
    assert login(r, "ws1", "ws-pw").returncode == 1  # a computer account
    out = deliver(r, "erin.alt@" + d)
    assert out.returncode == 0, out.stderr
    out = deliver(r, "sales@" + d)
    assert out.returncode == 0, out.stderr
    assert inbox_count(r, "erin@" + d) == 2
    assert deliver(r, "frank@" + d).returncode == 67

