/* cmd-list.c - LIST (RFC 3501, LIST-EXTENDED RFC 5258, CHILDREN RFC 3348,
 * SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819) and LSUB. */
#include "imap-private.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define IMAP_LIST_PATTERNS_MAX 32

struct list_opts {
	bool lsub;
	bool extended; /* any LIST-EXTENDED syntax was used */
	bool sel_subscribed, sel_special, recursive;
	bool ret_subscribed, ret_special;
	unsigned status_items; /* 0: no STATUS */
	const char **patterns;
	size_t npatterns;
};

struct list_item {
	const char *name;
	const struct store_mailbox *mb; /* NULL: exists only as a parent */
	bool children;
	bool child_subscribed;
};

/* '*' matches anything, '%' anything but the separator. One pass over the
 * pattern keeping the set of name positions reached so far: no recursion
 * (a pattern of 64K wildcards would exhaust a thread's stack), and time
 * bounded by the pattern's length times the name's, where backtracking
 * took exponential time on "*" runs that fail to match. */
static bool match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	bool *cur = xcalloc(n + 1, sizeof(*cur)), *next = xcalloc(n + 1, sizeof(*next));
	cur[0] = true;
	bool any = true;
	for (const char *p = pat; *p != '\0' && any; p++) {
		any = false;
		if (*p == '*' || *p == '%') {
			bool star = false;
			for (; p[1] == '*' || p[1] == '%'; p++)
				star |= *p == '*';
			star |= *p == '*';
			bool on = false;
			for (size_t j = 0; j <= n; j++) {
				if (j > 0 && !star && name[j - 1] == '/')
					on = false;
				on |= cur[j];
				next[j] = on;
				any |= on;
			}
		} else {
			next[0] = false;
			for (size_t j = 0; j < n; j++) {
				next[j + 1] = cur[j] && name[j] == *p;
				any |= next[j + 1];
			}
		}
		bool *t = cur;
		cur = next;
		next = t;
	}
	bool r = any && cur[n];
	free(cur);
	free(next);
	return r;
}

static int parse_select_opts(struct imap_cmd *cmd, struct list_opts *o)
{
	const char *opt;
	o->extended = true;
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	while (!imap_arg_peek(cmd, ')')) {
		if (imap_arg_atom(cmd, &opt) < 0)
			return -1;
		if (strcasecmp(opt, "SUBSCRIBED") == 0)
			o->sel_subscribed = o->ret_subscribed = true;
		else if (strcasecmp(opt, "SPECIAL-USE") == 0)
			o->sel_special = o->ret_special = true;
		else if (strcasecmp(opt, "RECURSIVEMATCH") == 0)
			o->recursive = true;
		else if (strcasecmp(opt, "REMOTE") != 0)
			return cmd->error = "Unknown LIST selection option", -1;
		imap_arg_skip(cmd, ' ');
	}
	if (o->recursive && !o->sel_subscribed)
		return cmd->error = "RECURSIVEMATCH needs another selection option", -1;
	if (imap_arg_list_end(cmd) < 0)
		return -1;
	return imap_arg_sp(cmd);
}

static int parse_return_opts(struct imap_cmd *cmd, struct list_opts *o)
{
	const char *opt;
	o->extended = true;
	if (imap_arg_atom(cmd, &opt) < 0 || strcasecmp(opt, "RETURN") != 0 ||
	    imap_arg_sp(cmd) < 0 || imap_arg_list_begin(cmd) < 0)
		return cmd->error = "Expected RETURN options", -1;
	while (!imap_arg_peek(cmd, ')')) {
		if (imap_arg_atom(cmd, &opt) < 0)
			return -1;
		if (strcasecmp(opt, "SUBSCRIBED") == 0)
			o->ret_subscribed = true;
		else if (strcasecmp(opt, "SPECIAL-USE") == 0)
			o->ret_special = true;
		else if (strcasecmp(opt, "STATUS") == 0) {
			if (imap_arg_sp(cmd) < 0 ||
			    imap_status_items_parse(cmd, &o->status_items) < 0)
				return -1;
		} else if (strcasecmp(opt, "CHILDREN") != 0)
			return cmd->error = "Unknown LIST return option", -1;
		imap_arg_skip(cmd, ' ');
	}
	return imap_arg_list_end(cmd);
}

