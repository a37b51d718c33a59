/* search-subject.c - RFC 5256 base subject and first-address keys for SORT
 * and THREAD. */
#include "imap-search.h"

#include <stdbool.h>
#include <string.h>

static bool subj_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Step 1: whitespace runs become one space, leading/trailing space goes. */
static void subj_collapse(const char *in, struct buf *out)
{
	bool space = false;
	for (; *in != '\0'; in++) {
		if (subj_is_wsp(*in)) {
			space = out->len > 0;
			continue;
		}
		if (space)
			buf_append_char(out, ' ');
		space = false;
		buf_append_char(out, *in);
	}
}

/* Step 2: removes trailing "(fwd)" and spaces. */
static bool subj_strip_trailer(struct buf *s)
{
	bool changed = false;
	for (;;) {
		if (s->len > 0 && s->data[s->len - 1] == ' ') {
			buf_truncate(s, s->len - 1);
			changed = true;
		} else if (s->len >= 5 && mem_eq_ci(s->data + s->len - 5, 5, "(fwd)")) {
			buf_truncate(s, s->len - 5);
			changed = true;
		} else {
			return changed;
		}
	}
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns its length at p or 0. */
static size_t subj_blob_len(const char *p)
{
	if (*p != '[')
		return 0;
	size_t i = 1;
	while (p[i] != '\0' && p[i] != '[' && p[i] != ']')
		i++;
	if (p[i] != ']')
		return 0;
	i++;
	while (subj_is_wsp(p[i]))
		i++;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; length or 0. */
static size_t subj_refwd_len(const char *p)
{
	size_t i;
	if (str_starts_ci(p, "re"))
		i = 2;
	else if (str_starts_ci(p, "fwd"))
		i = 3;
	else if (str_starts_ci(p, "fw"))
		i = 2;
	else
		return 0;
	while (subj_is_wsp(p[i]))
		i++;
	i += subj_blob_len(p + i);
	return p[i] == ':' ? i + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP, at the start of s. */
static size_t subj_leader_len(const char *p)
{
	if (subj_is_wsp(*p))
		return 1;
	size_t i = 0, b;
	while ((b = subj_blob_len(p + i)) > 0)
		i += b;
	size_t r = subj_refwd_len(p + i);
	return r > 0 ? i + r : 0;
}

/* Steps 3 to 5: leaders, then one blob if something remains after it. */
static bool subj_strip_leaders(struct buf *s, bool *reply_r)
{
	bool changed = false, again = true;
	while (again) {
		again = false;
		size_t n;
		while (s->len > 0 && (n = subj_leader_len(s->data)) > 0) {
			if (!subj_is_wsp(s->data[0]))
				*reply_r = true;
			buf_consume(s, n);
			again = changed = true;
		}
		n = subj_blob_len(s->data == NULL ? "" : s->data);
		if (n > 0 && n < s->len) {
			buf_consume(s, n);
			again = changed = true;
		}
	}
	return changed;
}

/* Step 6: "[fwd: subject]" becomes "subject". */
static bool subj_strip_fwd(struct buf *s, bool *reply_r)
{
	if (s->len < 6 || !str_starts_ci(s->data, "[fwd:") || s->data[s->len - 1] != ']')
		return false;
	buf_truncate(s, s->len - 1);
	buf_consume(s, 5);
	*reply_r = true;
	return true;
}

void imap_base_subject(const char *subject, struct buf *out, bool *reply_r)
{
	bool reply = false;
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	subj_collapse(subject, &tmp);
	for (;;) {
		bool changed = true;
		while (changed) {
			changed = subj_strip_trailer(&tmp);
			changed = subj_strip_leaders(&tmp, &reply) || changed;
		}
		if (!subj_strip_fwd(&tmp, &reply))
			break;
		/* Back to step 2 with the inner subject (collapsed already,
		 * but its start may now be a space). */
		while (tmp.len > 0 && tmp.data[0] == ' ')
			buf_consume(&tmp, 1);
	}
	buf_reset(out);
	buf_append(out, tmp.data == NULL ? "" : tmp.data, tmp.len);
	buf_free(&tmp);
	if (reply_r != NULL)
		*reply_r = reply;
}

/* Skips a quoted string or (nested) comment at p; returns the index after. */
static size_t addr_skip_special(const char *p, size_t i)
{
	if (p[i] == '"') {
		for (i++; p[i] != '\0' && p[i] != '"'; i++)
			if (p[i] == '\\' && p[i + 1] != '\0')
				i++;
		return p[i] == '"' ? i + 1 : i;
	}
	int depth = 0;
	for (; p[i] != '\0'; i++) {
		if (p[i] == '\\' && p[i + 1] != '\0')
			i++;
		else if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && --depth == 0)
			return i + 1;
	}
	return i;
}

static void addr_copy_local(const char *p, struct buf *out)
{
	while (subj_is_wsp(*p))
		p++;
	for (; *p != '\0' && *p != '@' && *p != '>' && *p != ','; p++)
		if (!subj_is_wsp(*p) && *p != '"')
			buf_append_char(out, *p);
}

void imap_first_mailbox(const char *addrs, struct buf *out)
{
	buf_reset(out);
	size_t i = 0;
	while (addrs[i] != '\0' && addrs[i] != ',') {
		if (addrs[i] == '"' || addrs[i] == '(') {
			i = addr_skip_special(addrs, i);
			continue;
		}
		if (addrs[i] == '<') {
			addr_copy_local(addrs + i + 1, out);
			return;
		}
		if (addrs[i] == ':') { /* a group: its first member */
			imap_first_mailbox(addrs + i + 1, out);
			return;
		}
		i++;
	}
	addr_copy_local(addrs, out);
}
