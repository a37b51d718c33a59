/* search-thread.c - the THREAD algorithms of RFC 5256: ORDEREDSUBJECT and
 * REFERENCES (section 3), on messages whose header values came from the
 * messages table. Pure: no I/O, testable. */
#include "imap-search.h"

#include "xalloc.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

struct tcont {
	const struct imap_thread_msg *msg; /* NULL: a dummy */
	char *id;                          /* message-id without <>, or NULL */
	struct tcont *parent, *child, *next;
	struct tcont *hnext; /* hash chain */
	/* Sort key: the message's or (dummy) its first child's. */
	time_t date;
	uint32_t seq;
};

struct tctx {
	struct tcont **hash;
	size_t nhash;
	struct tcont **all;
	size_t nall, capall;
};

static size_t tid_hash(const char *s, size_t n)
{
	size_t h = 5381;
	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h % n;
}

static struct tcont *tcont_new(struct tctx *t, const char *id)
{
	struct tcont *c = xcalloc(1, sizeof(*c));
	c->id = id == NULL ? NULL : xstrdup(id);
	if (t->nall == t->capall) {
		t->capall = t->capall == 0 ? 64 : t->capall * 2;
		t->all = xreallocarray(t->all, t->capall, sizeof(*t->all));
	}
	t->all[t->nall++] = c;
	if (id != NULL) {
		size_t h = tid_hash(id, t->nhash);
		c->hnext = t->hash[h];
		t->hash[h] = c;
	}
	return c;
}

static struct tcont *tcont_lookup(struct tctx *t, const char *id, bool create)
{
	for (struct tcont *c = t->hash[tid_hash(id, t->nhash)]; c != NULL; c = c->hnext)
		if (strcmp(c->id, id) == 0)
			return c;
	return create ? tcont_new(t, id) : NULL;
}

/* Next "<...>" in *p as a malloc'd id (without brackets), or NULL. */
static char *tid_next(const char **p)
{
	for (;;) {
		const char *lt = strchr(*p, '<');
		if (lt == NULL)
			return NULL;
		const char *gt = strchr(lt + 1, '>');
		if (gt == NULL)
			return NULL;
		*p = gt + 1;
		if (gt > lt + 1 && memchr(lt + 1, '<', (size_t)(gt - lt - 1)) == NULL)
			return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	}
}

static bool tcont_reachable(const struct tcont *from, const struct tcont *to)
{
	for (const struct tcont *c = to; c != NULL; c = c->parent)
		if (c == from)
			return true;
	return false;
}

static void tcont_unlink(struct tcont *c)
{
	if (c->parent == NULL)
		return;
	struct tcont **pp = &c->parent->child;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	c->next = NULL;
	c->parent = NULL;
}

/* Appends c to p's children (no loops: checked by the caller). */
static void tcont_link(struct tcont *p, struct tcont *c)
{
	tcont_unlink(c);
	c->parent = p;
	struct tcont **pp = &p->child;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = c;
}

/* Step 1A: link the references of one message in order. Returns the last
 * reference's container, or NULL. */
static struct tcont *thread_link_refs(struct tctx *t, const struct imap_thread_msg *m)
{
	const char *p = m->references != NULL ? m->references : "";
	char *id = tid_next(&p);
	if (id == NULL) {
		p = m->in_reply_to != NULL ? m->in_reply_to : "";
		id = tid_next(&p);
		p = ""; /* only the first In-Reply-To id counts */
	}
	struct tcont *prev = NULL;
	while (id != NULL) {
		struct tcont *c = tcont_lookup(t, id, true);
		free(id);
		if (prev != NULL && c->parent == NULL && c != prev && !tcont_reachable(c, prev))
			tcont_link(prev, c);
		prev = c;
		id = tid_next(&p);
	}
	return prev;
}

static void thread_add(struct tctx *t, const struct imap_thread_msg *m)
{
	const char *p = m->message_id != NULL ? m->message_id : "";
	char *id = tid_next(&p);
	struct tcont *c = id != NULL ? tcont_lookup(t, id, true) : NULL;
	if (c == NULL || c->msg != NULL) /* none, or a duplicate: unique container */
		c = tcont_new(t, NULL);
	free(id);
	c->msg = m;
	struct tcont *last = thread_link_refs(t, m);
	tcont_unlink(c);
	if (last != NULL && last != c && !tcont_reachable(c, last))
		tcont_link(last, c);
}