/* Reference and pattern into a UTF-8 pattern; "INBOX" in any case is
 * INBOX. */
static const char *pattern_make(struct imap_cmd *cmd, const char *ref, const char *pat, size_t len)
{
	bool utf8 = (cmd->s->enabled & (IMAP_EXT_UTF8 | IMAP_EXT_REV2)) != 0;
	char *raw = arena_printf(cmd->arena, "%s%.*s", ref, (int)len, pat);
	size_t rawlen = strlen(raw);
	struct buf b;
	buf_init(&b, 4 * rawlen + 16);
	char *full = raw;
	if (!utf8 && imap_utf7_to_utf8(raw, rawlen, &b) == 0)
		full = arena_memdup0(cmd->arena, buf_cstr(&b), b.len);
	buf_free(&b);
	if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == '/'))
		memcpy(full, "INBOX", 5);
	return full;
}

static int parse_patterns(struct imap_cmd *cmd, const char *ref, struct list_opts *o)
{
	const char *pat;
	size_t len;
	bool paren = imap_arg_peek(cmd, '(');
	o->patterns = arena_alloc(cmd->arena, IMAP_LIST_PATTERNS_MAX * sizeof(*o->patterns));
	if (paren) {
		if (o->lsub || imap_arg_list_begin(cmd) < 0)
			return -1;
		o->extended = true;
	}
	do {
		if (o->npatterns == IMAP_LIST_PATTERNS_MAX)
			return cmd->error = "Too many patterns", -1;
		if (imap_arg_list_mailbox(cmd, &pat, &len) < 0)
			return -1;
		o->patterns[o->npatterns++] = pattern_make(cmd, ref, pat, len);
	} while (paren && imap_arg_skip(cmd, ' '));
	return paren ? imap_arg_list_end(cmd) : 0;
}

static int parse_list(struct imap_cmd *cmd, struct list_opts *o, bool *empty_r)
{
	const char *ref;
	o->lsub = strcmp(cmd->name, "LSUB") == 0;
	if (imap_arg_sp(cmd) < 0)
		return -1;
	if (!o->lsub && imap_arg_peek(cmd, '(') && parse_select_opts(cmd, o) < 0)
		return -1;
	if (imap_arg_astring(cmd, &ref, NULL) < 0)
		return -1;
	if (imap_arg_sp(cmd) < 0 || parse_patterns(cmd, ref, o) < 0)
		return -1;
	if (!o->lsub && imap_arg_skip(cmd, ' ') && parse_return_opts(cmd, o) < 0)
		return -1;
	*empty_r = o->npatterns == 1 && o->patterns[0][0] == '\0';
	return imap_arg_end(cmd);
}

static int item_cmp(const void *a, const void *b)
{
	const struct list_item *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool is_child(const char *parent, const char *name)
{
	size_t n = strlen(parent);
	return strncmp(parent, name, n) == 0 && name[n] == '/';
}

static bool items_have(const struct list_item *items, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(items[i].name, name) == 0)
			return true;
	return false;
}

