/* imap-parse.c - the command argument parser (RFC 3501 section 9, RFC 9051
 * section 9): atoms, strings, literals (synchronising, LITERAL+ and
 * literal8), numbers, parentheses and sequence sets, read from the command
 * line and the lines that follow its literals. */
#include "imap-private.h"

#include "strnum.h"

#include <string.h>

/* Literals held in memory by one command, all together, as a multiple of
 * the per-literal limit: a command may carry a few (LOGIN, RENAME). */
#define IMAP_CMD_MEMORY_FACTOR 4

static int parse_fail(struct imap_cmd *cmd, const char *error)
{
	if (cmd->error == NULL)
		cmd->error = error;
	return -1;
}

static int cur(const struct imap_cmd *cmd)
{
	const struct buf *l = &cmd->s->line;
	return cmd->pos < l->len ? (unsigned char)l->data[cmd->pos] : -1;
}

uint64_t imap_literal_limit(const struct imap_session *s)
{
	const struct config *cfg = imap_cfg(s);
	if (s->state == IMAP_STATE_NOTAUTH)
		return config_uint(cfg, CFG_LIMITS_LITERAL_SIZE_PREAUTH);
	return config_uint(cfg, CFG_LIMITS_LINE_LENGTH);
}

static size_t line_limit(const struct imap_session *s)
{
	return (size_t)config_uint(imap_cfg(s), s->state == IMAP_STATE_NOTAUTH
	                                            ? CFG_LIMITS_LINE_LENGTH_PREAUTH
	                                            : CFG_LIMITS_LINE_LENGTH);
}

bool imap_arg_peek(struct imap_cmd *cmd, char c)
{
	return cur(cmd) == (unsigned char)c;
}

bool imap_arg_skip(struct imap_cmd *cmd, char c)
{
	if (!imap_arg_peek(cmd, c))
		return false;
	cmd->pos++;
	return true;
}

bool imap_arg_skip_text(struct imap_cmd *cmd, const char *text)
{
	const struct buf *l = &cmd->s->line;
	size_t n = strlen(text);
	if (l->len - cmd->pos < n || strncasecmp(l->data + cmd->pos, text, n) != 0)
		return false;
	cmd->pos += n;
	return true;
}

int imap_arg_sp(struct imap_cmd *cmd)
{
	return imap_arg_skip(cmd, ' ') ? 0 : parse_fail(cmd, "Expected a space");
}

bool imap_arg_at_end(struct imap_cmd *cmd)
{
	return cur(cmd) < 0;
}

int imap_arg_end(struct imap_cmd *cmd)
{
	return imap_arg_at_end(cmd) ? 0 : parse_fail(cmd, "Unexpected extra arguments");
}

/* ATOM-CHAR of RFC 3501: any CHAR except atom-specials; 8-bit bytes are
 * let through (UTF-8 names from lenient clients are validated later). */
