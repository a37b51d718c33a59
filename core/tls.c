#include "tls.h"

#include "buf.h"
#include "log.h"
#include "privdrop.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_CERT_DAYS 825

/* TLS 1.2 suites with forward secrecy and AEAD (TLS 1.3 suites are all
 * fine and keep OpenSSL's defaults). */
static const char tls_ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

static _Thread_local char tls_errbuf[1024];
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_current;

/* Formats the error, adds OpenSSL's reason if there is one, sets *error_r. */
static int tls_fail(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int tls_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_errbuf, sizeof(tls_errbuf), fmt, ap);
	va_end(ap);
	/* The first error is the root cause (e.g. "No such file or
	 * directory"), the last one what OpenSSL was doing. */
	unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();
	for (int i = 0; i < 2 && first != 0; i++) {
		unsigned long e = i == 0 ? first : last;
		if (i == 1 && last == first)
			break;
		char reason[256];
		ERR_error_string_n(e, reason, sizeof(reason));
		size_t l = strlen(tls_errbuf);
		snprintf(tls_errbuf + l, sizeof(tls_errbuf) - l, "%s%s", i == 0 ? ": " : "; ",
		         reason);
	}
	ERR_clear_error();
	*error_r = tls_errbuf;
	return -1;
}

static SSL_CTX *tls_server_ctx_base(const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_fail(error_r, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* RELEASE_BUFFERS: an idle connection gives back its two ~17 KB record
	 * buffers; thousands of IMAP clients sit idle most of the time. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	static const unsigned char sid_ctx[] = "roost";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_set_cipher_list(ctx, tls_ciphers12) != 1) {
		tls_fail(error_r, "cannot set the cipher list");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, const char **error_r)
{
	SSL_CTX *ctx = tls_server_ctx_base(error_r);
	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_fail(error_r, "cannot load certificate chain %s", cert_file);
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_fail(error_r, "cannot load private key %s", key_file);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_fail(error_r, "private key %s does not match certificate %s", key_file,
		         cert_file);
	} else {
		return ctx;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_ctx_new(bool verify, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_fail(error_r, "cannot create TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (verify) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			tls_fail(error_r, "cannot load the system trust store");
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		/* RFC 6125 6.4.3: "*" only as the whole left-most label; the
		 * name itself is set per connection (conn_tls_connect). */
		X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
		                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

SSL_CTX *tls_server_ctx_ref(void)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX *ctx = tls_current;
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&tls_lock);
	return ctx;
}

void tls_ctx_unref(SSL_CTX **ctx)
{
	if (*ctx != NULL)
		SSL_CTX_free(*ctx);
	*ctx = NULL;
}

/* Installs ctx (taking over the caller's reference); frees our reference to
 * the old one: connections using it still hold theirs. */
static void tls_install(SSL_CTX *ctx)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX *old = tls_current;
	tls_current = ctx;
	pthread_mutex_unlock(&tls_lock);
	if (old != NULL)
		SSL_CTX_free(old);
}

void tls_server_cleanup(void)
{
	tls_install(NULL);
}

/* --- The self-signed certificate. --- */

static int tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int r = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return r == 1 ? 0 : -1;
}

/* subjectAltName DNS:hostname, built as a structure rather than from config
 * text, so a host name with commas cannot smuggle in other names. */
static int tls_add_san(X509 *x, const char *hostname)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ret = -1;
	if (names == NULL || gn == NULL || ia5 == NULL ||
	    ASN1_STRING_set(ia5, hostname, (int)strlen(hostname)) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(ia5);
		goto out;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	if (sk_GENERAL_NAME_push(names, gn) <= 0) {
		GENERAL_NAME_free(gn);
		goto out;
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1)
		ret = 0;
out:
	GENERAL_NAMES_free(names);
	return ret;
}

static int tls_fill_cert(X509 *x, EVP_PKEY *key, const char *hostname)
{
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return -1;
	serial[0] &= 0x7f; /* positive */
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	if (!ok || X509_set_version(x, X509_VERSION_3) != 1)
		return -1;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL) == NULL)
		return -1;
	X509_NAME *name = X509_get_subject_name(x);
	/* CN is at most 64 characters; the SAN carries the full name anyway. */
	const char *cn = strlen(hostname) <= 64 ? hostname : "roost";
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1)
		return -1;
	if (tls_add_san(x, hostname) < 0 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    tls_add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash") < 0)
		return -1;
	return X509_sign(x, key, EVP_sha256()) > 0 ? 0 : -1;
}

