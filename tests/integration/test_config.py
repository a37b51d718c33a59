"""The config file: errors name the file, line and key; the reference in
docs/configuration.md matches the settings table in the code."""
import os
import subprocess

import pytest

from conftest import ROOST_BIN, ROOT


def run(*args, **kw):
    return subprocess.run([ROOST_BIN] + list(args), capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("body,message", [
    ("[server]\nhostnme = x\n", ":2: [server] hostnme: unknown key"),
    ("[sever]\nhostname = x\n", ":1: unknown section [sever]"),
    ("[limits]\nconnections = 0\n", ":2: [limits] connections: out of range (minimum 1, maximum 100000)"),
    ("[limits]\nconnections = many\n", ":2: [limits] connections: not a whole number"),
    ("[limits]\nmessage_size = 10Q\n", ":2: [limits] message_size: not a size"),
    ("[limits]\nidle_timeout = 99999999\n", ":2: [limits] idle_timeout: out of range"),
    ("[listen]\nimap = 127.0.0.1\n", ":2: [listen] imap: expected host:port"),
    ("[listen]\nimap = ::1:143\n", ":2: [listen] imap: IPv6 addresses go in brackets"),
    ("[listen]\nimap = 127.0.0.1:99999\n", ":2: [listen] imap: port must be a number from 1 to 65535"),
    ("[server]\nlog_level = loud\n", ":2: [server] log_level: not one of the allowed values"),
    ("[server]\nallow_plaintext_loopback = maybe\n", ":2: [server] allow_plaintext_loopback: not yes or no"),
    ("hostname = x\n", ":1: key outside any [section]"),
    ("[server\n", ":1: section header without ']'"),
    ("[server]\njust words\n", ":2: expected key = value"),
])
def test_config_errors_name_file_line_key(tmp_path, body, message):
    conf = tmp_path / "roost.conf"
    conf.write_text(body)
    for cmd in (["config", "check"], ["serve"], ["migrate"], ["domain", "list"]):
        r = run(*cmd, "-c", str(conf))
        assert r.returncode == 1, (cmd, r)
        assert str(conf) + message in r.stderr, (cmd, r.stderr)


def test_config_unreadable_file(tmp_path):
    r = run("serve", "-c", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert "missing.conf: cannot read: No such file or directory" in r.stderr


def test_config_comments_quotes_and_listen_lists(tmp_path):
    conf = tmp_path / "roost.conf"
    conf.write_text("; comment\n# another\n[server]\nhostname = mail.example.test   ; inline\n"
                    "data_dir = \"./my data\"\n[listen]\nimap = 127.0.0.1:1143, [::1]:1143\n"
                    "smtp =\n[limits]\nmessage_size = 10M\nidle_timeout = 31m\n")
    r = run("config", "check", "-c", str(conf))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok: %s" % conf


def test_reference_matches_docs():
    r = run("config", "reference")
    assert r.returncode == 0
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        docs = f.read()
    assert r.stdout.strip() in docs, "docs/configuration.md is out of date: regenerate the " \
        "table with `roost config reference`"
    for line in r.stdout.splitlines():
        if line.startswith("| `"):
            assert line in docs
