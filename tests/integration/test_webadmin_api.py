"""Browser administration API (/api/v1, docs/api.md) over real HTTPS:
sessions, roles, CSRF, validation errors naming the field, limits, and the
first-run setup link."""
import http.client
import json
import re
import ssl
import uuid

import pytest

CTX = ssl._create_unverified_context()


class Client:
    """One browser: keeps the session cookie and the CSRF token."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def raw(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=CTX, timeout=60)
        h = dict(headers or {})
        if self.cookie and "Cookie" not in h:
            h["Cookie"] = self.cookie
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r, data

    def call(self, method, path, body=None, csrf=True, headers=None):
        h = {"Content-Type": "application/json"}
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        status, r, data = self.raw(method, path, json.dumps(body) if body is not None else None, h)
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, data.decode("utf-8", "replace")

    def sign_in(self, address, password):
        status, r, data = self.raw("POST", "/api/v1/session",
                                   json.dumps({"address": address, "password": password}),
                                   {"Content-Type": "application/json"})
        if status == 200:
            self.set_cookie = r.getheader("Set-Cookie")
            self.cookie = self.set_cookie.split(";")[0]
            self.csrf = json.loads(data)["csrf_token"]
        return status, json.loads(data)


def uid():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def admin(server):
    """A domain and an administrator of our own on the shared server."""
    dom = "wa-%s.example" % uid()
    addr, pw = "boss@" + dom, "pw-" + uid()
    server.cli("domain", "add", dom, check=True)
    server.cli("user", "add", addr, input=pw + "\n", check=True)
    server.cli("admin", "add", addr, check=True)
    c = Client(server.ports["https"])
    assert c.sign_in(addr, pw)[0] == 200
    c.domain, c.address, c.password = dom, addr, pw
    return c


def still_serves(server):
    st, body = Client(server.ports["https"]).call("GET", "/healthz")
    assert st == 200 and body["status"] == "ok"


# ---- the page ----

def test_ui_is_served_with_security_headers(server):
    c = Client(server.ports["https"])
    for path, ctype in [("/", "text/html"), ("/ui/app.js", "text/javascript"),
                        ("/ui/app.css", "text/css")]:
        st, r, data = c.raw("GET", path)
        assert st == 200 and r.getheader("Content-Type").startswith(ctype), path
        assert "script-src 'self'" in r.getheader("Content-Security-Policy")
        assert "frame-ancestors 'none'" in r.getheader("Content-Security-Policy")
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        assert r.getheader("Strict-Transport-Security")
    st, r, page = c.raw("GET", "/")
    assert b"<script>" not in page and b"http://" not in page and b"https://" not in page
    assert c.raw("GET", "/ui/missing.js")[0] == 404
    assert c.raw("GET", "/ui/index.html")[0] == 404


def test_unknown_route_and_method(admin):
    assert admin.call("GET", "/api/v1/nothing-here")[0] == 404
    assert admin.call("PUT", "/api/v1/domains", {})[0] == 405
    assert admin.call("GET", "/api/v1/accounts/a/b/c")[0] == 404


# ---- sessions ----

def test_cookie_attributes(admin):
    c = admin.set_cookie
    assert c.startswith("__Host-roost_session=")
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attr in c


ADMIN_ENDPOINTS = [
    ("GET", "/api/v1/status"), ("GET", "/api/v1/stats/hourly"), ("GET", "/api/v1/domains"),
    ("POST", "/api/v1/domains"), ("DELETE", "/api/v1/domains/x.example"),
    ("GET", "/api/v1/domains/x.example/dns"), ("GET", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts"), ("GET", "/api/v1/accounts/a@x.example"),
    ("PATCH", "/api/v1/accounts/a@x.example"), ("DELETE", "/api/v1/accounts/a@x.example"),
    ("GET", "/api/v1/aliases"), ("POST", "/api/v1/aliases"),
    ("DELETE", "/api/v1/aliases/a@x.example"),
    ("DELETE", "/api/v1/aliases/a@x.example/targets/b@x.example"),
]


@pytest.mark.parametrize("method,path", ADMIN_ENDPOINTS + [
    ("GET", "/api/v1/session"), ("DELETE", "/api/v1/session"), ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password")])
def test_no_session_is_refused(server, method, path):
    st, body = Client(server.ports["https"]).call(method, path, {} if method != "GET" else None)
    assert st == 401 and body["error"] == "sign in required"


def test_forged_and_malformed_cookies_are_refused(server):
    c = Client(server.ports["https"])
    for cookie in ["__Host-roost_session=" + "a" * 64, "__Host-roost_session=xyz",
                   "__Host-roost_session=" + "a" * 5000, "other=1; __Host-roost_session=;",
                   "__Host-roost_session=" + "g" * 64]:
        c.cookie = cookie
        assert c.call("GET", "/api/v1/me")[0] == 401, cookie
    still_serves(server)


def test_csrf_token_required_on_every_change(admin):
    name = "csrf-%s.example" % uid()
    st, body = admin.call("POST", "/api/v1/domains", {"name": name}, csrf=False)
    assert st == 403 and "CSRF" in body["error"]
    st, _ = admin.call("POST", "/api/v1/domains", {"name": name}, csrf=False,
                       headers={"X-CSRF-Token": "0" * 64})
    assert st == 403
    st, _ = admin.call("DELETE", "/api/v1/session", csrf=False)
    assert st == 403
    assert admin.call("GET", "/api/v1/domains", csrf=False)[0] == 200  # reads need none
    assert admin.call("POST", "/api/v1/domains", {"name": name})[0] == 201


def test_sign_in_refusals(server, admin):
    c = Client(server.ports["https"])
    st, r, data = c.raw("POST", "/api/v1/session", "address=a&password=b",
                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 415  # what a cross-site form could send
    st, r, data = c.raw("POST", "/api/v1/session", json.dumps({"address": admin.address,
                                                                "password": admin.password}),
                        {"Content-Type": "application/json", "Origin": "https://evil.example"})
    assert st == 403
    st, body = c.call("POST", "/api/v1/session", {"address": admin.address})
    assert st == 400 and body["field"] == "password"
    st, body = c.call("POST", "/api/v1/session", {"address": admin.address, "password": "wrong"})
    assert st == 401 and body["error"] == "wrong address or password"
    st, body = c.call("POST", "/api/v1/session", {"address": "nobody@" + admin.domain,
                                                  "password": "wrong"})
    assert st == 401 and body["error"] == "wrong address or password"


@pytest.mark.parametrize("body,needle", [
    (b"{", "invalid JSON"), (b"[1,2]", "JSON object"), (b"", "JSON object"),
    (b'{"name": "a", "name": "b"}', "invalid JSON"), (b"\xff\xfe", "invalid JSON"),
    (b'{"name": 5}', "name must be a string"), (b'{"name": "a\\u0000b"}', "invalid JSON"),
    (b'{"name": "a\\nb.example"}', "control"),
])
def test_invalid_json_bodies(admin, server, body, needle):
    st, r, data = admin.raw("POST", "/api/v1/domains", body,
                            {"Content-Type": "application/json", "X-CSRF-Token": admin.csrf})
    assert st == 400, data
    assert needle in json.loads(data)["error"]
    still_serves(server)


def test_oversized_body(admin, server):
    """Refused from Content-Length alone, before the body is sent."""
    import socket
    raw = socket.create_connection(("127.0.0.1", server.ports["https"]), timeout=30)
    tls = CTX.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(("POST /api/v1/domains HTTP/1.1\r\nHost: localhost\r\nCookie: %s\r\n"
                 "X-CSRF-Token: %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n" % (admin.cookie, admin.csrf, 2 << 20)).encode())
    head = tls.recv(4096).decode("latin-1")
    tls.close()
    assert head.startswith("HTTP/1.1 413"), head
    still_serves(server)


def test_sign_out_ends_the_session(server, admin):
    c = Client(server.ports["https"])
    assert c.sign_in(admin.address, admin.password)[0] == 200
    old = c.cookie
    assert c.call("DELETE", "/api/v1/session")[0] == 200
    c.cookie = old
    assert c.call("GET", "/api/v1/session")[0] == 401


def test_expired_session(server, admin):
    c = Client(server.ports["https"])
    assert c.sign_in(admin.address, admin.password)[0] == 200
    assert c.call("GET", "/api/v1/me")[0] == 200
    server.psql("UPDATE web_sessions SET expires_at = now() - interval '1 second' "
                "WHERE csrf_token = '%s'" % c.csrf)
    assert c.call("GET", "/api/v1/me")[0] == 401


# ---- roles ----

@pytest.fixture(scope="module")
def user(server, admin):
    addr, pw = "clerk-%s@%s" % (uid(), admin.domain), "pw-" + uid()
    st, body = admin.call("POST", "/api/v1/accounts",
                          {"address": addr, "password": pw, "quota_bytes": "10M"})
    assert st == 201, body
    c = Client(server.ports["https"])
    assert c.sign_in(addr, pw)[0] == 200
    c.address, c.password = addr, pw
    return c


@pytest.mark.parametrize("method,path", ADMIN_ENDPOINTS)
def test_ordinary_user_is_refused_admin_endpoints(user, method, path):
    st, body = user.call(method, path, {} if method != "GET" else None)
    assert st == 403 and body["error"] == "administrator role required"


def test_ordinary_user_own_page(user):
    st, me = user.call("GET", "/api/v1/me")
    assert st == 200 and me["address"] == user.address and not me["admin"]
    assert me["quota_bytes"] == 10 * 1024 * 1024 and me["used_bytes"] == 0
    st, body = user.call("POST", "/api/v1/me/password",
                         {"current_password": "wrong", "new_password": "x"})
    assert st == 400 and body["field"] == "current_password"
    st, body = user.call("POST", "/api/v1/me/password", {"current_password": user.password})
    assert st == 400 and body["field"] == "new_password"
    new = "new-" + uid()
    st, _ = user.call("POST", "/api/v1/me/password",
                      {"current_password": user.password, "new_password": new})
    assert st == 200
    assert user.call("GET", "/api/v1/me")[0] == 200  # this session stays
    user.password = new
    assert Client(user.port).sign_in(user.address, new)[0] == 200


def test_metrics_on_loopback_and_for_admins(server, admin):
    st, text = Client(server.ports["https"]).call("GET", "/metrics")
    assert st == 200
    for name in ("roost_connections_open{protocol=\"https\"}", "roost_messages_received_24h",
                 "roost_queue_messages", "roost_http_auth_failures_total", "roost_uptime_seconds"):
        assert name in text
    assert re.search(r"^roost_storage_used_bytes \d+$", text, re.M)
    assert admin.call("GET", "/metrics")[0] == 200


# ---- domains, accounts, aliases ----

def test_domains_add_dns_and_remove_with_confirmation(admin):
    name = "Dom-%s.Example" % uid()
    st, body = admin.call("POST", "/api/v1/domains", {"name": name})
    assert st == 201 and body["name"] == name.lower()
    st, body = admin.call("POST", "/api/v1/domains", {"name": name})
    assert st == 409 and body["field"] == "name"
    st, body = admin.call("POST", "/api/v1/domains", {"name": "not a domain"})
    assert st == 400 and body["field"] == "name"
    st, body = admin.call("POST", "/api/v1/domains", {})
    assert st == 400 and body["field"] == "name"
    st, dns = admin.call("GET", "/api/v1/domains/%s/dns" % name.lower())
    assert st == 200
    # The same records as `roost domain dns` prints, in the same order.
    recs = [(r["name"], r["type"], r["value"]) for r in dns["records"]]
    dom = name.lower()
    assert recs[0] == (dom + ".", "MX", "10 mail.test.example.")
    assert recs[1] == (dom + ".", "TXT", "v=spf1 mx -all")
    dkim = dns["records"][2]
    assert dkim["name"] == "%s._domainkey.%s." % (dkim["selector"], dom)
    assert dkim["algorithm"] == "rsa-sha256" and dkim["value"].startswith("v=DKIM1; k=rsa; p=")
    assert recs[3] == ("_dmarc.%s." % dom, "TXT", "v=DMARC1; p=none; rua=mailto:postmaster@" + dom)
    assert len(recs) == 4
    assert admin.call("GET", "/api/v1/domains/unknown-%s.example/dns" % uid())[0] == 404
    addr = "a@" + name.lower()
    assert admin.call("POST", "/api/v1/accounts", {"address": addr, "password": "p1"})[0] == 201
    st, body = admin.call("DELETE", "/api/v1/domains/" + name.lower())
    assert st == 400 and body["field"] == "confirm"
    st, body = admin.call("DELETE", "/api/v1/domains/%s?confirm=other.example" % name.lower())
    assert st == 400 and body["field"] == "confirm"
    st, body = admin.call("DELETE", "/api/v1/domains/%s?confirm=%s" % (name.lower(), name.lower()))
    assert st == 409 and body["field"] == "force"
    st, _ = admin.call("DELETE", "/api/v1/domains/%s?confirm=%s&force=yes" % (
        name.lower(), name.lower()))
    assert st == 200
    st, doms = admin.call("GET", "/api/v1/domains")
    assert name.lower() not in [d["name"] for d in doms["items"]]


@pytest.mark.parametrize("body,field", [
    ({"password": "x"}, "address"),
    ({"address": "no-at-sign", "password": "x"}, "address"),
    ({"address": "a@unknown-domain.example", "password": "x"}, "address"),
    ({"address": "OK@{dom}"}, "password"),
    ({"address": "ok@{dom}", "password": ""}, "password"),
    ({"address": "ok@{dom}", "password": "x", "quota_bytes": "lots"}, "quota_bytes"),
    ({"address": "ok@{dom}", "password": "x", "quota_bytes": -1}, "quota_bytes"),
    ({"address": "ok@{dom}", "password": "x", "admin": "yes"}, "admin"),
    ({"address": "ok@{dom}", "password": "x", "display_name": "n" * 300}, "display_name"),
])
def test_account_validation_names_the_field(admin, body, field):
    body = {k: v.replace("{dom}", admin.domain) if isinstance(v, str) else v
            for k, v in body.items()}
    st, resp = admin.call("POST", "/api/v1/accounts", body)
    assert st in (400, 404) and resp["field"] == field, resp


def test_accounts_search_sort_page_edit_remove(server, admin):
    dom = "list-%s.example" % uid()
    assert admin.call("POST", "/api/v1/domains", {"name": dom})[0] == 201
    for i in range(30):
        st, _ = admin.call("POST", "/api/v1/accounts", {
            "address": "u%02d@%s" % (i, dom), "password": "p", "display_name": "Person %02d" % (29 - i)})
        assert st == 201
    st, page = admin.call("GET", "/api/v1/accounts?domain=%s&limit=10&offset=10" % dom)
    assert st == 200 and page["total"] == 30 and len(page["items"]) == 10
    assert page["items"][0]["address"] == "u10@" + dom
    st, page = admin.call("GET", "/api/v1/accounts?domain=%s&sort=display_name&order=desc&limit=3" % dom)
    assert [a["display_name"] for a in page["items"]] == ["Person 29", "Person 28", "Person 27"]
    st, page = admin.call("GET", "/api/v1/accounts?q=PERSON%%2007&domain=%s" % dom)
    assert page["total"] == 1 and page["items"][0]["address"] == "u22@" + dom
    for bad, field in [("sort=password", "sort"), ("order=up", "order"), ("limit=100000", "limit"),
                       ("offset=-1", "offset"), ("limit=1x", "limit")]:
        st, body = admin.call("GET", "/api/v1/accounts?" + bad)
        assert st == 400 and body["field"] == field, bad
    addr = "u05@" + dom
    st, acct = admin.call("PATCH", "/api/v1/accounts/" + addr, {
        "display_name": "Renamed", "quota_bytes": "2G", "admin": False})
    assert st == 200 and acct["display_name"] == "Renamed" and acct["quota_bytes"] == 2 << 30
    st, body = admin.call("PATCH", "/api/v1/accounts/" + addr, {"quota_bytes": "2Q"})
    assert st == 400 and body["field"] == "quota_bytes"
    # a reset password and a disabled account end that account's sessions
    c = Client(server.ports["https"])
    assert c.sign_in(addr, "p")[0] == 200
    assert admin.call("PATCH", "/api/v1/accounts/" + addr, {"disabled": True})[0] == 200
    assert c.call("GET", "/api/v1/me")[0] == 401
    assert c.sign_in(addr, "p")[0] == 401
    assert admin.call("PATCH", "/api/v1/accounts/" + addr,
                      {"disabled": False, "password": "p2"})[0] == 200
    assert c.sign_in(addr, "p2")[0] == 200
    st, body = admin.call("DELETE", "/api/v1/accounts/" + addr)
    assert st == 400 and body["field"] == "confirm"
    assert admin.call("DELETE", "/api/v1/accounts/%s?confirm=%s" % (addr, addr))[0] == 200
    assert admin.call("GET", "/api/v1/accounts/" + addr)[0] == 404
    assert admin.call("PATCH", "/api/v1/accounts/nobody@" + dom, {"display_name": "x"})[0] == 404


def test_admin_cannot_lock_themselves_out(admin):
    st, body = admin.call("PATCH", "/api/v1/accounts/" + admin.address, {"admin": False})
    assert st == 400 and body["field"] == "admin"
    st, body = admin.call("PATCH", "/api/v1/accounts/" + admin.address, {"disabled": True})
    assert st == 400 and body["field"] == "disabled"
    st, body = admin.call("DELETE", "/api/v1/accounts/%s?confirm=%s" % (admin.address, admin.address))
    assert st == 400 and body["field"] == "address"
    assert admin.call("GET", "/api/v1/me")[0] == 200


def test_aliases_and_lists(admin):
    alias = "team-%s@%s" % (uid(), admin.domain)
    st, body = admin.call("POST", "/api/v1/aliases", {"address": alias,
                                                      "targets": "a@remote.example, b@remote.example"})
    assert st == 201 and body["added"] == 2
    assert admin.call("POST", "/api/v1/aliases", {"address": alias,
                                                  "targets": ["c@remote.example"]})[0] == 201
    st, body = admin.call("POST", "/api/v1/aliases", {"address": alias, "targets": []})
    assert st == 400 and body["field"] == "targets"
    st, body = admin.call("POST", "/api/v1/aliases", {"address": alias, "targets": [1]})
    assert st == 400 and body["field"] == "targets"
    st, body = admin.call("POST", "/api/v1/aliases", {"address": "x@unknown.example",
                                                      "targets": ["a@b.example"]})
    assert st in (400, 404) and body["field"] == "address"
    st, page = admin.call("GET", "/api/v1/aliases?q=" + alias.split("@")[0])
    assert page["total"] == 1
    assert page["items"][0]["targets"] == ["a@remote.example", "b@remote.example", "c@remote.example"]
    st, _ = admin.call("DELETE", "/api/v1/aliases/%s/targets/b@remote.example" % alias)
    assert st == 200
    assert admin.call("DELETE", "/api/v1/aliases/%s/targets/b@remote.example" % alias)[0] == 404
    assert admin.call("DELETE", "/api/v1/aliases/" + alias)[0] == 400
    assert admin.call("DELETE", "/api/v1/aliases/%s?confirm=%s" % (alias, alias))[0] == 200
    assert admin.call("GET", "/api/v1/aliases?q=" + alias.split("@")[0])[1]["total"] == 0


@pytest.mark.parametrize("burst", ["string", "array"])
def test_alias_targets_over_the_limit(admin, burst):
    alias = "big-%s@%s" % (uid(), admin.domain)
    many = ["t%04d@remote.example" % i for i in range(1500 if burst == "string" else 1001)]
    st, body = admin.call("POST", "/api/v1/aliases", {
        "address": alias, "targets": ", ".join(many) if burst == "string" else many})
    assert st == 400 and body == {"error": "targets: at most 1000 targets at a time",
                                  "field": "targets"}
    assert admin.call("GET", "/api/v1/aliases?q=" + alias.split("@")[0])[1]["total"] == 0
    # the limit itself is accepted, in either form
    st, body = admin.call("POST", "/api/v1/aliases", {
        "address": alias, "targets": ", ".join(many[:1000]) if burst == "string" else many[:1000]})
    assert st == 201 and body["added"] == 1000
    assert admin.call("DELETE", "/api/v1/aliases/%s?confirm=%s" % (alias, alias))[0] == 200


@pytest.mark.parametrize("path,field", [
    ("/api/v1/accounts?q=%ff%fe", "q"),
    ("/api/v1/accounts?domain=%c3%28", "domain"),
    ("/api/v1/accounts?q=%c0%af", "q"),             # overlong "/"
    ("/api/v1/accounts?q=%ed%a0%80", "q"),          # a surrogate
    ("/api/v1/accounts?sort=%ff", "sort"),
    ("/api/v1/aliases?q=%ff", "q"),
    ("/api/v1/aliases?domain=%ff.example", "domain"),
    ("/api/v1/queue?limit=%ff", "limit"),
    ("/api/v1/accounts/%ff%40example.com", "address"),
    ("/api/v1/domains/%ff.example/dns", "name"),
    ("/api/v1/domains?unknown=%ff", "unknown"),     # every argument, read or not
    ("/api/v1/domains?%ff=1", "query"),             # the name itself
])
def test_invalid_utf8_in_query_or_path_is_refused(server, admin, path, field):
    st, body = admin.call("GET", path)
    assert st == 400 and body == {"error": field + " must be valid UTF-8", "field": field}, body
    # not before the session is checked
    assert Client(server.ports["https"]).call("GET", path)[0] == 401
    still_serves(server)


def test_invalid_utf8_under_a_long_name_still_gets_json(admin):
    # The message quotes at most 64 bytes of the name, cut at a character
    # (a cut inside "é" would make the reply no longer JSON).
    name = "a" + "\u00e9" * 40
    quoted = "".join("%%%02x" % b for b in name.encode())
    st, body = admin.call("GET", "/api/v1/domains?%s=%%ff" % quoted)
    assert st == 400, body
    assert body == {"error": "a" + "\u00e9" * 31 + " must be valid UTF-8", "field": name}, body


@pytest.mark.parametrize("method,path,field", [
    ("PATCH", "/api/v1/accounts/a%ff%40example.com", "address"),
    ("DELETE", "/api/v1/accounts/a%40example.com?confirm=%ff", "confirm"),
    ("DELETE", "/api/v1/domains/%ff.example?confirm=%ff.example", "name"),
    ("DELETE", "/api/v1/domains/x.example?confirm=x.example&force=%ff", "force"),
    ("DELETE", "/api/v1/aliases/%ff%40example.com?confirm=%ff%40example.com", "address"),
    ("DELETE", "/api/v1/aliases/a%40example.com/targets/%fe%40remote.example", "target"),
    ("POST", "/api/v1/domains/%ff.example/dkim", "name"),
])
def test_invalid_utf8_in_changes_is_refused(admin, method, path, field):
    st, body = admin.call(method, path, {} if method != "DELETE" else None)
    assert st == 400 and body == {"error": field + " must be valid UTF-8", "field": field}, body


def test_utf8_in_query_is_searched(admin):
    st, page = admin.call("GET", "/api/v1/accounts?q=%c3%a9t%c3%a9&domain=" + admin.domain)
    assert st == 200 and page["total"] == 0
    st, page = admin.call("GET", "/api/v1/aliases?q=%e2%82%ac")
    assert st == 200 and page["total"] == 0


def test_status_and_hourly(server, admin, user):
    msg = "Subject: hi\r\n\r\nbody\r\n"
    assert server.cli("deliver", user.address, input=msg).returncode == 0
    st, s = admin.call("GET", "/api/v1/status")
    assert st == 200 and s["version"] and s["uptime_s"] >= 0
    assert s["connections"]["https"] >= 1 and s["messages_24h"]["received"] >= 1
    assert s["storage"]["used_bytes"] > 0 and s["accounts"] >= 2
    assert "queue_length" in s
    st, h = admin.call("GET", "/api/v1/stats/hourly")
    assert st == 200 and len(h["hours"]) == 24 and sum(x["received"] for x in h["hours"]) >= 1
    assert h["hours"][1]["start"] - h["hours"][0]["start"] == 3600
    st, doms = admin.call("GET", "/api/v1/domains")
    mine = [d for d in doms["items"] if d["name"] == admin.domain][0]
    assert mine["used_bytes"] > 0


def test_queue_endpoints(admin):
    st, q = admin.call("GET", "/api/v1/queue")
    if st == 404:
        pytest.skip("this build has no outbound queue")
    assert st == 200 and "items" in q and "total" in q
    assert admin.call("POST", "/api/v1/queue/999999999/retry", {})[0] == 404
    assert admin.call("POST", "/api/v1/queue/abc/retry", {})[1]["field"] == "id"
    assert admin.call("DELETE", "/api/v1/queue/999999999")[1]["field"] == "confirm"
    assert admin.call("DELETE", "/api/v1/queue/999999999?confirm=999999999")[0] == 404


# ---- own installations: throttling and the setup link ----

def test_failed_sign_ins_are_limited_per_account(fresh):
    r = fresh(extra={"limits.auth_failure_delay_ms": "0"}).start()
    try:
        r.cli("domain", "add", "t.example", check=True)
        r.cli("user", "add", "a@t.example", input="right\n", check=True)
        c = Client(r.ports["https"])
        for _ in range(10):
            assert c.sign_in("a@t.example", "wrong")[0] == 401
        st, body = c.sign_in("a@t.example", "right")
        assert st == 429 and "too many" in body["error"]
        st, text = c.call("GET", "/metrics")
        assert re.search(r"^roost_http_auth_failures_total 10$", text, re.M)
        # and per IP, whatever the account
        for i in range(10):
            assert c.sign_in("other%d@t.example" % i, "wrong")[0] == 401
        assert c.sign_in("fresh@t.example", "x")[0] == 429
    finally:
        r.stop()


def test_setup_link_lifetime_setting(fresh):
    """[http] setup_link_lifetime sets how long the set-up link lasts; an
    expired link is refused."""
    r = fresh(extra={"http.setup_link_lifetime": "5m"}).start()
    try:
        m = re.search(r"event=setup_link url=https://[^/]+/#setup=([0-9a-f]{64}) expires_in=300s",
                      r.log_text())
        assert m, r.log_text()[-2000:]
        left = r.psql("SELECT extract(epoch FROM expires_at - now()) FROM web_setup_tokens")
        assert len(left) == 1 and 250 < left[0][0] <= 300
        r.psql("UPDATE web_setup_tokens SET expires_at = now() - interval '1 second'")
        st, body = Client(r.ports["https"]).call("POST", "/api/v1/setup", {
            "token": m.group(1), "address": "a@late.example", "password": "pw"})
        assert st == 403 and body["field"] == "token"
    finally:
        r.stop()


def test_first_run_setup_link(fresh):
    r = fresh().start()
    try:
        m = re.search(r"event=setup_link url=https://[^/]+/#setup=([0-9a-f]{64})", r.log_text())
        assert m, r.log_text()[-2000:]
        token = m.group(1)
        c = Client(r.ports["https"])
        st, body = c.call("POST", "/api/v1/setup", {"token": "0" * 64, "address": "a@first.example",
                                                    "password": "pw"})
        assert st == 403 and body["field"] == "token"
        st, body = c.call("POST", "/api/v1/setup", {"token": token, "address": "bad",
                                                    "password": "pw"})
        assert st == 400 and body["field"] == "address"  # the token survives a mistake
        st, resp, data = c.raw("POST", "/api/v1/setup", json.dumps({
            "token": token, "address": "Boss@First.example", "password": "pw-first",
            "display_name": "B"}), {"Content-Type": "application/json"})
        body = json.loads(data)
        assert st == 200 and body["admin"] and body["address"] == "boss@first.example"
        c.cookie = resp.getheader("Set-Cookie").split(";")[0]
        assert c.call("GET", "/api/v1/status")[0] == 200  # signed in at once
        st, body = Client(r.ports["https"]).call("POST", "/api/v1/setup", {
            "token": token, "address": "second@first.example", "password": "pw"})
        assert st == 403  # single use
        r.stop()
        r.start()
        assert "event=setup_link" not in r.log_text()  # an administrator exists now
    finally:
        r.stop()
