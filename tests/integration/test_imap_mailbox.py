"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME (hierarchies and
INBOX), SUBSCRIBE/UNSUBSCRIBE, LIST (LIST-EXTENDED, SPECIAL-USE, CHILDREN,
LIST-STATUS), LSUB, STATUS, CLOSE/UNSELECT, QUOTA, and modified UTF-7 /
UTF-8 mailbox names."""
import re

from test_imap_common import Raw, account, deliver, filled, login, message, raw_login


def names(lines):
    out = []
    for l in lines:
        m = re.match(r'\* (?:LIST|LSUB) \(([^)]*)\) "/" (.*)$', l)
        if m:
            out.append((m.group(2).strip('"'), m.group(1)))
    return out


def test_select_examine_responses(server):
    addr, pw = filled(server, 3)
    r = raw_login(server, addr, pw)
    lines, t = r.cmd("a1", "SELECT INBOX")
    assert t == "a1 OK [READ-WRITE] SELECT completed"
    assert "* 3 EXISTS" in lines and "* 0 RECENT" in lines
    assert any(l.startswith("* FLAGS (\\Answered") for l in lines)
    assert any("[PERMANENTFLAGS (" in l and "\\*" in l for l in lines)
    assert any(l.startswith("* OK [UIDVALIDITY ") for l in lines)
    assert "* OK [UIDNEXT 4] Predicted next UID" in lines
    assert "* OK [UNSEEN 1] First unseen" in lines
    assert any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines)
    lines, t = r.cmd("a2", "EXAMINE inbox")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert t == "a2 OK [READ-ONLY] EXAMINE completed"
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
    _, t = r.cmd("a3", "STORE 1 +FLAGS (\\Seen)")
    assert t.startswith("a3 NO")
    _, t = r.cmd("a4", "SELECT Nonexistent")
    assert t == "a4 NO [NONEXISTENT] Mailbox does not exist"
    _, t = r.cmd("a5", "NOOP")
    _, t = r.cmd("a6", "CLOSE")
    assert t == "a6 BAD Select a mailbox first"
    r.close()


def test_close_expunges_unselect_does_not(server):
    addr, pw = filled(server, 3)
    m = login(server, addr, pw)
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, _ = m._simple_command("UNSELECT")
    assert typ == "OK"
    assert m.select("INBOX")[1] == [b"3"]
    m.store("1:2", "+FLAGS", "(\\Deleted)")
    assert m.close()[0] == "OK"
    assert m.select("INBOX")[1] == [b"1"]
    m.logout()


def test_create_delete_rename_hierarchy(server):
    addr, pw = account(server)
    m = login(server, addr, pw)
    assert m.create("a/b/c")[0] == "OK"
    typ, data = m.create("a/b")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = m.create("INBOX")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    assert m.create("trailing/")[0] == "OK"
    listed = [l.decode() for l in m.list()[1]]
    assert any(l.endswith('"a/b/c"') for l in listed)
    assert any(l.endswith('"trailing"') for l in listed)
    assert any('\\HasChildren' in l and l.endswith('"a"') for l in listed)
    assert m.rename("a", "x")[0] == "OK"
    listed = [l.decode() for l in m.list()[1]]
    assert any(l.endswith('"x/b/c"') for l in listed)
    assert not any(l.endswith('"a"') for l in listed)
    typ, data = m.rename("nope", "y")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    typ, data = m.rename("x", "Sent")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = m.delete("INBOX")
    assert typ == "NO"
    assert m.delete("x/b/c")[0] == "OK"
    typ, data = m.delete("x/b/c")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    m.logout()


def test_rename_inbox_moves_messages(server):
    addr, pw = filled(server, 2)
    m = login(server, addr, pw)
    assert m.rename("INBOX", "Old")[0] == "OK"
    assert m.select("INBOX")[1] == [b"0"]
    assert m.select("Old")[1] == [b"2"]
    m.logout()


def test_delete_parent_keeps_children_listed(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.cmd("a1", "CREATE p/q")
    _, t = r.cmd("a2", "DELETE p")
    assert t == "a2 OK DELETE completed"
    lines, _ = r.cmd("a3", 'LIST "" "p%"')
    assert names(lines) == [("p", "\\Noselect \\HasChildren")]
    lines, _ = r.cmd("a4", 'LIST () "" "p%"')
    assert names(lines) == [("p", "\\NonExistent \\HasChildren")]
    r.close()


def test_list_patterns_and_special_use(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.cmd("a0", "CREATE Work/Project")
    lines, t = r.cmd("a1", 'LIST "" %')
    got = dict(names(lines))
    assert got["INBOX"] == "\\HasNoChildren"
    assert got["Sent"] == "\\HasNoChildren \\Sent"
    assert got["Work"] == "\\HasChildren"
    assert "Work/Project" not in got
    assert names(lines)[0][0] == "INBOX"
    lines, _ = r.cmd("a2", 'LIST "" ""')
    assert lines == ['* LIST (\\Noselect) "/" ""']
    lines, _ = r.cmd("a3", 'LIST "Work/" %')
    assert [n for n, _ in names(lines)] == ["Work/Project"]
    lines, _ = r.cmd("a4", 'LIST "" inbox')
    assert [n for n, _ in names(lines)] == ["INBOX"]
    lines, _ = r.cmd("a5", 'LIST (SPECIAL-USE) "" *')
    assert sorted(n for n, _ in names(lines)) == ["Archive", "Drafts", "Junk", "Sent", "Trash"]
    lines, _ = r.cmd("a6", 'LIST "" (INBOX Sent) RETURN (CHILDREN SPECIAL-USE)')
    assert [n for n, _ in names(lines)] == ["INBOX", "Sent"]
    _, t = r.cmd("a7", 'LIST (BOGUS) "" *')
    assert t.startswith("a7 BAD")
    r.close()


def test_subscribe_lsub_and_list_subscribed(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    r.cmd("a0", "CREATE Lists/One")
    _, t = r.cmd("a1", "UNSUBSCRIBE Lists")
    assert t == "a1 OK UNSUBSCRIBE completed"
    _, t = r.cmd("a2", "UNSUBSCRIBE Trash")
    lines, _ = r.cmd("a3", 'LSUB "" *')
    got = [n for n, _ in names(lines)]
    assert "Lists/One" in got and "Trash" not in got and "Lists" not in got
    assert all(l.startswith("* LSUB") for l in lines)
    lines, _ = r.cmd("a4", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Lists"')
    assert lines == ['* LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))']
    lines, _ = r.cmd("a5", 'LIST "" "Lists*" RETURN (SUBSCRIBED)')
    assert dict(names(lines))["Lists/One"] == "\\HasNoChildren \\Subscribed"
    _, t = r.cmd("a6", "SUBSCRIBE Trash")
    assert t == "a6 OK SUBSCRIBE completed"
    _, t = r.cmd("a7", "SUBSCRIBE NoSuch")
    assert t.startswith("a7 NO [NONEXISTENT]")
    r.close()


def test_status_and_list_status(server):
    addr, pw = filled(server, 2)
    r = raw_login(server, addr, pw)
    lines, t = r.cmd("a1", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ RECENT "
                     "UIDVALIDITY DELETED APPENDLIMIT)")
    assert t == "a1 OK STATUS completed"
    st = lines[0]
    assert st.startswith('* STATUS "INBOX" (MESSAGES 2 RECENT 0 UIDNEXT 3 UIDVALIDITY ')
    assert "UNSEEN 2" in st and "DELETED 0" in st and "APPENDLIMIT " in st
    size = int(re.search(r"SIZE (\d+)", st).group(1))
    assert size > 100
    lines, t = r.cmd("a2", 'LIST "" % RETURN (STATUS (MESSAGES UNSEEN))')
    assert '* STATUS "INBOX" (MESSAGES 2 UNSEEN 2)' in lines
    assert '* STATUS "Sent" (MESSAGES 0 UNSEEN 0)' in lines
    _, t = r.cmd("a3", "STATUS INBOX (BOGUS)")
    assert t.startswith("a3 BAD")
    _, t = r.cmd("a4", "STATUS NoSuch (MESSAGES)")
    assert t == "a4 NO [NONEXISTENT] Mailbox does not exist"
    r.close()


def test_utf7_and_utf8_mailbox_names(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    # "Entwürfe" and "日本語" in modified UTF-7.
    _, t = r.cmd("a1", "CREATE Entw&APw-rfe")
    assert t == "a1 OK CREATE completed"
    _, t = r.cmd("a2", "CREATE &ZeVnLIqe-")
    assert t == "a2 OK CREATE completed"
    lines, _ = r.cmd("a3", 'LIST "" *')
    got = [n for n, _ in names(lines)]
    assert "Entw&APw-rfe" in got and "&ZeVnLIqe-" in got
    (name,), = server.psql("SELECT name FROM mailboxes m JOIN accounts a ON a.id = m.account_id "
                           "WHERE a.address = '%s' AND name LIKE 'Entw%%'" % addr)
    assert name == "Entwürfe"
    # Invalid modified UTF-7 is refused.
    _, t = r.cmd("a4", "CREATE &Jjo")
    assert t.startswith("a4 BAD")
    _, t = r.cmd("a5", "CREATE &AGE-")  # "a" must not be encoded
    assert t.startswith("a5 BAD")
    # 8-bit UTF-8 from a client that did not enable it: taken as UTF-8.
    r.send("a6 CREATE \"Caf\xc3\xa9\"\r\n".encode("latin-1"))
    _, t = r.until("a6")
    assert t == "a6 OK CREATE completed"
    lines, _ = r.cmd("a7", 'LIST "" Caf*')
    assert [n for n, _ in names(lines)] == ["Caf&AOk-"]
    r.send(b"a8 CREATE \"bad\xff\"\r\n")
    _, t = r.until("a8")
    assert t.startswith("a8 BAD")
    caps = r.cmd("a9", "CAPABILITY")[0][0]
    if "IMAP4rev2" in caps:
        r.cmd("b1", "ENABLE IMAP4rev2")
        lines, _ = r.cmd("b2", 'LIST "" Caf*')
        assert lines == ['* LIST (\\HasNoChildren) "/" "Café"']
        lines, t = r.cmd("b3", "SELECT \"Entwürfe\"")
        assert t.endswith("SELECT completed")
    r.close()


def test_quota(server):
    addr, pw = account(server)
    r = raw_login(server, addr, pw)
    lines, t = r.cmd("a1", "GETQUOTAROOT INBOX")
    assert lines == ['* QUOTAROOT "INBOX" ""', '* QUOTA "" ()']
    r.close()
    d = addr.split("@")[1]
    addr = "quota@" + d
    server.cli("user", "add", addr, "--quota", "10M", input=pw + "\n", check=True)
    r = raw_login(server, addr, pw)
    deliver(server, addr, message(1))
    lines, t = r.cmd("a2", 'GETQUOTA ""')
    m = re.match(r'\* QUOTA "" \(STORAGE (\d+) 10240\)', lines[0])
    assert m and int(m.group(1)) >= 1
    _, t = r.cmd("a3", 'GETQUOTA "other"')
    assert t.startswith("a3 NO")
    _, t = r.cmd("a4", 'SETQUOTA "" (STORAGE 1)')
    assert t.startswith("a4 NO")
    r.close()
