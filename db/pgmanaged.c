/* pgmanaged.c - the managed local PostgreSQL cluster (pgmanaged.h). */
#include "pgmanaged.h"

#include "buf.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGM_PKGLIBDIR      "/usr/lib/postgresql"
#define PGM_DEFAULT_USER   "roost"
#define PGM_DB_USER        "roost"
#define PGM_DB_NAME        "roost"
#define PGM_PORT           "5432"
#define PGM_SOCKET_FILE    ".s.PGSQL." PGM_PORT
#define PGM_SOCKET_LOCK    PGM_SOCKET_FILE ".lock"
#define PGM_OUTPUT_MAX     ((size_t)64 * 1024) /* child output kept for error messages */
#define PGM_TAIL_LINES     12                  /* lines of it shown in an error */
#define PGM_START_TIMEOUT  "120"               /* seconds, pg_ctl -t */
#define PGM_START_ATTEMPTS 5

extern char **environ;

struct pgmanaged {
	char *data_dir, *pgdata, *rundir, *bindir;
	char *conninfo;       /* database roost, for roost */
	char *admin_conninfo; /* database postgres, for pings and CREATE DATABASE */
	bool quiet;
	bool drop; /* root: run PostgreSQL programs as uid/gid */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	int start_fd; /* pg-start.lock */
	int users_fd; /* pg-users.lock, held LOCK_SH while in use */
};

static char *pgm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *pgm_error(const char *fmt, ...)
{
	struct buf b;
	buf_init(&b, 16384);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b, NULL);
}

static char *pgm_path(const char *dir, const char *name)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_printf(&b, "%s/%s", dir, name);
	return buf_steal(&b, NULL);
}

static bool pgm_is_file(const char *dir, const char *name)
{
	char *path = pgm_path(dir, name);
	bool ok = access(path, F_OK) == 0;
	free(path);
	return ok;
}

/* ---- running programs ------------------------------------------------ */

/* The environment of a child: ours without PG* variables, which would
 * point pg_ctl and libpq elsewhere. The strings are borrowed. */
static char **pgm_child_env(void)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = xcalloc(n + 1, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PG", 2) != 0)
			env[k++] = environ[i];
	return env;
}

static _Noreturn void pgm_child_fail(const char *what)
{
	/* Only async-signal-safe calls after fork (we may be multi-threaded):
	 * the errno name is a constant string, strerror() may allocate. */
	const char *msg = strerrorname_np(errno);
	if (msg == NULL)
		msg = "unknown error";
	(void)!write(STDERR_FILENO, what, strlen(what));
	(void)!write(STDERR_FILENO, ": ", 2);
	(void)!write(STDERR_FILENO, msg, strlen(msg));
	(void)!write(STDERR_FILENO, "\n", 1);
	_exit(127);
}

/* In the child: stdin from /dev/null, stdout and stderr into out_fd, the
 * PostgreSQL user's identity, default signal handling, then exec. */
static _Noreturn void pgm_child(const struct pgmanaged *pg, int out_fd, char *const argv[],
                                char *const envp[])
{
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(127);
	if (chdir(pg->data_dir) < 0)
		pgm_child_fail("chdir to the data directory");
	/* A server that has dropped root since it started the cluster runs
	 * pg_ctl stop as itself, the PostgreSQL user. */
	bool switch_user = pg->drop && geteuid() == 0;
	if (switch_user && (setgroups((size_t)pg->ngroups, pg->groups) < 0 || setgid(pg->gid) < 0 ||
	                    setuid(pg->uid) < 0))
		pgm_child_fail("switching to the PostgreSQL user");
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	const int sigs[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	execve(argv[0], argv, envp);
	pgm_child_fail(argv[0]);
}

/* Keeps the last PGM_OUTPUT_MAX bytes a child wrote. */
static void pgm_read_output(int fd, struct buf *out)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		size_t excess = out->len + (size_t)n > PGM_OUTPUT_MAX
		                    ? out->len + (size_t)n - PGM_OUTPUT_MAX
		                    : 0;
		buf_consume(out, excess < out->len ? excess : out->len);
		buf_append(out, chunk, (size_t)n);
	}
}

