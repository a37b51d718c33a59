"""Starts a fresh roost (and, when Debian's slapd is installed, a slapd of
tests/integration/ldap_fixture.py for ldap.mjs) for the browser tests, runs
every tests/browser/*.mjs against it, then checks that the account the browser made receives mail
(over SMTP and IMAP when this build serves them, else through `roost
deliver` and the API). Prints "N passed, N failed" last."""
import glob
import http.client
import json
import os
import re
import smtplib
import imaplib
import ssl
import subprocess
import sys
import tempfile
import shutil
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("ROOST_BIN", os.path.join(ROOT, "build", "roost"))
import conftest  # noqa: E402  (the integration tests' Roost installation class)
import ldap_fixture  # noqa: E402  (a real slapd for ldap.mjs)

conftest.ROOST_BIN = os.environ["ROOST_BIN"]


def api(port, method, path, body=None, cookie=None, csrf=None):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context(),
                                       timeout=30)
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    if csrf:
        headers["X-CSRF-Token"] = csrf
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    cookie_out = (r.getheader("Set-Cookie") or "").split(";")[0]
    conn.close()
    return r.status, json.loads(data or b"{}"), cookie_out


def served(roost, proto):
    return ("listener_not_bound proto=%s " % proto) not in roost.log_text()


def mail_step(roost, handoff):
    """The browser's new account gets a message and reads it."""
    user, password = handoff["user"], handoff["password"]
    subject = "Welcome %s" % uuid.uuid4().hex[:8]
    msg = "From: boss@%s\r\nTo: %s\r\nSubject: %s\r\n\r\nHello from the test.\r\n" % (
        handoff["domain"], user, subject)
    if served(roost, "smtp") and served(roost, "imap"):
        with smtplib.SMTP("127.0.0.1", roost.ports["smtp"], timeout=30) as s:
            s.sendmail("boss@remote.example", [user], msg)
        im = imaplib.IMAP4("127.0.0.1", roost.ports["imap"], timeout=30)
        im.login(user, password)
        im.select("INBOX")
        typ, data = im.search(None, "ALL")
        ids = data[0].split()
        typ, got = im.fetch(ids[-1], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        im.logout()
        assert subject.encode() in got[0][1], got
        return "SMTP in, IMAP read"
    r = roost.cli("deliver", user, input=msg)
    assert r.returncode == 0, r.stderr
    st, me, cookie = api(roost.ports["https"], "POST", "/api/v1/session",
                         {"address": user, "password": password})
    assert st == 200, me
    st, me, _ = api(roost.ports["https"], "GET", "/api/v1/me", cookie=cookie)
    assert st == 200 and me["used_bytes"] > 0, me
    return "roost deliver in, API shows %d bytes used" % me["used_bytes"]


def start_slapd(base):
    """A real directory for ldap.mjs: (slapd, env) or (None, {}) when slapd
    is not installed or does not start (ldap.mjs then tests the failure)."""
    if not os.path.exists(ldap_fixture.SLAPD):
        return None, {}
    tag = uuid.uuid4().hex[:8]
    try:
        s = ldap_fixture.Slapd("corp-%s.test" % tag, "ad-%s.test" % tag, base_dir=base).start()
    except RuntimeError as e:
        print("# no slapd for ldap.mjs: %s" % e)
        return None, {}
    return s, {"ROOST_LDAP_URL": s.url, "ROOST_LDAP_BIND_DN": "cn=roost,dc=example,dc=test",
               "ROOST_LDAP_BIND_PW": ldap_fixture.SERVICE_PW,
               "ROOST_LDAP_BASE": "ou=people,dc=example,dc=test", "ROOST_LDAP_DOMAIN": s.domain,
               "ROOST_LDAP_CA": s.ca_file}


def main():
    base = tempfile.mkdtemp(prefix="roost-browser-")
    os.chmod(base, 0o755)
    roost = conftest.Roost(base, "browser")
    slapd = None
    passed = failed = 0
    try:
        roost.start()
        slapd, ldap_env = start_slapd(base)
        domain = "admin-%s.example" % uuid.uuid4().hex[:6]
        admin, password = "boss@" + domain, "boss-" + uuid.uuid4().hex
        roost.cli("domain", "add", domain, check=True)
        roost.cli("user", "add", admin, "--name", "Office Manager", input=password + "\n", check=True)
        roost.cli("admin", "add", admin, check=True)
        shots = os.path.join(ROOT, "test-output", "screenshots")
        handoff = os.path.join(base, "handoff.json")
        env = dict(os.environ, ROOST_URL="https://127.0.0.1:%d" % roost.ports["https"],
                   ROOST_ADMIN=admin, ROOST_PASSWORD=password, SCREENSHOT_DIR=shots,
                   ROOST_HANDOFF=handoff, ROOST_LDAP_CLOSED_URL="ldap://127.0.0.1:%d" % conftest.free_port(),
                   **ldap_env)
        for spec in sorted(glob.glob(os.path.join(HERE, "*.mjs"))):
            p = subprocess.run(["node", spec], cwd=HERE, env=env, capture_output=True, text=True,
                               timeout=600)
            sys.stdout.write(p.stdout)
            sys.stderr.write(p.stderr)
            m = re.findall(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
            if m:
                passed += int(m[-1][0])
                failed += int(m[-1][1])
            if not m or p.returncode != 0 and int(m[-1][1]) == 0:
                print("FAIL - %s did not finish (exit %d)" % (os.path.basename(spec), p.returncode))
                failed += 1
        # Whatever ldap.mjs left behind, the mail step is about local accounts.
        roost.cli("ldap", "set", "urls=")
        try:
            how = mail_step(roost, json.load(open(handoff)))
            print("ok - the new account receives and reads a message (%s)" % how)
            passed += 1
        except Exception as e:  # noqa: BLE001  (any failure is this test's)
            print("FAIL - the new account receives and reads a message: %r" % (e,))
            failed += 1
    finally:
        if slapd is not None:
            slapd.cleanup()
        rc = roost.stop()
        if rc not in (0, None):
            print("FAIL - roost serve exited with %s" % rc)
            failed += 1
        if failed and os.environ.get("ROOST_KEEP_TEST_DIR") != "1":
            sys.stdout.write(roost.log_text()[-3000:])
        shutil.rmtree(base, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
