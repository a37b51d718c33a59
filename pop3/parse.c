/* parse.c - POP3 command lines and the RETR/TOP message encoder. Pure
 * functions, unit-tested in tests/unit/test-pop3.c. */
#include "pop3-private.h"

#include "strnum.h"

#include <string.h>
#include <strings.h>

#define POP3_EXPIRE_DAYS_MAX 36500

static bool pop3_is_ctl(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

/* Checks the whole line first, so a control byte anywhere is refused the
 * same way wherever it sits. */
static int pop3_line_check(const char *line, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "Empty command";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (pop3_is_ctl((unsigned char)line[i])) {
			*error_r = "Control characters are not allowed in commands";
			return -1;
		}
	}
	return 0;
}

static size_t pop3_parse_verb(const char *line, size_t len, struct pop3_command *cmd)
{
	size_t i = 0;
	while (i < len && line[i] != ' ') {
		char ch = line[i];
		if (i >= POP3_VERB_MAX || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
			return 0;
		cmd->verb[i] = (char)(ch >= 'a' ? ch - ('a' - 'A') : ch);
		i++;
	}
	cmd->verb[i] = '\0';
	return i;
}

int pop3_command_parse(const char *line, size_t len, struct arena *a, struct pop3_command *cmd_r,
                       const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->rest = "";
	if (pop3_line_check(line, len, error_r) < 0)
		return -1;
	size_t i = pop3_parse_verb(line, len, cmd_r);
	if (i == 0) {
		*error_r = "Malformed command";
		return -1;
	}
	/* One block holds the rest and the split arguments, so that the
	 * caller can wipe every copy of a password at once. */
	cmd_r->copy_len = 2 * (len - i) + 2;
	char *copy = cmd_r->copy = arena_alloc(a, cmd_r->copy_len);
	if (i < len)
		cmd_r->rest = memcpy(copy, line + i + 1, len - i - 1);
	char *split = copy + (len - i) + 1;
	memcpy(split, line + i, len - i);
	for (size_t j = 0; j < len - i;) {
		while (j < len - i && split[j] == ' ')
			split[j++] = '\0';
		if (j == len - i)
			break; /* trailing spaces */
		if (cmd_r->nargs < POP3_ARGS_MAX)
			cmd_r->args[cmd_r->nargs] = split + j;
		cmd_r->nargs++;
		while (j < len - i && split[j] != ' ')
			j++;
	}
	return 0;
}

int pop3_parse_msgnum(const char *s, size_t nmsgs, size_t *index_r)
{
	uint64_t n;
	if (str_to_u64(s, UINT64_MAX, &n) < 0 || n == 0 || n > nmsgs)
		return -1;
	*index_r = (size_t)(n - 1);
	return 0;
}

int pop3_parse_lines(const char *s, uint64_t *lines_r)
{
	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	/* More lines than any message has: a huge count means "all". */
	if (str_to_u64(s, UINT64_MAX, lines_r) < 0)
		*lines_r = UINT64_MAX;
	return 0;
}

int pop3_parse_expire(const char *s, int64_t *days_r)
{
	uint64_t days;
	if (strcasecmp(s, "NEVER") == 0) {
		*days_r = -1;
		return 0;
	}
	if (str_to_u64(s, POP3_EXPIRE_DAYS_MAX, &days) < 0)
		return -1;
	*days_r = (int64_t)days;
	return 0;
}

void pop3_encoder_init(struct pop3_encoder *e, bool top, uint64_t lines)
{
	*e = (struct pop3_encoder){
	    .top = top,
	    .body_lines_left = lines,
	    .in_header = true,
	    .at_line_start = true,
	    .line_empty = true,
	};
}

/* After a line end: leaves the header at the first empty line and counts
 * TOP's body lines. */
static void pop3_encode_line_end(struct pop3_encoder *e)
{
	if (e->in_header) {
		if (e->line_empty)
			e->in_header = false;
	} else if (e->top && e->body_lines_left > 0) {
		e->body_lines_left--;
	}
	if (e->top && !e->in_header && e->body_lines_left == 0)
		e->done = true;
	e->at_line_start = true;
	e->line_empty = true;
}

static int pop3_encode_byte(struct pop3_encoder *e, char ch, struct buf *out)
{
	int r = 0;
	if (e->at_line_start && ch == '.')
		r |= buf_append_char(out, '.');
	if (ch == '\n') {
		if (!e->prev_cr)
			r |= buf_append_char(out, '\r');
		r |= buf_append_char(out, '\n');
		pop3_encode_line_end(e);
		e->prev_cr = false;
		return r;
	}
	r |= buf_append_char(out, ch);
	e->at_line_start = false;
	if (ch != '\r')
		e->line_empty = false;
	e->prev_cr = ch == '\r';
	return r;
}

int pop3_encode(struct pop3_encoder *e, const char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n && !e->done; i++) {
		e->any = true;
		if (pop3_encode_byte(e, p[i], out) < 0)
			return -1;
	}
	return 0;
}

int pop3_encode_finish(struct pop3_encoder *e, struct buf *out)
{
	if (e->any && !e->at_line_start && buf_append(out, "\r\n", 2) < 0)
		return -1;
	return buf_append(out, ".\r\n", 3);
}

uint64_t pop3_wire_size(const char *p, size_t n)
{
	uint64_t size = n;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			size++;
	}
	if (n > 0 && p[n - 1] != '\n')
		size += 2;
	return size;
}
