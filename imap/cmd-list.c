/* cmd-list.c - LIST (RFC 3501, LIST-EXTENDED RFC 5258, CHILDREN RFC 3348,
 * SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819) and LSUB. */
#include "imap-private.h"

#include "xalloc.h"

#include <stdint.h>
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

/* The items by name: open addressing over indexes into the items array,
 * so that finding a parent costs one probe, not a pass over every item (a
 * 500-level hierarchy made LIST take seconds). */
struct item_index {
	size_t *slot; /* item index + 1; 0: free */
	size_t mask;
	size_t used;
};

static size_t name_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return (size_t)h;
}

/* The index of the item named p[0..n), or (size_t)-1. */
static size_t index_find(const struct item_index *x, const struct list_item *items, const char *p,
                         size_t n)
{
	for (size_t h = name_hash(p, n) & x->mask; x->slot[h] != 0; h = (h + 1) & x->mask) {
		const char *name = items[x->slot[h] - 1].name;
		if (strncmp(name, p, n) == 0 && name[n] == '\0')
			return x->slot[h] - 1;
	}
	return (size_t)-1;
}

static void index_put(struct item_index *x, const struct list_item *items, size_t i)
{
	if (2 * (x->used + 1) > x->mask + 1) {
		struct item_index bigger = {xcalloc(2 * (x->mask + 1), sizeof(size_t)),
		                            2 * (x->mask + 1) - 1, 0};
		for (size_t h = 0; h <= x->mask; h++)
			if (x->slot[h] != 0)
				index_put(&bigger, items, x->slot[h] - 1);
		free(x->slot);
		*x = bigger;
	}
	const char *name = items[i].name;
	size_t h = name_hash(name, strlen(name)) & x->mask;
	while (x->slot[h] != 0)
		h = (h + 1) & x->mask;
	x->slot[h] = i + 1;
	x->used++;
}

/* The length of name's parent's name, or 0 for a top-level name. */
static size_t parent_len(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash != NULL ? (size_t)(slash - name) : 0;
}

/* Real mailboxes, plus parents that only exist through their children;
 * which have children, and which have a subscribed one below them. */
static struct list_item *items_build(struct arena *a, const struct store_mailbox *mbs, size_t n,
                                     size_t *count_r)
{
	size_t cap = n * 2 + 1, k = 0;
	struct list_item *items = xcalloc(cap, sizeof(*items));
	struct item_index x = {xcalloc(16, sizeof(size_t)), 15, 0};
	for (size_t i = 0; i < n; i++) {
		items[k] = (struct list_item){.name = mbs[i].name, .mb = &mbs[i]};
		index_put(&x, items, k++);
	}
	/* Each missing ancestor once, walking up until one exists. */
	for (size_t i = 0; i < n; i++) {
		const char *name = mbs[i].name;
		for (size_t len = parent_len(name); len > 0; len = parent_len(items[k - 1].name)) {
			if (index_find(&x, items, name, len) != (size_t)-1)
				break;
			if (k == cap)
				items = xreallocarray(items, cap *= 2, sizeof(*items));
			items[k] = (struct list_item){.name = arena_memdup0(a, name, len)};
			index_put(&x, items, k++);
		}
	}
	/* Every item's parent has children; a subscribed mailbox marks all
	 * its ancestors, stopping where an earlier one already did. */
	for (size_t i = 0; i < k; i++) {
		size_t len = parent_len(items[i].name);
		if (len > 0)
			items[index_find(&x, items, items[i].name, len)].children = true;
		if (items[i].mb == NULL || !items[i].mb->subscribed)
			continue;
		for (size_t j = i; (len = parent_len(items[j].name)) > 0;) {
			j = index_find(&x, items, items[j].name, len);
			if (items[j].child_subscribed)
				break;
			items[j].child_subscribed = true;
		}
	}
	free(x.slot);
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

static void list_one(struct imap_session *s, PGconn **conn, const struct list_opts *o,
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
	if (o->status_items == 0 || it->mb == NULL)
		return;
	/* Without the connection the items that need it would be wrong: the
	 * STATUS is left out, as for a mailbox that cannot be opened (RFC
	 * 5819). */
	PGconn *db = NULL;
	if ((o->status_items & (IMAP_STATUS_RECENT | IMAP_STATUS_DELETED)) &&
	    (db = imap_db_again(s, conn)) == NULL)
		return;
	imap_status_send(s, db, it->mb, o->status_items);
}

static void list_run(struct imap_cmd *cmd, PGconn **conn, const struct list_opts *o,
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
	/* Only LIST-STATUS's RECENT needs the database while the list goes
	 * out; a slow reader must not keep the connection meanwhile. */
	imap_db_lend(cmd->s, &conn);
	if (e == STORE_OK)
		list_run(cmd, &conn, &o, mbs, n);
	imap_db_return(cmd->s, &conn);
	store_mailboxes_free(&mbs, n);
	imap_reply_store_err(cmd, e, "list");
	return 0;
}