static bool atom_char(int c)
{
	if (c < 0 || c <= 0x1f || c == 0x7f || c == ' ')
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* Bytes of the current line from pos while accept(c, extra) holds. */
static int take_chars(struct imap_cmd *cmd, const char *extra, const char **r, size_t *len_r)
{
	size_t start = cmd->pos;
	for (int c; (c = cur(cmd)) >= 0; cmd->pos++) {
		if (!atom_char(c) && (extra == NULL || strchr(extra, c) == NULL))
			break;
	}
	if (cmd->pos == start)
		return parse_fail(cmd, "Expected an atom");
	*r = arena_memdup0(cmd->arena, cmd->s->line.data + start, cmd->pos - start);
	if (len_r != NULL)
		*len_r = cmd->pos - start;
	return 0;
}

int imap_arg_atom(struct imap_cmd *cmd, const char **r)
{
	return take_chars(cmd, NULL, r, NULL);
}

/* list-mailbox: list-char = ATOM-CHAR / list-wildcards / resp-specials. */
int imap_arg_list_mailbox(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	int c = cur(cmd);
	if (c == '"' || c == '{' || c == '~')
		return imap_arg_string(cmd, r, len_r);
	return take_chars(cmd, "%*]", r, len_r);
}

int imap_arg_word(struct imap_cmd *cmd, const char **r)
{
	size_t start = cmd->pos;
	unsigned brackets = 0;
	for (int c; (c = cur(cmd)) >= 0; cmd->pos++) {
		if (c < 0x20 || c == 0x7f)
			break;
		if (brackets == 0 && (c == ' ' || c == '(' || c == ')'))
			break;
		if (c == '[')
			brackets++;
		else if (c == ']' && brackets > 0)
			brackets--;
	}
	if (cmd->pos == start || brackets != 0)
		return parse_fail(cmd, "Expected an attribute");
	*r = arena_memdup0(cmd->arena, cmd->s->line.data + start, cmd->pos - start);
	return 0;
}

static int quoted(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	const struct buf *l = &cmd->s->line;
	char *out = arena_alloc(cmd->arena, l->len - cmd->pos + 1);
	size_t n = 0;
	cmd->pos++;
	for (;;) {
		int c = cur(cmd);
		if (c < 0)
			return parse_fail(cmd, "Unterminated quoted string");
		cmd->pos++;
		if (c == '"')
			break;
		if (c == '\\') {
			c = cur(cmd);
			if (c != '"' && c != '\\')
				return parse_fail(cmd, "Invalid escape in quoted string");
			cmd->pos++;
		} else if (c == '\r' || c == '\n' || c == 0) {
			return parse_fail(cmd, "Invalid character in quoted string");
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*r = out;
	if (len_r != NULL)
		*len_r = n;
	return 0;
}

/* The literal header "{N}" / "{N+}" / "{N-}" / "~{N}" at pos, which must
 * end the line. Leaves pos at the end of the line. The one place that says
 * what is non-synchronising (LITERAL+ and LITERAL-, RFC 7888): reading a
 * literal and skipping one (imap_arg_skip_rest) both ask it. */
static int literal_header(struct imap_cmd *cmd, bool allow_binary, struct imap_literal_info *info,
                          bool *nonsync_r)
{
	const struct buf *l = &cmd->s->line;
	memset(info, 0, sizeof(*info));
	if (imap_arg_skip(cmd, '~')) {
		if (!allow_binary)
			return parse_fail(cmd, "literal8 not allowed here");
		info->binary = true;
	}
	if (!imap_arg_skip(cmd, '{'))
		return parse_fail(cmd, "Expected a literal");
	size_t start = cmd->pos;
	while (cur(cmd) >= '0' && cur(cmd) <= '9')
		cmd->pos++;
	size_t digits_end = cmd->pos;
	*nonsync_r = imap_arg_skip(cmd, '+') || imap_arg_skip(cmd, '-');
	if (!imap_arg_skip(cmd, '}') || cmd->pos != l->len)
		return parse_fail(cmd, "Invalid literal");
	/* More than 18 digits is more than we would ever take: too big. */
	if (digits_end == start)
		return parse_fail(cmd, "Invalid literal size");
	if (digits_end - start > 18)
		info->size = UINT64_MAX;
	else if (mem_to_u64(l->data + start, digits_end - start, UINT64_MAX, &info->size) < 0)
		return parse_fail(cmd, "Invalid literal size");
	return 0;
}

/* Reads the line that continues the command after a literal. */
static int next_line(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t max = line_limit(s);
	s->line.max = max;
	enum conn_status st = imap_io_read_line(s, &s->line, max, 0, NULL);
	cmd->pos = 0;
	if (st == CONN_TOO_LONG) {
		cmd->aborted = true;
		return parse_fail(cmd, "Line too long");
	}
	if (st != CONN_OK) {
		s->logout = true;
		cmd->aborted = true;
		return parse_fail(cmd, "Connection lost");
	}
	cmd->total += s->line.len;
	return 0;
}

static enum conn_status send_continuation(struct imap_session *s)
{
	imap_io_write(s, "+ Ready for literal data\r\n", 26);
	return imap_io_flush(s);
}

/* A literal that is refused: keeps the protocol in step. A synchronising
 * one was never sent; a non-synchronising one is skipped if that is
 * reasonable, else the session ends. */
static int literal_refuse(struct imap_cmd *cmd, uint64_t size, bool nonsync, const char *code)
{
	struct imap_session *s = cmd->s;
	cmd->error_code = code;
	if (!nonsync) {
		cmd->aborted = true;
		return 0;
	}
	if (size > config_uint(imap_cfg(s), CFG_LIMITS_LITERAL_SIZE)) {
		imap_write_str(s, "* BYE [TOOBIG] Literal too big to skip, closing connection\r\n");
		s->logout = true;
		cmd->aborted = true;
		return 0;
	}
	if (imap_io_read_stream(s, size, NULL, NULL) != CONN_OK) {
		s->logout = true;
		cmd->aborted = true;
		return 0;
	}
	return next_line(cmd);
}

static int sink_buf(void *ctx, const void *p, size_t len)
{
	return buf_append(ctx, p, len);
}

static int literal(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	struct imap_literal_info info;
	bool nonsync;
	if (literal_header(cmd, false, &info, &nonsync) < 0)
		return -1;
	uint64_t limit = imap_literal_limit(cmd->s);
	uint64_t total_limit = limit * IMAP_CMD_MEMORY_FACTOR;
	if (info.size > limit || cmd->total > total_limit || info.size > total_limit - cmd->total) {
		literal_refuse(cmd, info.size, nonsync, "TOOBIG");
		return parse_fail(cmd, "Literal too big");
	}
	if (!nonsync && send_continuation(cmd->s) != CONN_OK)
		return parse_fail(cmd, "Connection lost");
	struct buf b;
	buf_init(&b, (size_t)info.size);
	enum conn_status st = imap_io_read_stream(cmd->s, info.size, sink_buf, &b);
	if (st != CONN_OK) {
		buf_free(&b);
		cmd->s->logout = true;
		cmd->aborted = true;
		return parse_fail(cmd, "Connection lost");
	}
	cmd->total += info.size;
	*r = arena_memdup0(cmd->arena, b.len > 0 ? b.data : "", b.len);
	if (len_r != NULL)
		*len_r = b.len;
	buf_free(&b);
	return next_line(cmd);
}

int imap_arg_string(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	int c = cur(cmd);
	if (c == '"')
		return quoted(cmd, r, len_r);
	if (c == '{')
		return literal(cmd, r, len_r);
	return parse_fail(cmd, "Expected a string");
}

int imap_arg_astring(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	int c = cur(cmd);
	if (c == '"' || c == '{')
		return imap_arg_string(cmd, r, len_r);
	return take_chars(cmd, "]", r, len_r);
}

int imap_arg_nstring(struct imap_cmd *cmd, const char **r, size_t *len_r)
{
	int c = cur(cmd);
	if (c == '"' || c == '{')
		return imap_arg_string(cmd, r, len_r);
	const char *atom;
	if (take_chars(cmd, NULL, &atom, NULL) < 0 || strcasecmp(atom, "NIL") != 0)
		return parse_fail(cmd, "Expected a string or NIL");
	*r = NULL;
	if (len_r != NULL)
		*len_r = 0;
	return 0;
}

int imap_arg_literal_stream(struct imap_cmd *cmd, uint64_t max,
                            int (*sink)(void *ctx, const void *p, size_t len), void *ctx,
                            struct imap_literal_info *info_r)
{
	bool nonsync;
	if (literal_header(cmd, true, info_r, &nonsync) < 0)
		return -1;
	if (info_r->size > max) {
		info_r->too_big = true;
		return literal_refuse(cmd, info_r->size, nonsync, "TOOBIG");
	}
	if (!nonsync && send_continuation(cmd->s) != CONN_OK)
		return parse_fail(cmd, "Connection lost");
	enum conn_status st = imap_io_read_stream(cmd->s, info_r->size, sink, ctx);
	if (st == CONN_SINK_FAILED)
		info_r->sink_failed = true;
	else if (st != CONN_OK) {
		cmd->s->logout = true;
		cmd->aborted = true;
		return parse_fail(cmd, "Connection lost");
	}
	return next_line(cmd);
}

static int number(struct imap_cmd *cmd, uint64_t max, uint64_t *r)
{
	size_t start = cmd->pos;
	while (cur(cmd) >= '0' && cur(cmd) <= '9')
		cmd->pos++;
	if (mem_to_u64(cmd->s->line.data + start, cmd->pos - start, max, r) < 0)
		return parse_fail(cmd, "Invalid number");
	return 0;
}

int imap_arg_number(struct imap_cmd *cmd, uint32_t *r)
{
	uint64_t v;
	if (number(cmd, UINT32_MAX, &v) < 0)
		return -1;
	*r = (uint32_t)v;
	return 0;
}

int imap_arg_nznumber(struct imap_cmd *cmd, uint32_t *r)
{
	if (imap_arg_number(cmd, r) < 0)
		return -1;
	return *r == 0 ? parse_fail(cmd, "Number must not be zero") : 0;
}

int imap_arg_number64(struct imap_cmd *cmd, uint64_t *r)
{
	return number(cmd, INT64_MAX, r);
}

int imap_arg_list_begin(struct imap_cmd *cmd)
{
	if (!imap_arg_skip(cmd, '('))
		return parse_fail(cmd, "Expected '('");
	if (++cmd->depth > IMAP_PAREN_DEPTH)
		return parse_fail(cmd, "Too deeply nested");
	return 0;
}

int imap_arg_list_end(struct imap_cmd *cmd)
{
	if (!imap_arg_skip(cmd, ')'))
		return parse_fail(cmd, "Expected ')'");
	cmd->depth--;
	return 0;
}

/* ---- sequence sets ---- */

static int seq_number(const char **p, const char *end, uint32_t *r)
{
	if (*p < end && **p == '*') {
		(*p)++;
		*r = IMAP_SEQ_STAR;
		return 0;
	}
	const char *start = *p;
	while (*p < end && **p >= '0' && **p <= '9')
		(*p)++;
	uint64_t v;
	if (mem_to_u64(start, (size_t)(*p - start), UINT32_MAX - 1, &v) < 0 || v == 0)
		return -1;
	*r = (uint32_t)v;
	return 0;
}

int imap_seqset_parse(const char *p, size_t len, struct arena *a, struct imap_seqset *r)
{
	const char *end = p + len;
	memset(r, 0, sizeof(*r));
	if (len == 1 && *p == '$') {
		r->saved = true;
		return 0;
	}
	size_t commas = 0;
	for (size_t i = 0; i < len; i++)
		commas += p[i] == ',';
	r->ranges = arena_alloc(a, (commas + 1) * sizeof(*r->ranges));
	for (;;) {
		struct imap_seq_range *rg = &r->ranges[r->n];
		if (seq_number(&p, end, &rg->lo) < 0)
			return -1;
		rg->hi = rg->lo;
		if (p < end && *p == ':') {
			p++;
			if (seq_number(&p, end, &rg->hi) < 0)
				return -1;
		}
		if (rg->lo > rg->hi) {
			uint32_t t = rg->lo;
			rg->lo = rg->hi;
			rg->hi = t;
		}
		r->n++;
		if (p == end)
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

int imap_arg_seqset(struct imap_cmd *cmd, struct imap_seqset *r)
{
	size_t start = cmd->pos;
	for (int c; (c = cur(cmd)) >= 0 && strchr("0123456789:,*$", c) != NULL;)
		cmd->pos++;
	if (imap_seqset_parse(cmd->s->line.data + start, cmd->pos - start, cmd->arena, r) < 0)
		return parse_fail(cmd, "Invalid sequence set");
	return 0;
}

void imap_seq_range_resolve(const struct imap_seq_range *rg, uint32_t star, uint32_t *lo_r,
                            uint32_t *hi_r)
{
	uint32_t lo = rg->lo == IMAP_SEQ_STAR ? star : rg->lo;
	uint32_t hi = rg->hi == IMAP_SEQ_STAR ? star : rg->hi;
	*lo_r = lo < hi ? lo : hi;
	*hi_r = lo < hi ? hi : lo;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	for (size_t i = 0; i < set->n; i++) {
		uint32_t lo, hi;
		imap_seq_range_resolve(&set->ranges[i], star, &lo, &hi);
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

/* ---- mailbox names and flags ---- */

static bool has_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* Names arrive in modified UTF-7, or UTF-8 once enabled; lenient clients
 * that send raw UTF-8 without enabling it are taken at their word. */
static int mailbox_decode(struct imap_cmd *cmd, const char *name, size_t len, const char **r)
{
	bool utf8 = (cmd->s->enabled & (IMAP_EXT_UTF8 | IMAP_EXT_REV2)) != 0;
	if (memchr(name, '\0', len) != NULL)
		return parse_fail(cmd, "Invalid mailbox name");
	if (utf8 || has_8bit(name, len)) {
		if (!imap_utf8_valid(name, len))
			return parse_fail(cmd, "Mailbox name is not valid UTF-8");
		*r = arena_memdup0(cmd->arena, name, len);
		return 0;
	}
	struct buf out;
	buf_init(&out, 4 * len + 16);
	if (imap_utf7_to_utf8(name, len, &out) < 0) {
		buf_free(&out);
		return parse_fail(cmd, "Mailbox name is not valid modified UTF-7");
	}
	*r = arena_memdup0(cmd->arena, buf_cstr(&out), out.len);
	buf_free(&out);
	return 0;
}

int imap_arg_mailbox(struct imap_cmd *cmd, const char **r)
{
	const char *name;
	size_t len;
	if (imap_arg_astring(cmd, &name, &len) < 0)
		return -1;
	if (len > 1 && name[len - 1] == '/')
		len--;
	if (mailbox_decode(cmd, name, len, r) < 0)
		return -1;
	if (strcasecmp(*r, "INBOX") == 0)
		*r = "INBOX";
	else if (strncasecmp(*r, "INBOX/", 6) == 0)
		*r = arena_printf(cmd->arena, "INBOX/%s", *r + 6);
	else
		*r = arena_memdup0(cmd->arena, *r, strlen(*r));
	return 0;
}

static const struct {
	const char *name;
	unsigned flag;
} system_flags[] = {
    {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
    {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
    {"\\Draft", STORE_FLAG_DRAFT},
};

#define IMAP_KEYWORDS_MAX 128

static int flag_one(struct imap_cmd *cmd, unsigned *flags, const char **kw, size_t *nkw)
{
	const char *f;
	if (imap_arg_skip(cmd, '\\')) {
		if (take_chars(cmd, NULL, &f, NULL) < 0)
			return -1;
		for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
			if (strcasecmp(f, system_flags[i].name + 1) == 0) {
				*flags |= system_flags[i].flag;
				return 0;
			}
		}
		return parse_fail(cmd, "Invalid system flag");
	}
	if (take_chars(cmd, NULL, &f, NULL) < 0)
		return -1;
	if (*nkw >= IMAP_KEYWORDS_MAX)
		return parse_fail(cmd, "Too many keywords");
	for (size_t i = 0; i < *nkw; i++)
		if (strcasecmp(kw[i], f) == 0)
			return 0;
	kw[(*nkw)++] = f;
	return 0;
}

int imap_arg_flags(struct imap_cmd *cmd, bool bare_ok, unsigned *flags_r, const char ***keywords_r)
{
	const char **kw = arena_alloc(cmd->arena, (IMAP_KEYWORDS_MAX + 1) * sizeof(*kw));
	size_t nkw = 0;
	bool paren = imap_arg_peek(cmd, '(');
	*flags_r = 0;
	if (!paren && !bare_ok)
		return parse_fail(cmd, "Expected a flag list");
	if (paren && imap_arg_list_begin(cmd) < 0)
		return -1;
	if (!paren || !imap_arg_peek(cmd, ')')) {
		do {
			if (flag_one(cmd, flags_r, kw, &nkw) < 0)
				return -1;
		} while (imap_arg_skip(cmd, ' '));
	}
	if (paren && imap_arg_list_end(cmd) < 0)
		return -1;
	kw[nkw] = NULL;
	*keywords_r = kw;
	return 0;
}

/* Only non-synchronising literals can follow: see the header. Whether the
 * literal that ends the line is one is for literal_header() to say, as
 * when a literal is read, so that no byte of one is taken for a command. */
void imap_arg_skip_rest(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	while (!cmd->aborted && !s->logout) {
		const struct buf *l = &s->line;
		size_t i = l->len;
		if (i == 0 || l->data[i - 1] != '}')
			return;
		while (i > 0 && l->data[i - 1] != '{')
			i--;
		if (i == 0)
			return;
		cmd->pos = i >= 2 && l->data[i - 2] == '~' ? i - 2 : i - 1;
		struct imap_literal_info info;
		bool nonsync;
		if (literal_header(cmd, true, &info, &nonsync) < 0 || !nonsync ||
		    literal_refuse(cmd, info.size, true, cmd->error_code) < 0)
			return;
	}
}
