"""The `roost` command: usage, errors, and the store management commands,
against the shared server's managed PostgreSQL cluster."""
import os
import re
import socket
import subprocess
import uuid

import pytest

from conftest import ROOST_BIN


def uniq(prefix="d"):
    return "%s%s.test" % (prefix, uuid.uuid4().hex[:8])


def test_version(server):
    r = server.cli("version")
    assert r.returncode == 0
    assert re.fullmatch(r"roost \d+\.\d+\.\d+\n", r.stdout)


def test_help_lists_every_command(server):
    r = server.cli("--help")
    assert r.returncode == 0
    for cmd in ["roost serve", "roost migrate", "roost domain add", "roost domain list",
                "roost domain remove", "roost user add", "roost user passwd", "roost user list",
                "roost user remove", "roost alias add", "roost alias list", "roost alias remove",
                "roost admin add", "roost version"]:
        assert cmd in r.stdout, cmd


@pytest.mark.parametrize("args", [["user", "add", "--help"], ["domain", "list", "--help"],
                                  ["serve", "--help"], ["migrate", "--help"], ["alias", "--help"]])
def test_subcommand_help(server, args):
    r = server.cli(*args)
    assert r.returncode == 0
    assert "usage:" in (r.stdout + r.stderr)


@pytest.mark.parametrize("args,message", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["user"], "'user' needs a subcommand"),
    (["user", "explode"], "unknown subcommand 'user explode'"),
    (["domain", "add"], "'domain add' takes one argument"),
    (["domain", "add", "a.test", "b.test"], "'domain add' takes one argument"),
    (["user", "add", "x@y.test", "--colour", "red"], "unknown option --colour"),
    (["user", "add", "x@y.test", "--name"], "option --name needs a value"),
    (["domain", "list", "-c"], "-c needs a file name"),
])
def test_usage_errors(server, args, message):
    r = server.cli(*args)
    assert r.returncode == 2, r
    assert message in r.stderr


def test_migrate_reports_version(server):
    r = server.cli("migrate", check=True)
    assert re.search(r"schema version \d+ \(0 migrations applied now\)", r.stdout)


def test_domain_lifecycle(server):
    d = uniq()
    assert server.cli("domain", "add", d.upper()).returncode == 0
    r = server.cli("domain", "list", check=True)
    assert re.search(r"^%s\t0 accounts\t0 aliases$" % re.escape(d), r.stdout, re.M)
    r = server.cli("domain", "add", d)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert server.cli("domain", "remove", d).returncode == 0
    assert d not in server.cli("domain", "list", check=True).stdout
    r = server.cli("domain", "remove", d)
    assert r.returncode == 1 and d in r.stderr


@pytest.mark.parametrize("name", ["-bad.test", "bad..test", "a" * 64 + ".test", "sp ace.test",
                                  "", "under_score.test", "x.test."])
def test_domain_add_invalid(server, name):
    r = server.cli("domain", "add", name)
    assert r.returncode != 0
    assert r.stderr.startswith("roost: ")


def test_domain_remove_refuses_with_accounts_unless_forced(server):
    d = uniq()
    server.cli("domain", "add", d, check=True)
    server.cli("user", "add", "a@" + d, input="pw-123456\n", check=True)
    r = server.cli("domain", "remove", d)
    assert r.returncode == 1 and "1 account" in r.stderr
    server.cli("domain", "remove", d, "--force", check=True)
    assert server.cli("user", "list", d).returncode != 0


def test_user_lifecycle(server):
    d = uniq()
    server.cli("domain", "add", d, check=True)
    addr = "Alice@" + d
    r = server.cli("user", "add", addr, "--name", "Alice Liddell", "--quota", "500M",
                   input="s3cret-pass\n")
    assert r.returncode == 0, r.stderr
    r = server.cli("user", "list", d, check=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("alice@" + d)]
    assert line, r.stdout
    assert "Alice Liddell" in line[0] and "quota=500M" in line[0]
    # Default mailboxes exist with their special-use flags.
    rows = server.psql("SELECT m.name, m.special_use FROM mailboxes m JOIN accounts a "
                       "ON a.id = m.account_id WHERE a.address = 'alice@%s' ORDER BY m.name" % d)
    assert dict(rows) == {"Archive": "\\Archive", "Drafts": "\\Drafts", "INBOX": None,
                          "Junk": "\\Junk", "Sent": "\\Sent", "Trash": "\\Trash"}
    # Password hash is argon2id, never the password.
    (h,), = server.psql("SELECT password_hash FROM accounts WHERE address = 'alice@%s'" % d)
    assert h.startswith("$argon2id$") and "s3cret-pass" not in h
    r = server.cli("user", "add", addr, input="other-pass\n")
    assert r.returncode == 1 and "exists" in r.stderr
    r = server.cli("user", "passwd", addr, input="new-pass-1\n", check=True)
    (h2,), = server.psql("SELECT password_hash FROM accounts WHERE address = 'alice@%s'" % d)
    assert h2 != h
    server.cli("user", "remove", addr, check=True)
    assert "alice@" not in server.cli("user", "list", d, check=True).stdout
    assert server.psql("SELECT count(*) FROM mailboxes m JOIN accounts a ON a.id = m.account_id "
                       "WHERE a.address = 'alice@%s'" % d) == [(0,)]


