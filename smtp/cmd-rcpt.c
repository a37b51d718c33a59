/* cmd-rcpt.c - RCPT TO: who may receive, decided here and never by a later
 * bounce.
 *
 * A recipient in a local domain must resolve (directory_resolve: account,
 * alias, list, sub-address, catch-all) or gets 550 5.1.1. Any other
 * recipient is relayed only for an authenticated user; everyone else gets
 * 554 5.7.1 whatever the sender or HELO. Source routes ("@a:b@c") are
 * dropped by the address parser, so only the final mailbox counts, and
 * '%', '!' and quoted local parts are just characters of a local part: in a
 * local domain they name nobody (550), elsewhere they are relaying (554).
 * The address is resolved first (the common case needs no other lookup);
 * only when nothing resolves do we ask whether the domain is ours. Quota is
 * checked here too, so that DATA rarely fails for it. */
#include "smtp-private.h"

#include "log.h"
#include "smtp-reply.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>

static struct smtp_rcpt *smtp_rcpt_add(struct smtp_tx *tx, const char *address,
                                       const struct smtp_rcpt_params *p)
{
	if (tx->nrcpts == tx->cap) {
		tx->cap = tx->cap == 0 ? 8 : tx->cap * 2;
		tx->rcpts = xreallocarray(tx->rcpts, tx->cap, sizeof(*tx->rcpts));
	}
	struct smtp_rcpt *r = &tx->rcpts[tx->nrcpts++];
	memset(r, 0, sizeof(*r));
	snprintf(r->address, sizeof(r->address), "%s", address);
	r->params = *p;
	return r;
}

static bool smtp_rcpt_known(const struct smtp_tx *tx, const char *address)
{
	for (size_t i = 0; i < tx->nrcpts; i++)
		if (strcmp(tx->rcpts[i].address, address) == 0)
			return true;
	return false;
}

/* Keeps the accounts of res that have room; 1 and a reply when none has
 * (or the only one cannot ever take the message), -1 on temporary failure. */
static int smtp_rcpt_quota(struct smtp_session *s, struct directory_resolution *res,
                           const char *addr)
{
	uint64_t size = s->tx.params.has_size ? s->tx.params.size : 0;
	size_t kept = 0;
	int worst = 0;
	char q_addr[LOG_QUOTE_MAX];
	for (size_t i = 0; i < res->naccounts; i++) {
		int q = smtp_quota_check(s, res->accounts[i], size);
		if (q < 0)
			return -1;
		if (q == 0)
			res->accounts[kept++] = res->accounts[i];
		else
			log_info("event=rcpt_over_quota rcpt=%s account=%lld",
			         log_quote(q_addr, sizeof(q_addr), addr),
			         (long long)res->accounts[i]);
		worst = q > worst ? q : worst;
	}
	res->naccounts = kept;
	if (kept > 0 || res->nremote > 0)
		return 0;
	if (worst == 2)
		smtp_reply(s->c, 552, "5.2.2", "<%s>: message too large for the mailbox quota",
		           addr);
	else
		smtp_reply(s->c, 452, "4.2.2", "<%s>: mailbox full", addr);
	return 1;
}

/* The "tag" of user+tag@dom, unless an account has that very address. */
static void smtp_rcpt_detail(struct smtp_session *s, const struct address *to, char *detail)
{
	struct address base;
	struct directory_account acct;
	char full[ADDRESS_BUF_SIZE];
	detail[0] = '\0';
	if (address_split_detail(to, ADDRESS_DETAIL_SEPARATOR, &base, detail) != 1)
		return;
	address_lookup_key(to, full);
	if (directory_account_get(s->srv->dir, full, &acct, NULL) != DIR_ENOTFOUND)
		detail[0] = '\0';
}

