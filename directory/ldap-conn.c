/* ldap-conn.c - LDAP connections: failover across the configured URLs,
 * StartTLS or ldaps with the configured CA, timeouts on every step, and a
 * small pool per kind (service searches; user binds). */
#include "ldap-private.h"

#include "log.h"
#include "xalloc.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool ldapx_is_temporary(int rc)
{
	switch (rc) {
	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_TIMELIMIT_EXCEEDED:
	case LDAP_CONNECT_ERROR:
	case LDAP_BUSY:
	case LDAP_UNAVAILABLE:
	case LDAP_UNWILLING_TO_PERFORM:
	case LDAP_OTHER:
	case LDAP_LOCAL_ERROR:
	case LDAP_NO_MEMORY:
	case LDAP_ADMINLIMIT_EXCEEDED:
		return true;
	default:
		return false;
	}
}

/* Which URL answered last: later connections start there. */
static atomic_uint ldapx_last_url;

static int set_tls_options(LDAP *ld, const struct ldap_config *cfg)
{
	int require = cfg->tls_verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
	int zero = 0, rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
	if (rc == LDAP_SUCCESS && cfg->ca_file[0] != '\0')
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file);
	/* A context of this handle's own, so the options above take effect. */
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	return rc;
}

static int set_options(LDAP *ld, const struct ldap_config *cfg)
{
	int version = LDAP_VERSION3;
	struct timeval tv = {.tv_sec = (time_t)cfg->timeout_s};
	int rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (rc == LDAP_SUCCESS)
		rc = set_tls_options(ld, cfg);
	return rc;
}

int ldapx_simple_bind(LDAP *ld, const char *dn, const char *password)
{
	struct berval cred = {.bv_val = (char *)password, .bv_len = strlen(password)};
	if (cred.bv_len == 0 || dn[0] == '\0')
		return LDAP_INVALID_CREDENTIALS; /* an empty bind is anonymous: never */
	return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

static int connect_url(const struct ldap_config *cfg, const char *url, const char *dn,
                       const char *password, LDAP **ld_r)
{
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, url);
	if (rc == LDAP_SUCCESS)
		rc = set_options(ld, cfg);
	if (rc == LDAP_SUCCESS && strncmp(url, "ldap://", 7) == 0 && cfg->starttls)
		rc = ldap_start_tls_s(ld, NULL, NULL);
	if (rc == LDAP_SUCCESS && dn != NULL)
		rc = ldapx_simple_bind(ld, dn, password);
	if (rc == LDAP_SUCCESS && dn == NULL && strncmp(url, "ldaps://", 8) == 0) {
		/* ldaps connects lazily: make the TLS handshake happen now. */
		rc = ldap_connect(ld);
	}
	if (rc != LDAP_SUCCESS) {
		if (ld != NULL)
			ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	*ld_r = ld;
	return LDAP_SUCCESS;
}

int ldapx_connect(const struct ldap_config *cfg, const char *dn, const char *password, LDAP **ld_r,
                  char *error_r)
{
	int rc = LDAP_SERVER_DOWN;
	unsigned start = atomic_load(&ldapx_last_url);
	*ld_r = NULL;
	for (size_t i = 0; i < cfg->nurls; i++) {
		size_t u = (start + i) % cfg->nurls;
		rc = connect_url(cfg, cfg->urls[u], dn, password, ld_r);
		if (rc == LDAP_SUCCESS) {
			atomic_store(&ldapx_last_url, (unsigned)u);
			return rc;
		}
		if (!ldapx_is_temporary(rc) && rc != LDAP_CONNECT_ERROR)
			break; /* the server answered (e.g. wrong credentials): no failover */
		log_warn("event=ldap_connect_failed url=%s error=\"%s\"", cfg->urls[u],
		         ldap_err2string(rc));
	}
	directory_error(error_r, DIR_ETEMP, "LDAP: %s", ldap_err2string(rc));
	return rc;
}

/* ---- pools ---- */

struct ldapx_slot {
	LDAP *ld;
	unsigned generation; /* of the config it was opened with */
	bool busy;
};

struct ldapx_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	bool service;
	unsigned size;
	struct ldapx_slot *slots;
};

struct ldapx_pool *ldapx_pool_create(unsigned size, bool service)
{
	struct ldapx_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	p->service = service;
	p->size = size;
	p->slots = xcalloc(size, sizeof(*p->slots));
	return p;
}

void ldapx_pool_destroy(struct ldapx_pool **pp)
{
	struct ldapx_pool *p = *pp;
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->size; i++) {
		if (p->slots[i].ld != NULL)
			ldap_unbind_ext_s(p->slots[i].ld, NULL, NULL);
	}
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->slots);
	free(p);
	*pp = NULL;
}

/* A free slot (marked busy), waiting until the deadline. */
static struct ldapx_slot *pool_take(struct ldapx_pool *p, const struct timespec *deadline)
{
	struct ldapx_slot *s = NULL;
	pthread_mutex_lock(&p->lock);
	while (s == NULL) {
		/* Prefer a slot with an open connection. */
		for (unsigned i = 0; i < p->size; i++) {
			if (!p->slots[i].busy && (s == NULL || p->slots[i].ld != NULL))
				s = &p->slots[i];
		}
		if (s == NULL && pthread_cond_timedwait(&p->freed, &p->lock, deadline) == ETIMEDOUT)
			break;
	}
	if (s != NULL)
		s->busy = true;
	pthread_mutex_unlock(&p->lock);
	return s;
}

static struct ldapx_slot *slot_of(struct ldapx_pool *p, LDAP *ld)
{
	for (unsigned i = 0; i < p->size; i++) {
		if (p->slots[i].ld == ld && p->slots[i].busy)
			return &p->slots[i];
	}
	return NULL;
}

LDAP *ldapx_pool_get(struct ldapx_pool *p, const struct ldap_config *cfg, char *error_r)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)cfg->timeout_s;
	struct ldapx_slot *s = pool_take(p, &deadline);
	if (s == NULL) {
		directory_error(error_r, DIR_ETEMP, "LDAP: every connection is busy");
		return NULL;
	}
	if (s->ld != NULL && s->generation != cfg->generation) {
		ldap_unbind_ext_s(s->ld, NULL, NULL); /* settings changed since */
		s->ld = NULL;
	}
	if (s->ld == NULL) {
		const char *dn = p->service && cfg->bind_dn[0] != '\0' ? cfg->bind_dn : NULL;
		if (ldapx_connect(cfg, dn, cfg->bind_password, &s->ld, error_r) != LDAP_SUCCESS) {
			pthread_mutex_lock(&p->lock);
			s->busy = false;
			pthread_cond_signal(&p->freed);
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		s->generation = cfg->generation;
	}
	return s->ld;
}

void ldapx_pool_put(struct ldapx_pool *p, LDAP **ldp, bool broken)
{
	LDAP *ld = *ldp;
	*ldp = NULL;
	if (ld == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	struct ldapx_slot *s = slot_of(p, ld);
	assert(s != NULL);
	if (broken) {
		ldap_unbind_ext_s(s->ld, NULL, NULL);
		s->ld = NULL;
	}
	s->busy = false;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}