def test_user_add_errors(server):
    d = uniq()
    server.cli("domain", "add", d, check=True)
    r = server.cli("user", "add", "bob@nowhere-%s" % d, input="pw-123456\n")
    assert r.returncode == 1 and "unknown domain nowhere-%s" % d in r.stderr
    for bad in ["no-at-sign", "two@@" + d, "sp ace@" + d, "@" + d, "a" * 65 + "@" + d]:
        r = server.cli("user", "add", bad, input="pw-123456\n")
        assert r.returncode != 0, bad
        assert "roost: " in r.stderr
    r = server.cli("user", "add", "carol@" + d, input="")
    assert r.returncode != 0 and "password" in r.stderr
    r = server.cli("user", "add", "carol@" + d, input="\n")
    assert r.returncode != 0 and "empty password" in r.stderr
    r = server.cli("user", "add", "carol@" + d, "--quota", "lots", input="pw-123456\n")
    assert r.returncode == 2 and "invalid quota" in r.stderr
    r = server.cli("user", "passwd", "nobody@" + d, input="pw-123456\n")
    assert r.returncode == 1
    r = server.cli("user", "remove", "nobody@" + d)
    assert r.returncode == 1
    r = server.cli("user", "list", "unknown-" + d)
    assert r.returncode == 1


def test_alias_lifecycle(server):
    d = uniq()
    server.cli("domain", "add", d, check=True)
    server.cli("user", "add", "sales1@" + d, input="pw-123456\n", check=True)
    r = server.cli("alias", "add", "sales@" + d, "sales1@" + d, "partner@remote.example")
    assert r.returncode == 0, r.stderr
    server.cli("alias", "add", "@" + d, "sales1@" + d, check=True)
    r = server.cli("alias", "list", d, check=True)
    assert "sales@%s\tpartner@remote.example,sales1@%s" % (d, d) in r.stdout
    assert "@%s\tsales1@%s" % (d, d) in r.stdout
    r = server.cli("alias", "add", "sales1@" + d, "x@" + d)
    assert r.returncode == 1 and "is already an account" in r.stderr
    r = server.cli("alias", "add", "x@unknown-" + d, "sales1@" + d)
    assert r.returncode == 1 and "unknown domain" in r.stderr
    r = server.cli("alias", "add", "y@" + d, "not an address")
    assert r.returncode == 1
    r = server.cli("alias", "add", "y@" + d)
    assert r.returncode == 2
    server.cli("alias", "remove", "sales@" + d, check=True)
    assert "sales@" not in server.cli("alias", "list", d, check=True).stdout
    assert server.cli("alias", "remove", "sales@" + d).returncode == 1


def test_admin_add(server):
    d = uniq()
    server.cli("domain", "add", d, check=True)
    server.cli("user", "add", "boss@" + d, input="pw-123456\n", check=True)
    server.cli("admin", "add", "boss@" + d, check=True)
    r = server.cli("user", "list", d, check=True)
    assert re.search(r"^boss@%s\t.*\tadmin" % re.escape(d), r.stdout, re.M)
    assert server.cli("admin", "add", "ghost@" + d).returncode == 1


def test_cli_without_running_server_starts_and_stops_cluster(fresh):
    r = fresh()
    res = r.cli("domain", "add", "offline.test")
    assert res.returncode == 0, res.stderr
    pid = os.path.join(r.data_dir, "pgdata", "postmaster.pid")
    assert not os.path.exists(pid), "the cluster was left running"
    assert "offline.test" in r.cli("domain", "list", check=True).stdout
    assert not os.path.exists(pid)


def test_cli_while_server_runs_keeps_its_cluster(server):
    server.cli("domain", "list", check=True)
    pid = os.path.join(server.data_dir, "pgdata", "postmaster.pid")
    assert os.path.exists(pid)
    assert server.psql("SELECT 1") == [(1,)]


def test_unreachable_database_exits_75(tmp_path):
    """Commands tell "try again" (EX_TEMPFAIL) from a failed request (1):
    a database that does not answer is the former, a bad config the latter."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "roost.conf"
    conf.write_text("[server]\nhostname = a.example\ndata_dir = %s\n[database]\n"
                    "dsn = host=127.0.0.1 port=%d dbname=roost connect_timeout=5\n"
                    % (tmp_path / "data", port))
    for args in (["domain", "list"], ["user", "list"], ["alias", "list"], ["queue", "list"],
                 ["domain", "dns", "a.example"], ["migrate"]):
        r = subprocess.run([ROOST_BIN] + args + ["-c", str(conf)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 75, (args, r.returncode, r.stderr)
        assert "database: cannot connect" in r.stderr, r.stderr
    r = subprocess.run([ROOST_BIN, "domain", "list", "-c", str(tmp_path / "missing.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot read" in r.stderr