/* Runs argv (argv[0] an absolute path) to completion. Its output goes to
 * out. *status_r: exit status, or 128 + signal. -1 if it could not run. */
static int pgm_run(const struct pgmanaged *pg, char *const argv[], struct buf *out, int *status_r,
                   char **error_r)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		*error_r = pgm_error("pipe: %s", strerror(errno));
		return -1;
	}
	char **env = pgm_child_env();
	pid_t pid = fork();
	if (pid == 0)
		pgm_child(pg, fds[1], argv, env);
	int fork_errno = errno;
	free(env);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		*error_r = pgm_error("fork: %s", strerror(fork_errno));
		return -1;
	}
	pgm_read_output(fds[0], out);
	close(fds[0]);
	int wstatus;
	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR) {
			*error_r = pgm_error("waiting for %s: %s", argv[0], strerror(errno));
			return -1;
		}
	}
	*status_r = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	return 0;
}

/* Cuts out down to its last PGM_TAIL_LINES lines, for an error message. */
static const char *pgm_tail(struct buf *out)
{
	const char *s = buf_cstr(out);
	size_t end = out->len;
	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == ' '))
		end--;
	size_t start = end, lines = 0;
	while (start > 0 && lines < PGM_TAIL_LINES) {
		if (s[start - 1] == '\n')
			lines++;
		if (lines < PGM_TAIL_LINES)
			start--;
	}
	buf_truncate(out, end);
	buf_consume(out, start);
	return buf_cstr(out);
}

/* Runs a PostgreSQL program of bindir with the given arguments; on failure
 * (non-zero exit) -1 with its output's tail in *error_r. */
static int pgm_program(const struct pgmanaged *pg, const char *what, char *const argv[],
                       char **error_r)
{
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	int status;
	int ret = pgm_run(pg, argv, &out, &status, error_r);
	if (ret == 0 && status != 0) {
		*error_r =
		    pgm_error("%s failed (exit status %d):\n%s", what, status, pgm_tail(&out));
		ret = -1;
	}
	buf_free(&out);
	return ret;
}

/* ---- finding the server programs ------------------------------------- */

static bool pgm_bindir_ok(const char *bindir)
{
	const char *const progs[] = {"initdb", "pg_ctl", "postgres"};
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char *path = pgm_path(bindir, progs[i]);
		bool ok = access(path, X_OK) == 0;
		free(path);
		if (!ok)
			return false;
	}
	return true;
}

/* "15" -> 150000, "9.6" -> 90006; -1 for anything else. */
static long pgm_version_rank(const char *name)
{
	size_t majlen = strcspn(name, ".");
	uint64_t major, minor = 0;
	if (mem_to_u64(name, majlen, 9999, &major) < 0)
		return -1;
	if (name[majlen] == '.' && str_to_u64(&name[majlen + 1], 9999, &minor) < 0)
		return -1;
	return (long)(major * 10000 + minor);
}

/* The newest PGM_PKGLIBDIR/<version>/bin with the server programs. */
static char *pgm_newest_bindir(void)
{
	DIR *d = opendir(PGM_PKGLIBDIR);
	if (d == NULL)
		return NULL;
	char *best = NULL;
	long best_rank = -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long rank = pgm_version_rank(e->d_name);
		if (rank <= best_rank)
			continue;
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		buf_printf(&b, "%s/%s/bin", PGM_PKGLIBDIR, e->d_name);
		if (pgm_bindir_ok(buf_cstr(&b))) {
			free(best);
			best = buf_steal(&b, NULL);
			best_rank = rank;
		}
		buf_free(&b);
	}
	closedir(d);
	return best;
}

