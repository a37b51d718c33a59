"""The LDAP page of the browser administration (/api/v1/ldap, docs/api.md)
against a real slapd (ldap_fixture.py): roles and CSRF, the bind password
never coming back, settings, "test connection", "sync now", and validation
errors naming the field."""
import json
import uuid

import pytest

from conftest import Roost
from ldap_fixture import SERVICE_PW, free_port, stop_roost
from test_ldap import slapd  # noqa: F401  (the module's own slapd, as a fixture)
from test_webadmin_api import Client


def uid():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def roost(base_dir, slapd):
    """An installation of its own: LDAP settings are shared by every
    process on a database, so the shared server is left alone."""
    r = Roost(base_dir, "waldap-" + uid())
    r.start()
    r.local = "local-%s.test" % uid()
    for d in (slapd.domain, r.local):
        r.cli("domain", "add", d, check=True)
    r.admin_addr, r.admin_pw = "boss@" + r.local, "pw-" + uid()
    r.user_addr, r.user_pw = "staff@" + r.local, "pw-" + uid()
    for a, pw in ((r.admin_addr, r.admin_pw), (r.user_addr, r.user_pw)):
        r.cli("user", "add", a, input=pw + "\n", check=True)
    r.cli("admin", "add", r.admin_addr, check=True)
    yield r
    stop_roost(r)


@pytest.fixture(scope="module")
def admin(roost):
    c = Client(roost.ports["https"])
    assert c.sign_in(roost.admin_addr, roost.admin_pw)[0] == 200
    return c


def settings_of(body):
    return {s["key"]: s for s in body["settings"]}


def configure(admin, slapd, **over):
    body = slapd.settings_openldap(**over)
    st, out = admin.call("PUT", "/api/v1/ldap", body)
    assert st == 200, out
    return out


ENDPOINTS = [("GET", "/api/v1/ldap"), ("PUT", "/api/v1/ldap"), ("POST", "/api/v1/ldap"),
             ("POST", "/api/v1/ldap/test"), ("POST", "/api/v1/ldap/sync")]


def test_without_session_refused(roost):
    c = Client(roost.ports["https"])
    for method, path in ENDPOINTS:
        body = None if method == "GET" else {}
        assert c.call(method, path, body)[0] == 401, (method, path)


def test_user_role_refused(roost):
    c = Client(roost.ports["https"])
    assert c.sign_in(roost.user_addr, roost.user_pw)[0] == 200
    for method, path in ENDPOINTS:
        st, body = c.call(method, path, None if method == "GET" else {})
        assert st == 403 and "administrator" in body["error"], (method, path)


def test_changes_need_csrf_token(admin):
    for method, path in ENDPOINTS[1:]:
        st, body = admin.call(method, path, {"urls": ""}, csrf=False)
        assert st == 403 and "CSRF" in body["error"], (method, path)


def test_off_by_default(admin):
    st, body = admin.call("GET", "/api/v1/ldap")
    assert st == 200
    assert body["enabled"] is False and body["bind_password"] == "not set"
    s = settings_of(body)
    assert s["urls"]["value"] == "" and s["urls"]["default"] is True
    assert s["user_filter"]["value"] == "(objectClass=inetOrgPerson)"
    assert s["bind_password"]["secret"] is True and s["bind_password"]["value"] == "not set"
    assert all(x["help"] for x in body["settings"])


def test_test_and_sync_refused_while_off(admin):
    for path in ("/api/v1/ldap/test", "/api/v1/ldap/sync"):
        st, body = admin.call("POST", path, {})
        assert st == 400 and body["field"] == "urls", path


def test_set_never_returns_the_password(roost, admin, slapd):
    body = configure(admin, slapd)
    raw = json.dumps(body)
    assert SERVICE_PW not in raw
    assert body["enabled"] is True and body["bind_password"] == "set"
    s = settings_of(body)
    assert s["urls"]["value"] == slapd.url and s["urls"]["default"] is False
    assert s["bind_dn"]["value"] == "cn=roost,dc=example,dc=test"
    assert s["bind_password"]["value"] == "set"
    st, r, data = admin.raw("GET", "/api/v1/ldap")
    assert st == 200 and SERVICE_PW.encode() not in data
    assert SERVICE_PW not in roost.log_text()


def test_empty_or_omitted_password_keeps_the_stored_one(admin, slapd):
    for body in ({"bind_password": "", "timeout": "3"}, {"timeout": 2}):
        st, out = admin.call("POST", "/api/v1/ldap", body)
        assert st == 200 and out["bind_password"] == "set"
    assert settings_of(out)["timeout"]["value"] == "2"
    # The password still works: the service bind succeeds.
    st, out = admin.call("POST", "/api/v1/ldap/test", {})
    assert st == 200 and out["ok"] is True, out


def test_connection_test_reports_the_user(admin):
    st, out = admin.call("POST", "/api/v1/ldap/test", {"login": "alice"})
    assert st == 200 and out["ok"] is True, out
    assert "dn: uid=alice,ou=people,dc=example,dc=test" in out["report"]
    assert "a.smith@" in out["report"]
    st, out = admin.call("POST", "/api/v1/ldap/test")
    assert st == 200 and out["ok"] is True and "error" not in out


def test_connection_test_unknown_user(admin):
    st, out = admin.call("POST", "/api/v1/ldap/test", {"login": "nobody-" + uid()})
    assert st == 200 and out["ok"] is False and out["error"]
    assert "error: " in out["report"]