/* Step 3: prunes dummies below (and among) the children of parent; roots
 * are the children of a fake top container. */
static void thread_prune(struct tcont *parent, bool is_top)
{
	struct tcont **pp = &parent->child;
	while (*pp != NULL) {
		struct tcont *c = *pp;
		thread_prune(c, false);
		if (c->msg != NULL || (is_top && c->child != NULL && c->child->next != NULL)) {
			pp = &c->next;
			continue;
		}
		/* A dummy without a message: splice its children in its place. */
		struct tcont *kids = c->child, *after = c->next;
		*pp = kids;
		for (struct tcont *k = kids; k != NULL; k = k->next) {
			k->parent = parent;
			if (k->next == NULL) {
				k->next = after;
				break;
			}
		}
		if (kids == NULL)
			*pp = after;
		c->child = c->next = NULL;
		c->parent = NULL;
	}
}

static int tcont_cmp(const void *a, const void *b)
{
	const struct tcont *x = *(struct tcont *const *)a, *y = *(struct tcont *const *)b;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Step 4: sorts every sibling set by date (a dummy by its first child). */
static void thread_sort(struct tcont *parent)
{
	size_t n = 0;
	for (struct tcont *c = parent->child; c != NULL; c = c->next) {
		thread_sort(c);
		n++;
	}
	if (parent->msg != NULL) {
		parent->date = parent->msg->date;
		parent->seq = parent->msg->id;
	} else if (parent->child != NULL) {
		parent->date = parent->child->date;
		parent->seq = parent->child->seq;
	}
	if (n < 2)
		return;
	struct tcont **v = xcalloc(n, sizeof(*v));
	n = 0;
	for (struct tcont *c = parent->child; c != NULL; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), tcont_cmp);
	for (size_t i = 0; i < n; i++)
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
	parent->child = v[0];
	if (parent->msg == NULL)
		parent->date = v[0]->date, parent->seq = v[0]->seq;
	free(v);
}

struct tsubj {
	const char *base;
	struct tcont *root;
	bool reply;
};

static const struct imap_thread_msg *tcont_subject_msg(const struct tcont *c)
{
	return c->msg != NULL ? c->msg : (c->child != NULL ? c->child->msg : NULL);
}

static int tsubj_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tsubj *)a)->base, ((const struct tsubj *)b)->base);
}

/* The entries live in one array freed at once. */
static void tsubj_keep(void *p)
{
	(void)p;
}

/* Step 5A-C: the subject table, one entry per base subject: the root to
 * keep (a dummy before a message, a non-reply before a reply). */
static void *thread_subject_table(struct tcont *top, struct tsubj *ents)
{
	void *tree = NULL;
	size_t ne = 0;
	for (struct tcont *c = top->child; c != NULL; c = c->next) {
		const struct imap_thread_msg *m = tcont_subject_msg(c);
		if (m == NULL || m->base_subject == NULL || m->base_subject[0] == '\0')
			continue;
		ents[ne] = (struct tsubj){m->base_subject, c, c->msg != NULL && m->reply};
		struct tsubj **found = tsearch(&ents[ne], &tree, tsubj_cmp);
		if (*found == &ents[ne]) {
			ne++;
			continue;
		}
		struct tsubj *old = *found;
		if ((old->root->msg != NULL && c->msg == NULL) ||
		    (old->reply && c->msg != NULL && !ents[ne].reply)) {
			old->root = c;
			old->reply = ents[ne].reply;
		}
	}
	return tree;
}

/* Step 5E: c (already out of the root list) joins keep's thread. Returns
 * the dummy that replaced keep in the root list, or NULL. */
static struct tcont *thread_merge(struct tctx *t, struct tcont *top, struct tcont *keep,
                                  struct tcont *c)
{
	if (keep->msg == NULL && c->msg == NULL) {
		while (c->child != NULL)
			tcont_link(keep, c->child);
		return NULL;
	}
	if (keep->msg == NULL || (c->msg != NULL && c->msg->reply && !keep->msg->reply)) {
		tcont_link(keep, c);
		return NULL;
	}
	struct tcont *d = tcont_new(t, NULL);
	struct tcont **kp = &top->child;
	while (*kp != keep)
		kp = &(*kp)->next;
	*kp = d;
	d->parent = top;
	d->next = keep->next;
	keep->next = NULL;
	keep->parent = NULL;
	tcont_link(d, keep);
	tcont_link(d, c);
	return d;
}