/* The cluster's PG_VERSION ("15"), or NULL when there is no cluster. */
static char *pgm_cluster_version(const char *pgdata)
{
	char *path = pgm_path(pgdata, "PG_VERSION");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	char v[32];
	ssize_t n = read(fd, v, sizeof(v) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	v[n] = '\0';
	v[strcspn(v, "\r\n")] = '\0';
	return xstrdup(v);
}

static int pgm_find_bindir(struct pgmanaged *pg, const char *want, char **error_r)
{
	if (want != NULL && want[0] != '\0') {
		if (!pgm_bindir_ok(want)) {
			*error_r =
			    pgm_error("PostgreSQL server programs not found (looked in %s): "
			              "install the postgresql package or set [database] pg_bindir",
			              want);
			return -1;
		}
		pg->bindir = xstrdup(want);
		return 0;
	}
	/* An existing cluster needs the programs of its own major version. */
	char *version = pgm_cluster_version(pg->pgdata);
	if (version != NULL) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		buf_printf(&b, "%s/%s/bin", PGM_PKGLIBDIR, version);
		if (pgm_bindir_ok(buf_cstr(&b)))
			pg->bindir = buf_steal(&b, NULL);
		else
			*error_r =
			    pgm_error("the cluster in %s was made by PostgreSQL %s, whose server "
			              "programs are not in %s: install postgresql-%s or set "
			              "[database] pg_bindir",
			              pg->pgdata, version, buf_cstr(&b), version);
		buf_free(&b);
		free(version);
		return pg->bindir != NULL ? 0 : -1;
	}
	pg->bindir = pgm_newest_bindir();
	if (pg->bindir == NULL) {
		*error_r = pgm_error("PostgreSQL server programs not found (looked in %s/*/bin): "
		                     "install the postgresql package or set [database] pg_bindir",
		                     PGM_PKGLIBDIR);
		return -1;
	}
	return 0;
}

/* ---- identity and directories ---------------------------------------- */

static int pgm_identity(struct pgmanaged *pg, const char *run_as, char **error_r)
{
	if (geteuid() != 0) {
		pg->uid = geteuid();
		pg->gid = getegid();
		return 0;
	}
	const char *user = run_as != NULL && run_as[0] != '\0' ? run_as : PGM_DEFAULT_USER;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r =
		    pgm_error("system user '%s' does not exist; create it with: useradd "
		              "--system --home-dir /var/lib/roost --shell /usr/sbin/nologin %s",
		              user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = pgm_error("PostgreSQL cannot run as root: set a non-root system user");
		return -1;
	}
	pg->drop = true;
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	int n = 32;
	pg->groups = xcalloc((size_t)n, sizeof(gid_t));
	if (getgrouplist(user, pw->pw_gid, pg->groups, &n) < 0) {
		pg->groups = xreallocarray(pg->groups, (size_t)n, sizeof(gid_t));
		getgrouplist(user, pw->pw_gid, pg->groups, &n);
	}
	pg->ngroups = n;
	return 0;
}

/* Checks the data directory path: it goes into a config file, a conninfo
 * and a socket address. */
static int pgm_check_path(const char *data_dir, char **error_r)
{
	if (data_dir == NULL || data_dir[0] != '/') {
		*error_r = pgm_error("the data directory must be an absolute path");
		return -1;
	}
	for (size_t i = 0; data_dir[i] != '\0'; i++) {
		unsigned char c = (unsigned char)data_dir[i];
		if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
			*error_r =
			    pgm_error("the data directory path %s contains a quote, backslash "
			              "or control character",
			              data_dir);
			return -1;
		}
	}
	struct sockaddr_un sun;
	if (strlen(data_dir) + strlen("/run/" PGM_SOCKET_FILE) >= sizeof(sun.sun_path)) {
		*error_r =
		    pgm_error("the data directory path %s is too long for a Unix socket "
		              "(at most %zu bytes)",
		              data_dir, sizeof(sun.sun_path) - 1 - strlen("/run/" PGM_SOCKET_FILE));
		return -1;
	}
	return 0;
}

/* Makes dir (mode) if missing and, as root, gives it to the PostgreSQL
 * user unless it is already someone else's. */