def test_connection_test_wrong_password_and_unreachable(admin, slapd):
    configure(admin, slapd, bind_password="wrong")
    st, out = admin.call("POST", "/api/v1/ldap/test", {})
    assert st == 200 and out["ok"] is False and out["error"], out
    configure(admin, slapd, urls="ldap://127.0.0.1:%d" % free_port())
    st, out = admin.call("POST", "/api/v1/ldap/test", {})
    assert st == 200 and out["ok"] is False and out["error"], out
    assert "error: " in out["report"]
    configure(admin, slapd)


def test_preset_active_directory_then_openldap(admin, slapd):
    st, out = admin.call("PUT", "/api/v1/ldap", {"preset": "ad"})
    assert st == 200
    s = settings_of(out)
    assert s["alt_attrs"]["value"] == "proxyAddresses" and s["alt_prefix"]["value"] == "smtp:"
    assert s["disabled_attr"]["value"] == "userAccountControl"
    # Keys sent with the preset win over it.
    st, out = admin.call("PUT", "/api/v1/ldap", {"name_attr": "cn", "preset": "openldap"})
    s = settings_of(out)
    assert st == 200 and s["alt_attrs"]["value"] == "mailLocalAddress"
    assert s["name_attr"]["value"] == "cn"


def test_sync_disables_a_removed_user(roost, admin, slapd):
    bob = "bob@" + slapd.domain
    out = roost.cli("ldap", "test", bob, "--password", input="bob-pw\n")
    assert out.returncode == 0, out.stdout + out.stderr
    st, body = admin.call("POST", "/api/v1/ldap/sync", {})
    assert st == 200 and body["checked"] >= 1 and body["disabled"] == 0, body
    assert set(body) == {"checked", "updated", "disabled", "enabled"}
    slapd.delete("dc=example,dc=test", "uid=bob,ou=people,dc=example,dc=test")
    st, body = admin.call("POST", "/api/v1/ldap/sync", {})
    assert st == 200 and body["disabled"] == 1, body
    assert roost.psql("SELECT disabled FROM accounts WHERE address = '%s'" % bob)[0][0] in (
        "t", True)
    # The directory gone: the sync says why and changes nothing.
    configure(admin, slapd, urls="ldap://127.0.0.1:%d" % free_port())
    st, body = admin.call("POST", "/api/v1/ldap/sync", {})
    assert st == 503 and body["error"], body
    configure(admin, slapd)


@pytest.mark.parametrize("body,field", [
    ({"urls": "http://example.com"}, "urls"),
    ({"starttls": "maybe"}, "starttls"),
    ({"timeout": "0"}, "timeout"),
    ({"timeout": "ten"}, "timeout"),
    ({"pool_size": 65}, "pool_size"),
    ({"user_filter": "objectClass=person"}, "user_filter"),
    ({"preset": "novell"}, "preset"),
    ({"no_such_key": "x"}, "no_such_key"),
    ({"base_dn": ["dc=x"]}, "base_dn"),
    ({"base_dn": "x" * 5000}, "base_dn"),
    ({"bind_dn": "cn=a\nb"}, "bind_dn"),
    ({"login": 5}, "login"),
])
def test_invalid_values_name_the_field(admin, body, field):
    st, out = admin.call("PUT", "/api/v1/ldap", body)
    assert st == 400 and out["field"] == field, out
    # Nothing was stored: all or nothing.
    assert admin.call("GET", "/api/v1/ldap")[1]["enabled"] is True


def test_test_login_must_be_a_string(admin):
    st, out = admin.call("POST", "/api/v1/ldap/test", {"login": 5})
    assert st == 400 and out["field"] == "login"
    st, out = admin.call("POST", "/api/v1/ldap/test", [1])
    assert st == 400


def test_not_json_refused(admin):
    st, r, data = admin.raw("PUT", "/api/v1/ldap", "{", {
        "Content-Type": "application/json", "X-CSRF-Token": admin.csrf})
    assert st == 400
    assert admin.call("GET", "/api/v1/ldap")[0] == 200


# ---- [http] settings: sign-in limits and session lifetimes ----

def test_signin_limits_and_session_lifetime_are_settings(fresh):
    r = fresh(extra={"limits.auth_failure_delay_ms": "0", "http.signin_failures_per_account": "2",
                     "http.signin_window": "2m", "http.session_max_age": "10m"}).start()
    try:
        r.cli("domain", "add", "t.example", check=True)
        r.cli("user", "add", "a@t.example", input="right\n", check=True)
        c = Client(r.ports["https"])
        assert c.sign_in("a@t.example", "right")[0] == 200
        assert "Max-Age=600" in c.set_cookie
        for _ in range(2):
            assert c.sign_in("a@t.example", "wrong")[0] == 401
        st, r_, data = c.raw("POST", "/api/v1/session",
                             json.dumps({"address": "a@t.example", "password": "right"}),
                             {"Content-Type": "application/json"})
        assert st == 429 and r_.getheader("Retry-After") == "120"
        assert "2 minutes" in json.loads(data)["error"]
    finally:
        r.stop()


def test_session_settings_out_of_range_refused(fresh):
    r = fresh(extra={"http.session_idle_timeout": "10s"})
    out = r.cli("config", "check")
    assert out.returncode != 0 and "session_idle_timeout" in (out.stdout + out.stderr)