/* Real mailboxes, plus parents that only exist through their children. */
static struct list_item *items_build(struct arena *a, const struct store_mailbox *mbs, size_t n,
                                     size_t *count_r)
{
	size_t cap = n * 2 + 1, k = 0;
	struct list_item *items = xcalloc(cap, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		items[k++] = (struct list_item){.name = mbs[i].name, .mb = &mbs[i]};
	for (size_t i = 0; i < n; i++) {
		for (const char *p = strchr(mbs[i].name, '/'); p != NULL; p = strchr(p + 1, '/')) {
			const char *parent =
			    arena_memdup0(a, mbs[i].name, (size_t)(p - mbs[i].name));
			if (items_have(items, k, parent))
				continue;
			if (k == cap)
				items = xreallocarray(items, cap *= 2, sizeof(*items));
			items[k++] = (struct list_item){.name = parent};
		}
	}
	for (size_t i = 0; i < k; i++) {
		for (size_t j = 0; j < k; j++) {
			if (i == j || !is_child(items[i].name, items[j].name))
				continue;
			items[i].children = true;
			if (items[j].mb != NULL && items[j].mb->subscribed)
				items[i].child_subscribed = true;
		}
	}
	qsort(items, k, sizeof(*items), item_cmp);
	*count_r = k;
	return items;
}

static bool selected(const struct list_opts *o, const struct list_item *it, bool *childinfo)
{
	bool sub = it->mb != NULL && it->mb->subscribed;
	*childinfo = false;
	if (o->lsub)
		return sub;
	if (o->sel_special && (it->mb == NULL || it->mb->special_use == NULL))
		return false;
	if (o->sel_subscribed && !sub) {
		*childinfo = o->recursive && it->child_subscribed;
		return *childinfo;
	}
	if (o->sel_subscribed && o->recursive && it->child_subscribed)
		*childinfo = true;
	return true;
}

static void attrs_format(const struct list_opts *o, const struct list_item *it, struct buf *b)
{
	if (it->mb == NULL)
		buf_append_str(b, o->extended ? " \\NonExistent" : " \\Noselect");
	buf_append_str(b, it->children ? " \\HasChildren" : " \\HasNoChildren");
	if (it->mb != NULL && it->mb->special_use != NULL && !o->lsub)
		buf_printf(b, " %s", it->mb->special_use);
	if (o->ret_subscribed && it->mb != NULL && it->mb->subscribed)
		buf_append_str(b, " \\Subscribed");
}

static void list_one(struct imap_session *s, PGconn *conn, const struct list_opts *o,
                     const struct list_item *it, bool childinfo)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	attrs_format(o, it, &b);
	imap_printf(s, "* %s (%s) \"/\" ", o->lsub ? "LSUB" : "LIST", b.len > 0 ? b.data + 1 : "");
	buf_free(&b);
	imap_write_mailbox(s, it->name);
	if (childinfo)
		imap_write_str(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_write_str(s, "\r\n");
	if (o->status_items != 0 && it->mb != NULL)
		imap_status_send(s, conn, it->mb, o->status_items);
}

static void list_run(struct imap_cmd *cmd, PGconn *conn, const struct list_opts *o,
                     const struct store_mailbox *mbs, size_t n)
{
	size_t count;
	struct list_item *items = items_build(cmd->arena, mbs, n, &count);
	for (size_t i = 0; i < count; i++) {
		bool childinfo;
		if (!selected(o, &items[i], &childinfo))
			continue;
		for (size_t p = 0; p < o->npatterns; p++) {
			if (match(o->patterns[p], items[i].name)) {
				list_one(cmd->s, conn, o, &items[i], childinfo);
				break;
			}
		}
	}
	free(items);
}

int imap_cmd_list(struct imap_cmd *cmd)
{
	struct list_opts o = {0};
	bool empty;
	if (parse_list(cmd, &o, &empty) < 0)
		return -1;
	if (empty) {
		if (!o.lsub)
			imap_untagged(cmd->s, "LIST (\\Noselect) \"/\" \"\"");
		imap_reply_ok(cmd, "%s completed", cmd->name);
		return 0;
	}
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	enum store_err e = store_mailbox_list(conn, cmd->s->account.id, &mbs, &n);
	if (e == STORE_OK)
		list_run(cmd, conn, &o, mbs, n);
	imap_db_return(cmd->s, &conn);
	store_mailboxes_free(&mbs, n);
	imap_reply_store_err(cmd, e, "list");
	return 0;
}
