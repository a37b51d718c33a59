/* search-thread.c - the THREAD algorithms of RFC 5256: ORDEREDSUBJECT and
 * REFERENCES (section 3), on messages whose header values came from the
 * messages table. Pure: no I/O, testable.
 *
 * A thread can be as deep as the mailbox is large (each message replying to
 * the one before), so no walk here recurses and none costs a container's
 * depth per message: trees are walked through an array in breadth-first
 * order, sibling lists are doubly linked with a tail, and step 1's loop
 * checks use a link-cut tree. */
#include "imap-search.h"

#include "xalloc.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

struct tcont {
	const struct imap_thread_msg *msg; /* NULL: a dummy */
	char *id;                          /* message-id without <>, or NULL */
	struct tcont *parent;
	struct tcont *child, *last; /* first and last child */
	struct tcont *next, *prev;  /* siblings */
	struct tcont *hnext;        /* hash chain */
	/* Step 1's link-cut tree over the same parent links (lct_*). */
	struct tcont *lc_left, *lc_right, *lc_up;
	/* Sort key: the message's or (dummy) its first child's. */
	time_t date;
	uint32_t seq;
};

struct tctx {
	struct tcont **hash;
	size_t nhash, nids;
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

/* References can name far more ids than there are messages: the table
 * grows so that chains stay short. */
static void tctx_rehash(struct tctx *t)
{
	size_t nhash = t->nhash * 2 + 1;
	struct tcont **hash = xcalloc(nhash, sizeof(*hash));
	for (size_t i = 0; i < t->nall; i++) {
		struct tcont *c = t->all[i];
		if (c->id == NULL)
			continue;
		size_t h = tid_hash(c->id, nhash);
		c->hnext = hash[h];
		hash[h] = c;
	}
	free(t->hash);
	t->hash = hash;
	t->nhash = nhash;
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
		if (++t->nids > t->nhash)
			tctx_rehash(t); /* c is in all[]: hashed there */
		else {
			size_t h = tid_hash(id, t->nhash);
			c->hnext = t->hash[h];
			t->hash[h] = c;
		}
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

static void tcont_unlink(struct tcont *c)
{
	struct tcont *p = c->parent;
	if (p == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->child = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		p->last = c->prev;
	c->next = c->prev = c->parent = NULL;
}

/* Appends c to p's children (no loops: checked by the caller). */
static void tcont_link(struct tcont *p, struct tcont *c)
{
	tcont_unlink(c);
	c->parent = p;
	c->prev = p->last;
	if (p->last != NULL)
		p->last->next = c;
	else
		p->child = c;
	p->last = c;
}

/* ---- Step 1's loop checks ----
 * Linking c below p makes a loop when c is an ancestor of p. Walking up
 * from p costs p's depth, quadratic over a long chain of replies; a
 * link-cut tree (Sleator and Tarjan, splay-based) over the same parent
 * links finds p's root in amortised logarithmic time. c is always a root
 * when linked, so the check is lct_root(p) == c. Each container's splay
 * tree holds one path of the thread ordered by depth; lc_up is the splay
 * parent, or for a splay root the path's parent container. */

static bool lct_splay_root(const struct tcont *x)
{
	const struct tcont *u = x->lc_up;
	return u == NULL || (u->lc_left != x && u->lc_right != x);
}

static void lct_rotate(struct tcont *x)
{
	struct tcont *y = x->lc_up, *z = y->lc_up;
	bool y_root = lct_splay_root(y);
	if (y->lc_left == x) {
		y->lc_left = x->lc_right;
		if (x->lc_right != NULL)
			x->lc_right->lc_up = y;
		x->lc_right = y;
	} else {
		y->lc_right = x->lc_left;
		if (x->lc_left != NULL)
			x->lc_left->lc_up = y;
		x->lc_left = y;
	}
	y->lc_up = x;
	x->lc_up = z;
	if (!y_root) {
		if (z->lc_left == y)
			z->lc_left = x;
		else
			z->lc_right = x;
	}
}

static void lct_splay(struct tcont *x)
{
	while (!lct_splay_root(x)) {
		struct tcont *y = x->lc_up;
		if (!lct_splay_root(y)) {
			struct tcont *z = y->lc_up;
			lct_rotate((z->lc_left == y) == (y->lc_left == x) ? y : x);
		}
		lct_rotate(x);
	}
}

/* Makes root..x one splay tree with x at its top and nothing deeper. */
static void lct_access(struct tcont *x)
{
	struct tcont *below = NULL;
	for (struct tcont *y = x; y != NULL; y = y->lc_up) {
		lct_splay(y);
		y->lc_right = below;
		below = y;
	}
	lct_splay(x);
}

static struct tcont *lct_root(struct tcont *x)
{
	lct_access(x);
	struct tcont *r = x;
	while (r->lc_left != NULL)
		r = r->lc_left;
	lct_splay(r);
	return r;
}

/* c, a root, goes below p in both structures. */
static void thread_attach(struct tcont *p, struct tcont *c)
{
	lct_access(c);
	c->lc_up = p;
	tcont_link(p, c);
}

static void thread_detach(struct tcont *c)
{
	if (c->parent == NULL)
		return;
	lct_access(c);
	c->lc_left->lc_up = NULL;
	c->lc_left = NULL;
	tcont_unlink(c);
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
		if (prev != NULL && c->parent == NULL && c != prev && lct_root(prev) != c)
			thread_attach(prev, c);
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
	thread_detach(c);
	if (last != NULL && last != c && lct_root(last) != c)
		thread_attach(last, c);
}

/* The containers of top's tree, top first, each before its children
 * (breadth-first); sets every child's parent link on the way. Walking the
 * array backwards visits children before their parents. Caller frees. */
static struct tcont **tree_order(struct tcont *top, size_t *n_r)
{
	size_t cap = 64, n = 0;
	struct tcont **v = xreallocarray(NULL, cap, sizeof(*v));
	v[n++] = top;
	for (size_t i = 0; i < n; i++)
		for (struct tcont *k = v[i]->child; k != NULL; k = k->next) {
			if (n == cap) {
				cap *= 2;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			k->parent = v[i];
			v[n++] = k;
		}
	*n_r = n;
	return v;
}

/* Step 3 for one container whose children are pruned already: each dummy
 * child gives way to its own children (messages by now), except a root
 * dummy with two or more. The moved children's parent links are left to
 * the caller: a message can move up many dummies, one relink each would be
 * quadratic. */
static void thread_prune_kids(struct tcont *p, bool is_top)
{
	struct tcont *head = NULL, *tail = NULL;
	for (struct tcont *c = p->child, *next; c != NULL; c = next) {
		next = c->next;
		struct tcont *h = c, *e = c;
		if (c->msg == NULL && !(is_top && c->child != NULL && c->child->next != NULL)) {
			h = c->child;
			e = c->last;
			c->child = c->last = c->next = c->prev = c->parent = NULL;
			if (h == NULL)
				continue;
		}
		h->prev = tail;
		if (tail != NULL)
			tail->next = h;
		else
			head = h;
		tail = e;
	}
	if (tail != NULL)
		tail->next = NULL;
	p->child = head;
	p->last = tail;
}

/* Step 3: prunes dummies; roots are the children of a fake top container. */
static void thread_prune(struct tcont *top)
{
	size_t n;
	struct tcont **v = tree_order(top, &n);
	for (size_t i = n; i-- > 1;)
		thread_prune_kids(v[i], false);
	thread_prune_kids(top, true);
	free(v);
	free(tree_order(top, &n)); /* for the parent links */
}

static int tcont_cmp(const void *a, const void *b)
{
	const struct tcont *x = *(struct tcont *const *)a, *y = *(struct tcont *const *)b;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts p's children (their keys are set) and sets p's key; v has room
 * for them. */
static void thread_sort_kids(struct tcont *p, struct tcont **v)
{
	size_t n = 0;
	for (struct tcont *c = p->child; c != NULL; c = c->next)
		v[n++] = c;
	if (p->msg != NULL) {
		p->date = p->msg->date;
		p->seq = p->msg->id;
	} else if (p->child != NULL) {
		p->date = p->child->date;
		p->seq = p->child->seq;
	}
	if (n < 2)
		return;
	qsort(v, n, sizeof(*v), tcont_cmp);
	for (size_t i = 0; i < n; i++) {
		v[i]->prev = i > 0 ? v[i - 1] : NULL;
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
	}
	p->child = v[0];
	p->last = v[n - 1];
	if (p->msg == NULL)
		p->date = v[0]->date, p->seq = v[0]->seq;
}

/* Step 4: sorts every sibling set by date (a dummy by its first child). */
static void thread_sort(struct tcont *top)
{
	size_t n;
	struct tcont **v = tree_order(top, &n);
	struct tcont **kids = xreallocarray(NULL, n, sizeof(*kids));
	for (size_t i = n; i-- > 0;)
		thread_sort_kids(v[i], kids);
	free(kids);
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

/* d takes keep's place among the roots; keep goes below it. */
static void thread_replace_root(struct tcont *top, struct tcont *keep, struct tcont *d)
{
	d->parent = top;
	d->prev = keep->prev;
	d->next = keep->next;
	if (keep->prev != NULL)
		keep->prev->next = d;
	else
		top->child = d;
	if (keep->next != NULL)
		keep->next->prev = d;
	else
		top->last = d;
	keep->parent = keep->next = keep->prev = NULL;
	tcont_link(d, keep);
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
	thread_replace_root(top, keep, d);
	tcont_link(d, c);
	return d;
}

/* Step 5: merges root threads with the same base subject. */
static void thread_group_subjects(struct tctx *t, struct tcont *top)
{
	struct tsubj *ents = xcalloc(t->nall + 1, sizeof(*ents));
	void *tree = thread_subject_table(top, ents);
	for (struct tcont *c = top->child, *next; c != NULL; c = next) {
		next = c->next;
		const struct imap_thread_msg *m = tcont_subject_msg(c);
		struct tsubj key = {m != NULL ? m->base_subject : NULL, NULL, false};
		struct tsubj **found =
		    key.base == NULL || key.base[0] == '\0' ? NULL : tfind(&key, &tree, tsubj_cmp);
		if (found == NULL || (*found)->root == c)
			continue;
		struct tcont *keep = (*found)->root;
		tcont_unlink(c); /* c leaves the root list */
		struct tcont *d = thread_merge(t, top, keep, c);
		if (d != NULL) {
			(*found)->root = d;
			if (next == keep)
				next = d;
		}
	}
	tdestroy(tree, tsubj_keep);
	free(ents);
}

/* Writes the threads: each root, and each child of a container with more
 * than one, in parentheses; a chain of only children as ids separated by
 * spaces. A thread can nest as deep as it is long, so the open branches
 * are an explicit stack rather than recursion. */
static void thread_render_roots(const struct tcont *top, struct buf *out)
{
	size_t cap = 64, depth = 0;
	const struct tcont **open = xreallocarray(NULL, cap, sizeof(*open));
	const struct tcont *c = top->child; /* the next branch to open */
	while (c != NULL || depth > 0) {
		if (c == NULL) { /* the innermost branch is complete */
			buf_append_char(out, ')');
			c = open[--depth]->next;
			continue;
		}
		if (depth == cap) {
			cap *= 2;
			open = xreallocarray(open, cap, sizeof(*open));
		}
		open[depth++] = c;
		buf_append_char(out, '(');
		bool first = true;
		const struct tcont *x = c;
		while (x->child != NULL && x->child->next == NULL) {
			if (x->msg != NULL) {
				buf_printf(out, first ? "%u" : " %u", x->msg->id);
				first = false;
			}
			x = x->child;
		}
		if (x->msg != NULL) {
			buf_printf(out, first ? "%u" : " %u", x->msg->id);
			first = false;
		}
		if (x->child != NULL && !first)
			buf_append_char(out, ' ');
		c = x->child;
	}
	free(open);
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
	for (size_t i = 0; i < t.nall; i++)
		if (t.all[i]->parent == NULL)
			tcont_link(&top, t.all[i]);
	thread_prune(&top);
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