/* A recipient that resolved to local accounts and/or forwards. */
static enum smtp_outcome smtp_rcpt_local(struct smtp_session *s, const struct address *to,
                                         const char *addr, const struct smtp_rcpt_params *p,
                                         struct directory_resolution *res)
{
	int q = smtp_rcpt_quota(s, res, addr);
	if (q != 0) {
		directory_resolution_free(res);
		if (q < 0)
			smtp_reply(s->c, 451, "4.4.3",
			           "Temporary directory failure, try again later");
		return SMTP_DONE;
	}
	struct smtp_rcpt *r = smtp_rcpt_add(&s->tx, addr, p);
	r->accounts = res->accounts;
	r->naccounts = res->naccounts;
	r->remote = res->remote;
	r->nremote = res->nremote;
	if (r->naccounts > 0) {
		smtp_rcpt_detail(s, to, r->detail);
		s->tx.nlocal++;
	}
	if (r->nremote > 0)
		s->tx.nremote++;
	smtp_reply(s->c, 250, "2.1.5", "Ok");
	return SMTP_DONE;
}

static enum smtp_outcome smtp_rcpt_remote(struct smtp_session *s, const char *addr,
                                          const struct smtp_rcpt_params *p)
{
	if (!s->authenticated) {
		char q1[LOG_QUOTE_MAX], q2[LOG_QUOTE_MAX], q3[LOG_QUOTE_MAX];
		log_info("event=relay_denied rcpt=%s from=%s helo=%s",
		         log_quote(q1, sizeof(q1), addr), log_quote(q2, sizeof(q2), s->tx.from_str),
		         log_quote(q3, sizeof(q3), s->helo));
		smtp_reply(s->c, 554, "5.7.1", "<%s>: Relay access denied", addr);
		return SMTP_DONE;
	}
	struct smtp_rcpt *r = smtp_rcpt_add(&s->tx, addr, p);
	r->remote = xcalloc(1, sizeof(*r->remote));
	r->remote[0] = xstrdup(addr);
	r->nremote = 1;
	s->tx.nremote++;
	smtp_reply(s->c, 250, "2.1.5", "Ok");
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len)
{
	if (s->tx.nrcpts >= config_uint(s->cfg, CFG_LIMITS_RECIPIENTS)) {
		smtp_reply(s->c, 452, "4.5.3", "Too many recipients");
		return SMTP_DONE;
	}
	struct address to;
	struct smtp_rcpt_params p;
	const char *err = "";
	enum smtp_parse_status st = smtp_parse_rcpt(args, len, &to, &p, &err);
	if (st != SMTP_PARSE_OK)
		return smtp_reply_parse_err(s, st, "5.1.3", err);
	if (to.utf8 && !s->tx.params.smtputf8) {
		smtp_reply(s->c, 553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8");
		return SMTP_BAD;
	}
	char addr[ADDRESS_BUF_SIZE];
	address_format(&to, addr);
	if (smtp_rcpt_known(&s->tx, addr)) {
		smtp_reply(s->c, 250, "2.1.5", "Ok (duplicate recipient)");
		return SMTP_DONE;
	}
	/* Resolve first: the common case (a local recipient) needs no other
	 * lookup. Nothing resolves in a domain that is not ours, and address
	 * literals are never ours. */
	struct directory_resolution res = {0};
	enum directory_err e =
	    to.domain_literal ? DIR_ENOTFOUND : directory_resolve(s->srv->dir, addr, &res, NULL);
	if (e == DIR_OK)
		return smtp_rcpt_local(s, &to, addr, &p, &res);
	directory_resolution_free(&res);
	bool local = false;
	if (e == DIR_ENOTFOUND || e == DIR_EPERM) {
		enum directory_err le =
		    to.domain_literal
		        ? DIR_OK
		        : directory_is_local_domain(s->srv->dir, to.domain, &local, NULL);
		if (le != DIR_OK)
			e = le;
		else if (!local)
			return smtp_rcpt_remote(s, addr, &p);
	}
	/* A disabled account is refused like an unknown one. */
	return smtp_reply_dir_err(s, e == DIR_EPERM ? DIR_ENOTFOUND : e, addr);
}
