/* libFuzzer target for the IMAP command parser (imap/imap-parse.c): the
 * input is a client's byte stream (command lines, literals of every kind,
 * continuation lines) read through a real conn over a socketpair. Every
 * command is walked with the argument parsers until it ends or fails, then
 * its rest is skipped as the session would; nothing may crash, hang or
 * leak. Sequence sets and modified UTF-7 names round-trip. */
#include "imap-private.h"

#include "config.h"

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Continuations are small; the peer's socket buffer holds them all. */
#define FUZZ_MAX_INPUT 4096

static int walk_token(struct imap_cmd *cmd)
{
	const char *v;
	struct imap_seqset set;
	struct imap_literal_info info;
	unsigned flags;
	const char **kw;
	if (imap_arg_skip(cmd, ' '))
		return 0;
	if (imap_arg_peek(cmd, '('))
		return imap_arg_peek(cmd, '(') && cmd->depth % 2 == 0
		           ? imap_arg_list_begin(cmd)
		           : imap_arg_flags(cmd, false, &flags, &kw);
	if (imap_arg_peek(cmd, ')'))
		return cmd->depth > 0 ? imap_arg_list_end(cmd) : -1;
	if (imap_arg_peek(cmd, '~'))
		return imap_arg_literal_stream(cmd, 1024, NULL, NULL, &info);
	if (imap_arg_peek(cmd, '$') || imap_arg_peek(cmd, '*') ||
	    (cmd->pos < cmd->s->line.len && cmd->s->line.data[cmd->pos] >= '0' &&
	     cmd->s->line.data[cmd->pos] <= '9'))
		return imap_arg_seqset(cmd, &set);
	if (imap_arg_peek(cmd, '\\'))
		return imap_arg_flags(cmd, true, &flags, &kw);
	if (cmd->pos % 3 == 0)
		return imap_arg_mailbox(cmd, &v);
	if (cmd->pos % 3 == 1)
		return imap_arg_word(cmd, &v);
	return imap_arg_nstring(cmd, &v, NULL) < 0 ? imap_arg_astring(cmd, &v, NULL) : 0;
}

static void walk_command(struct imap_session *s, struct arena *a)
{
	struct imap_cmd cmd = {.s = s, .arena = a, .total = s->line.len};
	const char *tag;
	if (imap_arg_atom(&cmd, &tag) == 0) {
		while (!imap_arg_at_end(&cmd) && !cmd.aborted && !s->logout) {
			if (walk_token(&cmd) < 0)
				break;
		}
	}
	imap_arg_skip_rest(&cmd);
	arena_reset(a);
}

static void check_roundtrips(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(1024);
	struct imap_seqset set;
	if (imap_seqset_parse((const char *)data, size, a, &set) == 0 && !set.saved && set.n == 0)
		__builtin_trap();
	arena_destroy(&a);
	struct buf u8, u7;
	buf_init(&u8, BUF_NO_LIMIT);
	buf_init(&u7, BUF_NO_LIMIT);
	if (imap_utf7_to_utf8((const char *)data, size, &u8) == 0) {
		if (imap_utf8_to_utf7(u8.data != NULL ? u8.data : "", u8.len, &u7) != 0 ||
		    u7.len != size || (size > 0 && memcmp(u7.data, data, size) != 0))
			__builtin_trap();
	}
	buf_free(&u8);
	buf_free(&u7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *cfg;
	int sv[2];
	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (cfg == NULL) {
		cfg = config_defaults();
		config_set_current(cfg);
	}
	check_roundtrips(data, size);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	struct imap_server srv = {.cfg = cfg};
	struct imap_session s = {.srv = &srv, .c = conn_new(sv[0], "imap")};
	s.state = size > 0 && (data[0] & 1) ? IMAP_STATE_AUTH : IMAP_STATE_NOTAUTH;
	buf_init(&s.line, BUF_NO_LIMIT);
	struct arena *a = arena_new(4096);
	while (!s.logout) {
		enum conn_status st = imap_io_read_line(&s, &s.line, 2048, CONN_NEW_REQUEST, NULL);
		if (st == CONN_TOO_LONG)
			continue;
		if (st != CONN_OK)
			break;
		walk_command(&s, a);
	}
	arena_destroy(&a);
	buf_free(&s.line);
	conn_free(&s.c);
	close(sv[1]);
	return 0;
}
