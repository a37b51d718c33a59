/* Config parsing: the table's defaults, every value type, error messages
 * naming file, line and key, listen address lists. */
#include "unit.h"

#include "config.h"
#include "strnum.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *config_write_tmp(const char *body)
{
	char *path = strdup("/tmp/roost-test-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return path;
	if (write(fd, body, strlen(body)) < 0)
		unit_fail(__FILE__, __LINE__, "write");
	close(fd);
	return path;
}

/* Loads body; returns the error text (malloc'd) or NULL on success. */
static char *config_try(const char *body, struct config **cfg_r)
{
	char *path = config_write_tmp(body);
	char *err = NULL;
	struct config *cfg = NULL;
	if (config_load(path, false, &cfg, &err) == 0) {
		if (cfg_r != NULL)
			*cfg_r = cfg;
		else
			config_free(&cfg);
	}
	unlink(path);
	free(path);
	return err;
}

UNIT_TEST(config_defaults_follow_the_table)
{
	struct config *cfg = config_defaults();
	const struct config_setting *t = config_settings();
	for (int i = 0; i < CFG__COUNT; i++) {
		CHECK(t[i].section != NULL && t[i].key != NULL && t[i].doc != NULL);
		CHECK_STR(config_str(cfg, (enum config_key)i), t[i].def);
		if (t[i].type == CONFIG_UINT || t[i].type == CONFIG_SIZE ||
		    t[i].type == CONFIG_SECONDS)
			CHECK(t[i].min <= t[i].max);
	}
	CHECK_INT(config_uint(cfg, CFG_LIMITS_LINE_LENGTH), 64 * 1024);
	CHECK_INT(config_uint(cfg, CFG_LIMITS_IDLE_TIMEOUT), 30 * 60);
	CHECK(!config_bool(cfg, CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK));
	config_free(&cfg);
	CHECK(cfg == NULL);
}

UNIT_TEST(config_values_of_every_type)
{
	struct config *cfg = NULL;
	char *err =
	    config_try("; comment\n# comment\n\n[server]\n  hostname = mx.example.org   ; inline\n"
	               "allow_plaintext_loopback = On\nlog_level = debug\n"
	               "data_dir = \"/var/x;y\"\n[limits]\nmessage_size = 10M\n"
	               "idle_timeout = 31m\nconnections = 77\n[listen]\nimap=\n"
	               "pop3 = 127.0.0.1:110,[::1]:110 , 10.0.0.1:1110\n",
	               &cfg);
	CHECK(err == NULL);
	if (cfg == NULL)
		return;
	CHECK_STR(config_str(cfg, CFG_SERVER_HOSTNAME), "mx.example.org");
	CHECK_STR(config_str(cfg, CFG_SERVER_DATA_DIR), "/var/x;y");
	CHECK(config_bool(cfg, CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK));
	CHECK_INT(config_uint(cfg, CFG_LIMITS_MESSAGE_SIZE), 10 * 1024 * 1024);
	CHECK_INT(config_uint(cfg, CFG_LIMITS_IDLE_TIMEOUT), 31 * 60);
	CHECK_INT(config_uint(cfg, CFG_LIMITS_CONNECTIONS), 77);
	CHECK_STR(config_str(cfg, CFG_LISTEN_IMAP), "");
	struct config_listen_addr *a = NULL;
	size_t n = 0;
	CHECK(config_listen(cfg, CFG_LISTEN_POP3, &a, &n) == 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(a[0].host, "127.0.0.1");
		CHECK_STR(a[0].port, "110");
		CHECK_STR(a[1].host, "::1");
		CHECK_STR(a[2].port, "1110");
	}
	free(a);
	config_free(&cfg);
}

static const struct {
	const char *body;
	const char *error; /* after "PATH:" */
} config_bad[] = {
    {"[server]\nhostnme = x\n", "2: [server] hostnme: unknown key"},
    {"[nope]\n", "1: unknown section [nope]"},
    {"x = 1\n", "1: key outside any [section]"},
    {"[server\n", "1: section header without ']'"},
    {"[server] junk\n", "1: text after section header"},
    {"[server]\nwords\n", "2: expected key = value"},
    {"[limits]\nconnections = 0\n",
     "2: [limits] connections: out of range (minimum 1, maximum 100000)"},
    {"[limits]\nconnections = -1\n", "2: [limits] connections: not a whole number"},
    {"[limits]\nconnections = 1 000\n", "2: [limits] connections: not a whole number"},
    {"[limits]\nconnections = 99999999999999999999999\n",
     "2: [limits] connections: not a whole number"},
    {"[limits]\nmessage_size = 5X\n",
     "2: [limits] message_size: not a size (a number with an optional K, M, G or T)"},
    {"[limits]\nmessage_size = 16777216T\n",
     "2: [limits] message_size: not a size (a number with an optional K, M, G or T)"},
    {"[limits]\nidle_timeout = 5\n",
     "2: [limits] idle_timeout: out of range (minimum 10, maximum 86400)"},
    {"[limits]\nidle_timeout = 1w\n",
     "2: [limits] idle_timeout: not a duration (a number with an optional s, m, h or d)"},
    {"[server]\nallow_plaintext_loopback = perhaps\n",
     "2: [server] allow_plaintext_loopback: not yes or no"},
    {"[server]\nlog_level = verbose\n", "2: [server] log_level: not one of the allowed values"},
    {"[listen]\nimap = localhost\n", "2: [listen] imap: expected host:port"},
    {"[listen]\nimap = :143\n", "2: [listen] imap: missing or over-long host"},
    {"[listen]\nimap = ::1:143\n", "2: [listen] imap: IPv6 addresses go in brackets: [::1]:port"},
    {"[listen]\nimap = [::1]143\n", "2: [listen] imap: expected [address]:port"},
    {"[listen]\nimap = 1.2.3.4:0\n", "2: [listen] imap: port must be a number from 1 to 65535"},
    {"[listen]\nimap = 1.2.3.4:65536\n", "2: [listen] imap: port must be a number from 1 to 65535"},
    {"[listen]\nimap = 1.2.3.4:http\n", "2: [listen] imap: port must be a number from 1 to 65535"},
};

UNIT_TEST(config_errors_name_file_line_and_key)
{
	for (size_t i = 0; i < sizeof(config_bad) / sizeof(config_bad[0]); i++) {
		char *err = config_try(config_bad[i].body, NULL);
		CHECK(err != NULL);
		if (err == NULL)
			continue;
		/* After "FILE:", an offset (a pointer into err trips GCC 12's
		 * -Wdangling-pointer in Release builds). */
		size_t colon = strcspn(err, ":");
		bool same = err[colon] == ':' && strcmp(err + colon + 1, config_bad[i].error) == 0;
		CHECK(same);
		if (!same)
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
		free(err);
	}
}

UNIT_TEST(config_missing_file)
{
	struct config *cfg = NULL;
	char *err = NULL;
	CHECK(config_load("/nonexistent/roost.conf", false, &cfg, &err) == -1);
	CHECK_STR(err, "/nonexistent/roost.conf: cannot read: No such file or directory");
	free(err);
	CHECK(config_load("/nonexistent/roost.conf", true, &cfg, &err) == 0);
	CHECK(cfg != NULL);
	config_free(&cfg);
}

UNIT_TEST(config_set_and_current)
{
	struct config *cfg = config_defaults();
	char *err = NULL;
	CHECK(config_set(cfg, "limits", "recipients", "5", &err) == 0);
	CHECK_INT(config_uint(cfg, CFG_LIMITS_RECIPIENTS), 5);
	CHECK(config_set(cfg, "limits", "recipients", "0", &err) == -1);
	free(err);
	err = NULL;
	CHECK(config_set(cfg, "limits", "bogus", "0", &err) == -1);
	free(err);
	config_set_current(cfg);
	CHECK(config_current() == cfg);
	struct config *cfg2 = config_defaults();
	config_set_current(cfg2); /* the old one stays valid */
	CHECK_INT(config_uint(cfg, CFG_LIMITS_RECIPIENTS), 5);
	CHECK(config_current() == cfg2);
}

UNIT_TEST(config_reference_lists_every_key)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	config_write_reference(&b);
	const struct config_setting *t = config_settings();
	for (int i = 0; i < CFG__COUNT; i++) {
		char row[128];
		snprintf(row, sizeof(row), "| `%s` |", t[i].key);
		CHECK(strstr(b.data, row) != NULL);
	}
	CHECK(strstr(b.data, "### [limits]") != NULL);
	buf_free(&b);
}