static int pgm_make_dir(const struct pgmanaged *pg, const char *dir, mode_t mode, char **error_r)
{
	if (mkdir(dir, mode) < 0 && errno != EEXIST) {
		*error_r = pgm_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = pgm_error("%s is not a directory", dir);
		return -1;
	}
	if (!pg->drop) {
		if (access(dir, W_OK | X_OK) < 0) {
			*error_r = pgm_error("%s is not writable by uid %u: %s", dir,
			                     (unsigned)geteuid(), strerror(errno));
			return -1;
		}
		return 0;
	}
	if (st.st_uid != pg->uid && st.st_uid != 0) {
		*error_r = pgm_error("%s belongs to uid %u, not to the PostgreSQL user (uid %u)",
		                     dir, (unsigned)st.st_uid, (unsigned)pg->uid);
		return -1;
	}
	if (st.st_uid == 0 && chown(dir, pg->uid, pg->gid) < 0) {
		*error_r = pgm_error("cannot give %s to uid %u: %s", dir, (unsigned)pg->uid,
		                     strerror(errno));
		return -1;
	}
	return 0;
}

static int pgm_dirs(struct pgmanaged *pg, char **error_r)
{
	/* A data directory we create belongs to the PostgreSQL user; an
	 * existing one is left as the administrator made it. */
	bool existed = access(pg->data_dir, F_OK) == 0;
	if (existed && !pg->drop && access(pg->data_dir, W_OK | X_OK) < 0) {
		*error_r = pgm_error("the data directory %s is not writable: %s", pg->data_dir,
		                     strerror(errno));
		return -1;
	}
	if (!existed && pgm_make_dir(pg, pg->data_dir, 0750, error_r) < 0)
		return -1;
	if (pgm_make_dir(pg, pg->pgdata, 0700, error_r) < 0 ||
	    pgm_make_dir(pg, pg->rundir, 0700, error_r) < 0)
		return -1;
	/* The socket directory must stay private: trust authentication
	 * relies on it. */
	if (chmod(pg->rundir, 0700) < 0) {
		*error_r = pgm_error("cannot chmod %s: %s", pg->rundir, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- locks ------------------------------------------------------------- */

static int pgm_open_lock(const struct pgmanaged *pg, const char *name, int *fd_r, char **error_r)
{
	char *path = pgm_path(pg->rundir, name);
	/* Read-only is enough for flock, so any later user can open a lock
	 * file root created. */
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		*error_r = pgm_error("cannot open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (pg->drop && fchown(fd, pg->uid, pg->gid) < 0)
		log_warn("event=pg_lock_chown path=%s error=\"%s\"", path, strerror(errno));
	free(path);
	*fd_r = fd;
	return 0;
}

static int pgm_flock(int fd, int op)
{
	int ret;
	while ((ret = flock(fd, op)) < 0 && errno == EINTR)
		;
	return ret;
}

/* ---- cluster set-up ---------------------------------------------------- */

static int pgm_initdb(struct pgmanaged *pg, char **error_r)
{
	char *initdb = pgm_path(pg->bindir, "initdb");
	/* Byte-order collation (fast, stable across glibc upgrades), but a
	 * UTF-8 character classification when there is one, for full-text
	 * search of non-ASCII words. */
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	char *argv[] = {
	    initdb, "-D",         pg->pgdata,           "-U", PGM_DB_USER, "--auth=trust", "-E",
	    "UTF8", "--locale=C", "--lc-ctype=C.UTF-8", NULL};
	if (utf8 == (locale_t)0)
		argv[9] = NULL;
	else
		freelocale(utf8);
	if (!pg->quiet)
		log_info("event=pg_initdb pgdata=%s bindir=%s", pg->pgdata, pg->bindir);
	int ret = pgm_program(pg, "initdb", argv, error_r);
	free(initdb);
	return ret;
}

static const char pgm_settings[] =
    "# Written by roost at every start: change settings with ALTER SYSTEM.\n"
    "listen_addresses = ''\n"
    "unix_socket_directories = '%s'\n"
    "unix_socket_permissions = 0700\n"
    "port = " PGM_PORT "\n"
    "max_connections = 100\n"
    "shared_buffers = 128MB\n"
    "work_mem = 8MB\n"
    "maintenance_work_mem = 64MB\n"
    "effective_cache_size = 512MB\n"
    "max_wal_size = 1GB\n"
    "logging_collector = on\n"
    "log_directory = 'log'\n"
    "log_filename = 'postgresql-%%a.log'\n"
    "log_truncate_on_rotation = on\n"
    "log_rotation_age = 1d\n"
    "log_rotation_size = 0\n"
    "log_line_prefix = '%%m [%%p] %%q%%u@%%d '\n"
    "log_timezone = 'UTC'\n"
    "timezone = 'UTC'\n";

/* Writes content to pgdata/name (replacing it, or appending). */
static int pgm_write_file(const struct pgmanaged *pg, const char *name, const struct buf *content,
                          bool append, char **error_r)
{
	char *path = pgm_path(pg->pgdata, name);
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
	int fd = open(path, flags, 0600);
	int ret = fd < 0 ? -1 : 0;
	if (ret == 0 && write(fd, content->data, content->len) != (ssize_t)content->len)
		ret = -1;
	if (ret == 0 && pg->drop && fchown(fd, pg->uid, pg->gid) < 0)
		ret = -1;
	if (ret < 0)
		*error_r = pgm_error("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

#define PGM_INCLUDE_LINE "include_if_exists = 'roost.conf'"

/* Whether postgresql.conf already includes roost.conf. */
static bool pgm_has_include(const struct pgmanaged *pg)
{
	char *path = pgm_path(pg->pgdata, "postgresql.conf");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	pgm_read_output(fd, &b);
	close(fd);
	bool found = strstr(buf_cstr(&b), "\n" PGM_INCLUDE_LINE "\n") != NULL;
	buf_free(&b);
	return found;
}

static int pgm_write_settings(const struct pgmanaged *pg, char **error_r)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_printf(&b, pgm_settings, pg->rundir);
	int ret = pgm_write_file(pg, "roost.conf", &b, false, error_r);
	/* Checked at every start, not only after initdb: a start interrupted
	 * between the two must not leave a server on the default socket. */
	if (ret == 0 && !pgm_has_include(pg)) {
		buf_reset(&b);
		buf_append_str(
		    &b, "\n# roost's settings (written at every start)\n" PGM_INCLUDE_LINE "\n");
		ret = pgm_write_file(pg, "postgresql.conf", &b, true, error_r);
	}
	buf_free(&b);
	return ret;
}

/* Creates the cluster if there is none yet. */
static int pgm_ensure_cluster(struct pgmanaged *pg, char **error_r)
{
	bool fresh = !pgm_is_file(pg->pgdata, "PG_VERSION");
	if (fresh) {
		DIR *d = opendir(pg->pgdata);
		struct dirent *e;
		bool empty = true;
		while (d != NULL && (e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				empty = false;
		if (d != NULL)
			closedir(d);
		if (!empty) {
			*error_r = pgm_error("%s is neither empty nor a PostgreSQL cluster (an "
			                     "interrupted initdb?): move it away and start again",
			                     pg->pgdata);
			return -1;
		}
		if (pgm_initdb(pg, error_r) < 0)
			return -1;
	}
	return pgm_write_settings(pg, error_r);
}

/* ---- starting and stopping ------------------------------------------- */

/* A postmaster killed outright leaves its lock files behind. PostgreSQL
 * ignores one whose process is gone, but not one whose process is a zombie
 * that nobody reaped (a container whose init does not reap): that process
 * is dead all the same, so its lock file may go. A live one is kept. */
static bool pgm_is_zombie(uint64_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%llu/stat", (unsigned long long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char stat[512];
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return false;
	stat[n] = '\0';
	/* "pid (comm) S ...": comm may itself contain ')'. */
	size_t close_paren = 0;
	for (size_t i = 0; i < (size_t)n; i++)
		if (stat[i] == ')')
			close_paren = i;
	return close_paren > 0 && close_paren + 2 < (size_t)n && stat[close_paren + 2] == 'Z';
}

static void pgm_clear_zombie_lock(const char *dir, const char *name)
{
	char *path = pgm_path(dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char line[32];
	ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
	if (fd >= 0)
		close(fd);
	uint64_t pid;
	if (n > 0) {
		line[n] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (str_to_u64(line, INT32_MAX, &pid) == 0 && pgm_is_zombie(pid)) {
			log_warn("event=pg_stale_lock path=%s pid=%llu", path,
			         (unsigned long long)pid);
			unlink(path);
		}
	}
	free(path);
}

/* Whether the server answers; waits out a start-up or shut-down in
 * progress (PQPING_REJECT) for a while. */
static bool pgm_running(const struct pgmanaged *pg)
{
	for (int i = 0; i < 100; i++) {
		PGPing p = PQping(pg->admin_conninfo);
		if (p == PQPING_OK)
			return true;
		if (p != PQPING_REJECT)
			return false;
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

static int pgm_ctl(const struct pgmanaged *pg, const char *action, char **error_r)
{
	char *pg_ctl = pgm_path(pg->bindir, "pg_ctl");
	char *logfile = pgm_path(pg->pgdata, "startup.log");
	char *argv[] = {pg_ctl, (char *)action, "-w", "-s",    "-t", PGM_START_TIMEOUT,
	                "-D",   pg->pgdata,     "-l", logfile, NULL};
	if (strcmp(action, "stop") == 0) {
		argv[8] = "-m";
		argv[9] = "fast";
	}
	struct buf what;
	buf_init(&what, 256);
	buf_printf(&what, "pg_ctl %s", action);
	int ret = pgm_program(pg, buf_cstr(&what), argv, error_r);
	buf_free(&what);
	free(logfile);
	free(pg_ctl);
	return ret;
}

/* pg_ctl only says "examine the log output": show that log's end too. */
static void pgm_start_error(const struct pgmanaged *pg, const char *error, char **error_r)
{
	char *path = pgm_path(pg->pgdata, "startup.log");
	struct buf log;
	buf_init(&log, BUF_NO_LIMIT);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		pgm_read_output(fd, &log);
		close(fd);
	}
	*error_r =
	    pgm_error("cannot start PostgreSQL: %s\nend of %s:\n%s", error, path, pgm_tail(&log));
	buf_free(&log);
	free(path);
}

/* Starts the server. After a crash (postmaster killed) the old process
 * and its children may take a moment to die and release the shared
 * memory, and the new postmaster refuses to start until they are gone:
 * try again a few times. */
static int pgm_start_server(const struct pgmanaged *pg, char **error_r)
{
	if (!pg->quiet)
		log_info("event=pg_start pgdata=%s", pg->pgdata);
	for (int attempt = 1;; attempt++) {
		char *error = NULL;
		pgm_clear_zombie_lock(pg->pgdata, "postmaster.pid");
		pgm_clear_zombie_lock(pg->rundir, PGM_SOCKET_LOCK);
		if (pgm_ctl(pg, "start", &error) == 0)
			return 0;
		if (attempt == PGM_START_ATTEMPTS) {
			pgm_start_error(pg, error, error_r);
			free(error);
			return -1;
		}
		char q[LOG_QUOTE_MAX];
		log_warn("event=pg_start_retry attempt=%d error=%s", attempt,
		         log_quote(q, sizeof(q), error));
		free(error);
		sleep(1);
	}
}

static int pgm_ensure_database(const struct pgmanaged *pg, char **error_r)
{
	PGconn *conn = PQconnectdb(pg->admin_conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		*error_r =
		    pgm_error("cannot connect to the managed PostgreSQL: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	PGresult *res = PQexec(conn, "SELECT 1 FROM pg_database WHERE datname = '" PGM_DB_NAME "'");
	int ret = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
	bool exists = ret == 0 && PQntuples(res) == 1;
	PQclear(res);
	if (ret == 0 && !exists) {
		res = PQexec(conn, "CREATE DATABASE " PGM_DB_NAME);
		ret = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(res);
	}
	if (ret < 0)
		*error_r = pgm_error("cannot create the database " PGM_DB_NAME ": %s",
		                     PQerrorMessage(conn));
	PQfinish(conn);
	return ret;
}

/* Under the start lock, registered as a user: make it run. */
static int pgm_bring_up(struct pgmanaged *pg, char **error_r)
{
	if (pgm_ensure_cluster(pg, error_r) < 0)
		return -1;
	if (!pgm_running(pg) && pgm_start_server(pg, error_r) < 0)
		return -1;
	return pgm_ensure_database(pg, error_r);
}

static void pgm_free(struct pgmanaged *pg)
{
	if (pg->users_fd >= 0)
		close(pg->users_fd);
	if (pg->start_fd >= 0)
		close(pg->start_fd);
	free(pg->data_dir);
	free(pg->pgdata);
	free(pg->rundir);
	free(pg->bindir);
	free(pg->conninfo);
	free(pg->admin_conninfo);
	free(pg->groups);
	free(pg);
}

static char *pgm_conninfo(const struct pgmanaged *pg, const char *dbname)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_printf(&b, "host='%s' port=" PGM_PORT " dbname=%s user=" PGM_DB_USER, pg->rundir,
	           dbname);
	return buf_steal(&b, NULL);
}

static struct pgmanaged *pgm_new(const struct pgmanaged_opts *opts)
{
	struct pgmanaged *pg = xcalloc(1, sizeof(*pg));
	pg->start_fd = -1;
	pg->users_fd = -1;
	pg->quiet = opts->quiet;
	pg->data_dir = xstrdup(opts->data_dir);
	/* A trailing slash would double up in every path below. */
	size_t len = strlen(pg->data_dir);
	while (len > 1 && pg->data_dir[len - 1] == '/')
		pg->data_dir[--len] = '\0';
	pg->pgdata = pgm_path(pg->data_dir, "pgdata");
	pg->rundir = pgm_path(pg->data_dir, "run");
	pg->conninfo = pgm_conninfo(pg, PGM_DB_NAME);
	pg->admin_conninfo = pgm_conninfo(pg, "postgres");
	return pg;
}

int pgmanaged_start(const struct pgmanaged_opts *opts, struct pgmanaged **pg_r, char **error_r)
{
	if (pgm_check_path(opts->data_dir, error_r) < 0)
		return -1;
	struct pgmanaged *pg = pgm_new(opts);
	if (pgm_identity(pg, opts->run_as, error_r) < 0 || pgm_dirs(pg, error_r) < 0 ||
	    pgm_find_bindir(pg, opts->bindir, error_r) < 0 ||
	    pgm_open_lock(pg, "pg-start.lock", &pg->start_fd, error_r) < 0 ||
	    pgm_open_lock(pg, "pg-users.lock", &pg->users_fd, error_r) < 0)
		goto fail;
	/* Registering as a user inside the start lock means a concurrent
	 * pgmanaged_stop() either finishes stopping before we look, or sees
	 * us and leaves the server running. */
	if (pgm_flock(pg->start_fd, LOCK_EX) < 0 || pgm_flock(pg->users_fd, LOCK_SH) < 0) {
		*error_r = pgm_error("cannot lock %s: %s", pg->rundir, strerror(errno));
		goto fail;
	}
	if (pgm_bring_up(pg, error_r) < 0)
		goto fail;
	pgm_flock(pg->start_fd, LOCK_UN);
	*pg_r = pg;
	return 0;
fail:
	pgm_free(pg); /* closing the files drops the locks */
	return -1;
}

const char *pgmanaged_conninfo(const struct pgmanaged *pg)
{
	return pg->conninfo;
}

void pgmanaged_stop(struct pgmanaged **pgp)
{
	struct pgmanaged *pg = *pgp;
	if (pg == NULL)
		return;
	*pgp = NULL;
	pgm_flock(pg->start_fd, LOCK_EX);
	pgm_flock(pg->users_fd, LOCK_UN);
	/* Only the last user stops the server; holding the start lock keeps
	 * a new user from registering while we decide. */
	if (pgm_flock(pg->users_fd, LOCK_EX | LOCK_NB) == 0) {
		char *error = NULL;
		if (!pg->quiet)
			log_info("event=pg_stop pgdata=%s", pg->pgdata);
		if (pgm_running(pg) && pgm_ctl(pg, "stop", &error) < 0) {
			char q[LOG_QUOTE_MAX];
			log_error("event=pg_stop_failed error=%s", log_quote(q, sizeof(q), error));
			free(error);
		}
	}
	pgm_free(pg);
}