/* Writes PEM through a temporary file renamed into place, mode given. */
static int tls_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
                         const char **error_r)
{
	struct buf tmp;
	buf_init(&tmp, 4096);
	buf_printf(&tmp, "%s.tmp", path);
	unlink(buf_cstr(&tmp));
	int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok = f != NULL;
	if (f == NULL && fd >= 0)
		close(fd);
	if (ok)
		ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		                 : PEM_write_X509(f, cert);
	if (f != NULL) {
		ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
		ok = (fclose(f) == 0) && ok;
	}
	if (ok && rename(buf_cstr(&tmp), path) < 0)
		ok = 0;
	if (!ok) {
		int e = errno;
		unlink(buf_cstr(&tmp));
		buf_free(&tmp);
		return tls_fail(error_r, "cannot write %s: %s", path, strerror(e));
	}
	buf_free(&tmp);
	return 0;
}

static int tls_generate(const char *cert_path, const char *key_path, const char *hostname,
                        const char **error_r)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int ret;
	if (key == NULL || x == NULL || tls_fill_cert(x, key, hostname) < 0)
		ret =
		    tls_fail(error_r, "cannot generate a self-signed certificate for %s", hostname);
	else if (tls_write_pem(key_path, 0600, key, NULL, error_r) < 0 ||
	         tls_write_pem(cert_path, 0644, NULL, x, error_r) < 0)
		ret = -1;
	else
		ret = 0;
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

int tls_selfsigned_ensure(const char *dir, const char *hostname, char **cert_r, char **key_r,
                          const char **error_r)
{
	*cert_r = *key_r = NULL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return tls_fail(error_r, "cannot create %s: %s", dir, strerror(errno));
	struct buf cert, key;
	buf_init(&cert, 8192);
	buf_init(&key, 8192);
	buf_printf(&cert, "%s/cert.pem", dir);
	buf_printf(&key, "%s/key.pem", dir);
	if (access(buf_cstr(&cert), F_OK) < 0 || access(buf_cstr(&key), F_OK) < 0) {
		if (tls_generate(buf_cstr(&cert), buf_cstr(&key), hostname, error_r) < 0) {
			buf_free(&cert);
			buf_free(&key);
			return -1;
		}
		char q[LOG_QUOTE_MAX];
		log_info("event=tls_selfsigned cert=%s host=%s days=%d", buf_cstr(&cert),
		         log_quote(q, sizeof(q), hostname), TLS_CERT_DAYS);
	}
	*cert_r = buf_steal(&cert, NULL);
	*key_r = buf_steal(&key, NULL);
	return 0;
}

/* Root generates the files; the server user must still read them on SIGHUP. */
static void tls_give_to_user(const struct config *cfg, const char *dir, const char *cert,
                             const char *key)
{
	uid_t uid;
	gid_t gid;
	const char *err;
	if (geteuid() != 0 ||
	    privdrop_lookup(config_str(cfg, CFG_SERVER_USER), &uid, &gid, &err) < 0)
		return;
	if (chown(dir, uid, gid) < 0 || chown(cert, uid, gid) < 0 || chown(key, uid, gid) < 0)
		log_warn("event=tls_chown dir=%s error=\"%s\"", dir, strerror(errno));
}

static SSL_CTX *tls_server_ctx_from_config(const struct config *cfg, const char **error_r)
{
	char *cert = config_file_path(cfg, CFG_TLS_CERT);
	char *key = config_file_path(cfg, CFG_TLS_KEY);
	if (cert[0] != '\0') {
		SSL_CTX *ctx = tls_server_ctx_new(cert, key[0] != '\0' ? key : cert, error_r);
		free(cert);
		free(key);
		return ctx;
	}
	free(cert);
	free(key);
	char host[256] = "";
	snprintf(host, sizeof(host), "%s", config_str(cfg, CFG_SERVER_HOSTNAME));
	if (host[0] == '\0' && (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0'))
		snprintf(host, sizeof(host), "localhost");
	struct buf dir;
	buf_init(&dir, 8192);
	char *data_dir = config_data_dir(cfg);
	buf_append_str(&dir, data_dir);
	free(data_dir);
	buf_append_str(&dir, "/tls");
	char *cpath, *kpath;
	SSL_CTX *ctx = NULL;
	if (tls_selfsigned_ensure(buf_cstr(&dir), host, &cpath, &kpath, error_r) == 0) {
		tls_give_to_user(cfg, buf_cstr(&dir), cpath, kpath);
		ctx = tls_server_ctx_new(cpath, kpath, error_r);
		free(cpath);
		free(kpath);
	}
	buf_free(&dir);
	return ctx;
}

int tls_server_setup(const struct config *cfg, const char **error_r)
{
	SSL_CTX *ctx = tls_server_ctx_from_config(cfg, error_r);
	if (ctx == NULL)
		return -1;
	tls_install(ctx);
	return 0;
}

int tls_server_reload(const struct config *cfg, const char **error_r)
{
	SSL_CTX *ctx = tls_server_ctx_from_config(cfg, error_r);
	if (ctx == NULL) {
		char q[LOG_QUOTE_MAX];
		log_error("event=tls_reload status=failed error=%s (keeping the old certificate)",
		          log_quote(q, sizeof(q), *error_r));
		return -1;
	}
	tls_install(ctx);
	log_info("event=tls_reload status=ok");
	return 0;
}