UNIT_TEST(strnum_strict)
{
	uint64_t v;
	CHECK(str_to_u64("0", UINT64_MAX, &v) == 0 && v == 0);
	CHECK(str_to_u64("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX);
	CHECK(str_to_u64("18446744073709551616", UINT64_MAX, &v) == -1);
	CHECK(str_to_u64("4294967296", UINT32_MAX, &v) == -1);
	CHECK(str_to_u64("", UINT64_MAX, &v) == -1);
	CHECK(str_to_u64("+1", UINT64_MAX, &v) == -1);
	CHECK(str_to_u64(" 1", UINT64_MAX, &v) == -1);
	CHECK(str_to_u64("1 ", UINT64_MAX, &v) == -1);
	CHECK(str_to_u64("0x10", UINT64_MAX, &v) == -1);
	CHECK(mem_to_u64("123abc", 3, 1000, &v) == 0 && v == 123);
	uint32_t u;
	CHECK(str_to_u32("4294967295", &u) == 0 && u == UINT32_MAX);
	CHECK(str_to_u32("4294967296", &u) == -1);
	CHECK(str_to_size("10M", &v) == 0 && v == 10ULL << 20);
	CHECK(str_to_size("1GiB", &v) == 0 && v == 1ULL << 30);
	CHECK(str_to_size("512k", &v) == 0 && v == 512ULL << 10);
	CHECK(str_to_size("7", &v) == 0 && v == 7);
	CHECK(str_to_size("M", &v) == -1);
	CHECK(str_to_size("10MM", &v) == -1);
	CHECK(str_to_size("99999999999T", &v) == -1);
	CHECK(str_to_seconds("2h", &v) == 0 && v == 7200);
	CHECK(str_to_seconds("1d", &v) == 0 && v == 86400);
	char out[24];
	size_format(10ULL << 20, out, sizeof(out));
	CHECK_STR(out, "10M");
	size_format(1500, out, sizeof(out));
	CHECK_STR(out, "1500");
	size_format(0, out, sizeof(out));
	CHECK_STR(out, "0");
}
