"""STORE / UID STORE (.SILENT, UNCHANGEDSINCE, [MODIFIED]), EXPUNGE and UID
EXPUNGE, COPY / MOVE and UID forms with COPYUID, sequence sets."""
import re

from test_imap_common import filled, raw_select


def test_store_modes_and_silent(server):
    addr, pw = filled(server, 3)
    r = raw_select(server, addr, pw)
    lines, t = r.cmd("a1", "STORE 1:2 +FLAGS (\\Seen $Label1)")
    # A new keyword is announced in FLAGS before it appears in a FETCH.
    assert lines == ["* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk "
                     "$NotJunk $MDNSent $Label1)",
                     "* 1 FETCH (FLAGS (\\Seen $Label1))", "* 2 FETCH (FLAGS (\\Seen $Label1))"]
    assert t == "a1 OK STORE completed"
    lines, _ = r.cmd("a2", "STORE 2 -FLAGS \\Seen")
    assert lines == ["* 2 FETCH (FLAGS ($Label1))"]
    lines, _ = r.cmd("a3", "STORE * FLAGS.SILENT (\\Answered \\Draft)")
    assert lines == []
    lines, _ = r.cmd("a4", "UID STORE 3 FLAGS (\\Flagged)")
    assert lines == ["* 3 FETCH (UID 3 FLAGS (\\Flagged))"]
    lines, _ = r.cmd("a5", "UID STORE 10:20 +FLAGS (\\Seen)")
    assert lines == []
    _, t = r.cmd("a6", "STORE 4 +FLAGS (\\Seen)")
    assert t == "a6 BAD Invalid message sequence number"
    _, t = r.cmd("a7", "STORE 1 +FLAGS (\\Bogus)")
    assert t.startswith("a7 BAD")
    _, t = r.cmd("a8", "STORE 1 XFLAGS (\\Seen)")
    assert t.startswith("a8 BAD")
    r.close()


def test_store_unchangedsince_and_modseq(server):
    addr, pw = filled(server, 2)
    r = raw_select(server, addr, pw)
    lines, t = r.cmd("a1", "STORE 1 (UNCHANGEDSINCE 1000000) +FLAGS (\\Seen)")
    m = re.match(r"\* 1 FETCH \(FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)", lines[0])
    assert m, lines
    modseq = int(m.group(1))
    lines, t = r.cmd("a2", "STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % (modseq - 1))
    assert t == "a2 OK [MODIFIED 1] Conditional STORE failed for some messages"
    assert len(lines) == 1 and lines[0].startswith("* 2 FETCH (FLAGS (\\Flagged) MODSEQ (")
    lines, t = r.cmd("a3", "UID STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
    assert t == "a3 OK [MODIFIED 1:2] Conditional STORE failed for some messages"
    r.close()


def test_expunge_and_uid_expunge(server):
    addr, pw = filled(server, 5)
    r = raw_select(server, addr, pw)
    r.cmd("a1", "STORE 1,3,5 +FLAGS.SILENT (\\Deleted)")
    lines, t = r.cmd("a2", "UID EXPUNGE 4:5")
    assert lines == ["* 5 EXPUNGE"] and t == "a2 OK UID EXPUNGE completed"
    lines, t = r.cmd("a3", "EXPUNGE")
    assert lines == ["* 3 EXPUNGE", "* 1 EXPUNGE"] and t == "a3 OK EXPUNGE completed"
    lines, _ = r.cmd("a4", "STATUS INBOX (MESSAGES)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2)']
    lines, t = r.cmd("a5", "STORE 2 +FLAGS (\\Seen)")
    assert lines == ["* 2 FETCH (FLAGS (\\Seen))"]
    r.cmd("a6", "ENABLE QRESYNC")
    r.cmd("a7", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines, t = r.cmd("a8", "EXPUNGE")
    assert lines == ["* VANISHED 2"], lines
    r.close()


def test_copy_move_copyuid(server):
    addr, pw = filled(server, 4)
    r = raw_select(server, addr, pw)
    _, t = r.cmd("a1", "COPY 1:2 Archive")
    m = re.match(r"a1 OK \[COPYUID (\d+) 1:2 1:2\] COPY completed", t)
    assert m, t
    _, t = r.cmd("a2", "UID COPY 4 Archive")
    assert t == "a2 OK [COPYUID %s 4 3] UID COPY completed" % m.group(1)
    _, t = r.cmd("a3", "COPY 1 NoSuch")
    assert t == "a3 NO [TRYCREATE] Mailbox does not exist"
    lines, t = r.cmd("a4", "MOVE 2:3 Trash")
    assert re.match(r"\* OK \[COPYUID \d+ 2:3 1:2\] Moved", lines[0]), lines
    assert lines[1:] == ["* 3 EXPUNGE", "* 2 EXPUNGE"]
    assert t == "a4 OK MOVE completed"
    lines, t = r.cmd("a5", "UID MOVE 4 Trash")
    assert lines[1:] == ["* 2 EXPUNGE"]
    lines, _ = r.cmd("a6", "STATUS Trash (MESSAGES)")
    assert lines == ['* STATUS "Trash" (MESSAGES 3)']
    lines, t = r.cmd("a7", "UID COPY 100:200 Archive")
    assert t == "a7 OK UID COPY completed"
    _, t = r.cmd("a8", "COPY 5 Archive")
    assert t.startswith("a8 BAD")
    # A copy into the selected mailbox shows up as EXISTS.
    lines, _ = r.cmd("a9", "COPY 1 INBOX")
    assert "* 2 EXISTS" in lines
    r.close()


def test_sequence_sets(server):
    addr, pw = filled(server, 6)
    r = raw_select(server, addr, pw)
    lines, _ = r.cmd("a1", "STORE 5:3,1,*:6 +FLAGS (\\Seen)")
    assert [l.split()[1] for l in lines] == ["1", "3", "4", "5", "6"]
    lines, _ = r.cmd("a2", "UID STORE *:5 -FLAGS (\\Seen)")
    assert [l.split()[1] for l in lines] == ["5", "6"]
    for bad in ["0", "1:0", "a", "1,,2", "1:*:3", ""]:
        _, t = r.cmd("b", "STORE %s +FLAGS (\\Seen)" % bad)
        assert t.startswith("b BAD"), bad
    r.close()


def test_new_keywords_announced_to_other_sessions(server):
    addr, pw = filled(server, 2)
    a = raw_select(server, addr, pw)
    b = raw_select(server, addr, pw)
    assert not any("$Other" in l for l in b.select_lines)
    a.cmd("a1", "STORE 2 +FLAGS.SILENT ($Other)")
    lines, _ = b.cmd("b1", "NOOP")
    assert lines[0].startswith("* FLAGS (") and lines[0].endswith(" $Other)")
    assert lines[1] == "* 2 FETCH (FLAGS ($Other))"
    # A new session lists keywords in use at SELECT.
    c = raw_select(server, addr, pw)
    assert any(l.startswith("* FLAGS (") and "$Other" in l for l in c.select_lines)
    for r in (a, b, c):
        r.close()