/* Step 5: merges root threads with the same base subject. */
static void thread_group_subjects(struct tctx *t, struct tcont *top)
{
	struct tsubj *ents = xcalloc(t->nall + 1, sizeof(*ents));
	void *tree = thread_subject_table(top, ents);
	struct tcont **pp = &top->child;
	while (*pp != NULL) {
		struct tcont *c = *pp;
		const struct imap_thread_msg *m = tcont_subject_msg(c);
		struct tsubj key = {m != NULL ? m->base_subject : NULL, NULL, false};
		struct tsubj **found =
		    key.base == NULL || key.base[0] == '\0' ? NULL : tfind(&key, &tree, tsubj_cmp);
		if (found == NULL || (*found)->root == c) {
			pp = &c->next;
			continue;
		}
		struct tcont *keep = (*found)->root;
		*pp = c->next; /* c leaves the root list */
		c->next = NULL;
		c->parent = NULL;
		struct tcont *d = thread_merge(t, top, keep, c);
		if (d != NULL) {
			(*found)->root = d;
			if (pp == &keep->next)
				pp = &d->next;
		}
	}
	tdestroy(tree, tsubj_keep);
	free(ents);
}

/* Writes one container and its descendants (inside the parentheses of its
 * thread or branch). */
static void thread_render(const struct tcont *c, struct buf *out)
{
	bool first = true;
	while (c != NULL) {
		if (c->msg != NULL) {
			buf_printf(out, first ? "%u" : " %u", c->msg->id);
			first = false;
		}
		if (c->child == NULL)
			return;
		if (c->child->next == NULL) {
			c = c->child;
			continue;
		}
		if (!first)
			buf_append_char(out, ' ');
		for (const struct tcont *k = c->child; k != NULL; k = k->next) {
			buf_append_char(out, '(');
			thread_render(k, out);
			buf_append_char(out, ')');
		}
		return;
	}
}

static void thread_render_roots(const struct tcont *top, struct buf *out)
{
	for (const struct tcont *c = top->child; c != NULL; c = c->next) {
		buf_append_char(out, '(');
		thread_render(c, out);
		buf_append_char(out, ')');
	}
}

static void tctx_free(struct tctx *t)
{
	for (size_t i = 0; i < t->nall; i++) {
		free(t->all[i]->id);
		free(t->all[i]);
	}
	free(t->all);
	free(t->hash);
}

void imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	struct tctx t = {0};
	t.nhash = n * 2 + 1;
	t.hash = xcalloc(t.nhash, sizeof(*t.hash));
	for (size_t i = 0; i < n; i++)
		thread_add(&t, &msgs[i]);
	struct tcont top = {0};
	/* Step 2: the roots, in the order the containers were made. */
	struct tcont **tail = &top.child;
	for (size_t i = 0; i < t.nall; i++) {
		struct tcont *c = t.all[i];
		if (c->parent == NULL) {
			c->parent = &top;
			*tail = c;
			tail = &c->next;
		}
	}
	thread_prune(&top, true);
	thread_sort(&top);
	thread_group_subjects(&t, &top);
	thread_sort(&top);
	thread_render_roots(&top, out);
	tctx_free(&t);
}

static int omsg_cmp(const void *a, const void *b)
{
	const struct imap_thread_msg *x = *(const struct imap_thread_msg *const *)a;
	const struct imap_thread_msg *y = *(const struct imap_thread_msg *const *)b;
	int r = strcmp(x->base_subject, y->base_subject);
	if (r != 0)
		return r;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	struct tctx t = {0};
	t.nhash = 1;
	t.hash = xcalloc(1, sizeof(*t.hash));
	const struct imap_thread_msg **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = &msgs[i];
	qsort(v, n, sizeof(*v), omsg_cmp);
	struct tcont top = {0};
	struct tcont *root = NULL;
	for (size_t i = 0; i < n; i++) {
		struct tcont *c = tcont_new(&t, NULL);
		c->msg = v[i];
		if (root != NULL && strcmp(root->msg->base_subject, v[i]->base_subject) == 0) {
			tcont_link(root, c);
			continue;
		}
		root = c;
		tcont_link(&top, c);
	}
	thread_sort(&top);
	thread_render_roots(&top, out);
	free(v);
	tctx_free(&t);
}
