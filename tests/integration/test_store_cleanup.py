"""Disk space of deleted mail ([database] cleanup_interval, store_gc()): a
message's stored text is deleted once no mailbox holds it any more, stays
while another mailbox does, the same bytes can be delivered again
afterwards, and the dashboard still counts the deleted message as
received."""
import hashlib
import imaplib
import time
import uuid

from conftest import metrics

PASSWORD = "cleanup-pass-1"


def text(tag):
    return ("From: a@example.org\r\nTo: b@example.org\r\nSubject: cleanup %s\r\n"
            "Message-ID: <%s@example.org>\r\n\r\n%s\r\n" % (tag, uuid.uuid4().hex,
                                                          "body line\r\n" * 200)).encode()


def stored(srv, raw):
    """How many blob and message rows hold raw."""
    digest = hashlib.sha256(raw).hexdigest()
    return srv.psql(
        "SELECT (SELECT count(*) FROM blobs WHERE sha256 = decode('%s', 'hex')), "
        "(SELECT count(*) FROM messages WHERE sha256 = decode('%s', 'hex'))" % (digest, digest))[0]


def wait_stored(srv, raw, want, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = stored(srv, raw)
        if got == want:
            return
        time.sleep(0.2)
    raise AssertionError("stored %r, wanted %r" % (got, want))


def append(m, mailbox, raw):
    typ, data = m.append(mailbox, None, None, raw)
    assert typ == "OK", data


def expunge_all(m, mailbox):
    assert m.select(mailbox)[0] == "OK"
    m.store("1:*", "+FLAGS", "(\\Deleted)")
    assert m.expunge()[0] == "OK"


def test_deleted_mail_is_cleaned_up(fresh):
    srv = fresh(extra={"database.cleanup_interval": "1"}).start()
    srv.cli("domain", "add", "cleanup.example", check=True)
    addr = "user@cleanup.example"
    srv.cli("user", "add", addr, input=PASSWORD + "\n", check=True)
    kept, gone = text("kept"), text("gone")
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    m.login(addr, PASSWORD)
    assert m.create("Keep")[0] == "OK"
    append(m, "INBOX", kept)
    append(m, "Keep", kept)
    append(m, "INBOX", gone)
    assert stored(srv, kept) == (1, 1) and stored(srv, gone) == (1, 1)
    received = metrics(srv)["roost_messages_received_24h"]
    assert received >= 2

    # Expunged from every mailbox: deleted; still in Keep: stays.
    expunge_all(m, "INBOX")
    wait_stored(srv, gone, (0, 0))
    srv.wait_for_log("event=store_cleanup blobs_deleted=")
    assert stored(srv, kept) == (1, 1)
    # The dashboard still counts it as received today.
    assert metrics(srv)["roost_messages_received_24h"] == received

    # The mailbox that held the last copy is deleted: so is the text.
    m.close()
    assert m.delete("Keep")[0] == "OK"
    wait_stored(srv, kept, (0, 0))

    # The same bytes delivered again are stored again, whole.
    append(m, "INBOX", gone)
    assert m.select("INBOX")[0] == "OK"
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == gone
    assert stored(srv, gone) == (1, 1)
    m.logout()
