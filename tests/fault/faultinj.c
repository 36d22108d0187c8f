/*
 * faultinj.c: an LD_PRELOAD shim that makes the Nth call of one kind of
 * file operation fail, the way SQLite's I/O-error tests do: run a
 * program with N = 1, 2, 3, ... until it completes without meeting the
 * fault, and check after each run that it failed cleanly and lost
 * nothing it had acknowledged (tests/fault/faults.py does this).
 *
 *   cc -shared -fPIC -O1 -o faultinj.so tests/fault/faultinj.c -ldl
 *   LD_PRELOAD=$PWD/faultinj.so MQ_FAULT_OP=fsync MQ_FAULT_N=2 \
 *       MQ_FAULT_ERRNO=EIO MQ_FAULT_PATH=$MQ_DIR mq-produce --fsync t <in
 *
 * Environment:
 *   MQ_FAULT_OP     the operations counted, comma-separated:
 *                     write      write, pwrite, writev, pwritev (and 64s)
 *                     pwrite     pwrite, pwritev only
 *                     fsync, fdatasync, sync (both)
 *                     rename     rename, renameat, renameat2
 *                     open       open, openat, creat (and 64s, _2s)
 *                     ftruncate, unlink (unlink, unlinkat), mkdir
 *   MQ_FAULT_N      the call (counting from 1) that fails
 *   MQ_FAULT_ERRNO  ENOSPC, EIO (default), EINTR, EDQUOT, EROFS, ENOMEM
 *                   or a number
 *   MQ_FAULT_MODE   once (default): only call N fails; persistent:
 *                   every counted call from N on fails; kill: call N
 *                   is not made (a write: only half of its bytes, at
 *                   least one, are written) and the process kills
 *                   itself with SIGKILL, as a crash in the middle of
 *                   it would leave things; killafter: call N is made,
 *                   then SIGKILL
 *   MQ_FAULT_SHORT  1: a write that should fail writes half its bytes
 *                   (at least one) and returns that short count instead
 *   MQ_FAULT_PATH   only calls on paths (or descriptors opened on paths)
 *                   containing this substring are counted; a rename
 *                   counts when either name does.  Paths given relative
 *                   to a directory descriptor, and those of descriptors
 *                   the process inherited, are found in /proc/self/fd.
 *   MQ_FAULT_LOG    a file to append "fault OP CALL PATH ERRNO" to, one
 *                   line per injected fault, and "calls OP N" at exit
 *                   (normal exit only), so a test knows whether the
 *                   fault was met and how many calls there were
 *
 * Without MQ_FAULT_OP and MQ_FAULT_N it changes nothing.  It prints
 * nothing: the program's own output is what the tests look at.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096

enum {
	F_WRITE = 1, F_PWRITE = 2, F_FSYNC = 4, F_FDATASYNC = 8, F_RENAME = 16,
	F_OPEN = 32, F_FTRUNCATE = 64, F_UNLINK = 128, F_MKDIR = 256,
};

static const struct { const char *name; int bits; } opnames[] = {
	{ "write", F_WRITE | F_PWRITE }, { "pwrite", F_PWRITE },
	{ "fsync", F_FSYNC }, { "fdatasync", F_FDATASYNC },
	{ "sync", F_FSYNC | F_FDATASYNC }, { "rename", F_RENAME },
	{ "open", F_OPEN }, { "ftruncate", F_FTRUNCATE }, { "unlink", F_UNLINK },
	{ "mkdir", F_MKDIR },
};

enum { M_ONCE, M_PERSISTENT, M_KILL, M_KILLAFTER };

static int loaded, ops, fail_errno = EIO, mode, shortw;
static long nth = -1, calls;
static const char *want_path, *log_path;
static char *paths[MAXFD];

static void load(void)
{
	const char *s;

	if (loaded)
		return;
	loaded = 1;
	if ((s = getenv("MQ_FAULT_OP"))) {
		char buf[256], *tok, *save = NULL;
		snprintf(buf, sizeof buf, "%s", s);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			for (size_t i = 0; i < sizeof opnames / sizeof *opnames; i++)
				if (!strcmp(tok, opnames[i].name))
					ops |= opnames[i].bits;
	}
	if ((s = getenv("MQ_FAULT_N")) && *s)
		nth = strtol(s, NULL, 10);
	if ((s = getenv("MQ_FAULT_ERRNO")) && *s) {
		if (!strcmp(s, "ENOSPC")) fail_errno = ENOSPC;
		else if (!strcmp(s, "EIO")) fail_errno = EIO;
		else if (!strcmp(s, "EINTR")) fail_errno = EINTR;
		else if (!strcmp(s, "EDQUOT")) fail_errno = EDQUOT;
		else if (!strcmp(s, "EROFS")) fail_errno = EROFS;
		else if (!strcmp(s, "ENOMEM")) fail_errno = ENOMEM;
		else fail_errno = atoi(s);
	}
	if ((s = getenv("MQ_FAULT_MODE"))) {
		if (!strcmp(s, "persistent")) mode = M_PERSISTENT;
		else if (!strcmp(s, "kill")) mode = M_KILL;
		else if (!strcmp(s, "killafter")) mode = M_KILLAFTER;
	}
	if ((s = getenv("MQ_FAULT_SHORT")) && !strcmp(s, "1"))
		shortw = 1;
	if ((s = getenv("MQ_FAULT_PATH")) && *s)
		want_path = s;
	if ((s = getenv("MQ_FAULT_LOG")) && *s)
		log_path = s;
	if (nth < 1)
		ops = 0;
}

/* Appends a line to the log with raw system calls: nothing here may be
 * counted or fail by our own hand. */
static void log_line(const char *fmt, ...)
{
	char line[PATH_MAX + 128];
	va_list ap;
	int n, fd;

	if (!log_path)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof line)
		n = sizeof line - 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return;
	syscall(SYS_write, fd, line, (size_t)n);
	syscall(SYS_close, fd);
}

static const char *opname(int op)
{
	switch (op) {
	case F_WRITE: return "write";
	case F_PWRITE: return "pwrite";
	case F_FSYNC: return "fsync";
	case F_FDATASYNC: return "fdatasync";
	case F_RENAME: return "rename";
	case F_OPEN: return "open";
	case F_FTRUNCATE: return "ftruncate";
	case F_UNLINK: return "unlink";
	default: return "mkdir";
	}
}

__attribute__((destructor)) static void at_exit(void)
{
	if (loaded && ops)
		log_line("calls %s %ld\n", getenv("MQ_FAULT_OP"), calls);
}

/* The full path of name relative to dfd (or the cwd). */
static void resolve(int dfd, const char *name, char *out, size_t n)
{
	char link[64], dir[PATH_MAX];
	ssize_t r;

	if (!name) {
		out[0] = 0;
		return;
	}
	if (name[0] == '/') {
		snprintf(out, n, "%s", name);
		return;
	}
	if (dfd == AT_FDCWD) {
		if (!getcwd(dir, sizeof dir))
			dir[0] = 0;
	} else {
		snprintf(link, sizeof link, "/proc/self/fd/%d", dfd);
		r = readlink(link, dir, sizeof dir - 1);
		dir[r > 0 ? r : 0] = 0;
	}
	snprintf(out, n, "%s/%s", dir, name);
}

static int path_wanted(const char *p)
{
	return !want_path || (p && strstr(p, want_path));
}

static void die(void)
{
	syscall(SYS_kill, getpid(), SIGKILL);
	for (;;)
		pause();
}

/* Counts a call of op on path p; 1 when it must fail (or be short, or
 * kill: see the mode), 2 when it is to be made and then kill. */
static int hit(int op, const char *p)
{
	load();
	if (!(ops & op) || !path_wanted(p))
		return 0;
	long c = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	if (c == nth || (mode == M_PERSISTENT && c > nth)) {
		log_line("fault %s %ld %s %d\n", opname(op), c, p ? p : "-", fail_errno);
		if (mode == M_KILLAFTER)
			return 2;
		if (mode == M_KILL && !(op & (F_WRITE | F_PWRITE)))
			die();
		return 1;
	}
	return 0;
}

/* After a call: kill when the mode says so. */
static long after(int h, long rc)
{
	if (h == 2)
		die();
	return rc;
}

/* The path of fd: from its open, else (descriptors inherited, such as
 * a standard output redirected to a file) from /proc/self/fd. */
static const char *fd_path(int fd)
{
	char link[64], p[PATH_MAX];
	ssize_t r;

	if (fd < 0 || fd >= MAXFD)
		return NULL;
	if (!paths[fd]) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		r = readlink(link, p, sizeof p - 1);
		if (r <= 0)
			return NULL;
		p[r] = 0;
		paths[fd] = strdup(p);
	}
	return paths[fd];
}

static int hit_fd(int op, int fd)
{
	load();
	if (!(ops & op))
		return 0;
	if (want_path && !fd_path(fd))
		return 0;
	return hit(op, fd_path(fd));
}

static int track(int fd, const char *p)
{
	if (fd >= 0 && fd < MAXFD) {
		free(paths[fd]);
		paths[fd] = p ? strdup(p) : NULL;
	}
	return fd;
}

#define REAL(name) \
	static __typeof__(name) *real; \
	if (!real) \
		real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

#define OPEN_MODE(flags, mode) \
	mode_t mode = 0; \
	if ((flags) & (O_CREAT | O_TMPFILE)) { \
		va_list ap; \
		va_start(ap, flags); \
		mode = (mode_t)va_arg(ap, int); \
		va_end(ap); \
	}

#define FAIL() do { errno = fail_errno; return -1; } while (0)

static int do_open(int dfd, const char *name, int flags, mode_t mode,
		   int (*op)(int, const char *, int, ...))
{
	char p[PATH_MAX];

	resolve(dfd, name, p, sizeof p);
	int h = hit(F_OPEN, p);
	if (h == 1)
		FAIL();
	return (int)after(h, track(op(dfd, name, flags, mode), p));
}

int open(const char *path, int flags, ...)
{
	REAL(openat);
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, real);
}

int open64(const char *path, int flags, ...)
{
	REAL(openat64);
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, real);
}

int openat(int dfd, const char *path, int flags, ...)
{
	REAL(openat);
	OPEN_MODE(flags, mode);
	return do_open(dfd, path, flags, mode, real);
}

int openat64(int dfd, const char *path, int flags, ...)
{
	REAL(openat64);
	OPEN_MODE(flags, mode);
	return do_open(dfd, path, flags, mode, real);
}

int __open_2(const char *path, int flags)
{
	REAL(openat);
	return do_open(AT_FDCWD, path, flags, 0, real);
}

int __open64_2(const char *path, int flags)
{
	REAL(openat64);
	return do_open(AT_FDCWD, path, flags, 0, real);
}

int __openat_2(int dfd, const char *path, int flags)
{
	REAL(openat);
	return do_open(dfd, path, flags, 0, real);
}

int creat(const char *path, mode_t mode)
{
	REAL(openat);
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, real);
}

int creat64(const char *path, mode_t mode)
{
	REAL(openat64);
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, real);
}

int close(int fd)
{
	REAL(close);
	track(fd, NULL);
	return real(fd);
}

int dup(int old)
{
	REAL(dup);
	int fd = real(old);
	return fd >= 0 ? track(fd, fd_path(old)) : fd;
}

int dup2(int old, int new)
{
	REAL(dup2);
	int fd = real(old, new);
	return fd >= 0 && fd != old ? track(fd, fd_path(old)) : fd;
}

int dup3(int old, int new, int flags)
{
	REAL(dup3);
	int fd = real(old, new, flags);
	return fd >= 0 ? track(fd, fd_path(old)) : fd;
}

static size_t half(size_t n)
{
	return n > 1 ? n / 2 : n;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	int h = n > 0 ? hit_fd(F_WRITE, fd) : 0;
	if (h == 1) {
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, buf, half(n)));
	}
	return after(h, real(fd, buf, n));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	int h = n > 0 ? hit_fd(F_PWRITE, fd) : 0;
	if (h == 1) {
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, buf, half(n), off));
	}
	return after(h, real(fd, buf, n, off));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	int h = n > 0 ? hit_fd(F_PWRITE, fd) : 0;
	if (h == 1) {
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, buf, half(n), off));
	}
	return after(h, real(fd, buf, n, off));
}

/* A short vectored write: the first half of the bytes, in as many of
 * the vectors as that takes. */
static int short_iov(const struct iovec *iov, int cnt, struct iovec *out)
{
	size_t total = 0, want;
	int k = 0;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	want = half(total);
	for (int i = 0; i < cnt && want > 0 && k < 64; i++) {
		out[k] = iov[i];
		if (out[k].iov_len > want)
			out[k].iov_len = want;
		want -= out[k].iov_len;
		k++;
	}
	return k;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	int h = hit_fd(F_WRITE, fd);
	if (h == 1) {
		struct iovec v[64];
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, v, short_iov(iov, cnt, v)));
	}
	return after(h, real(fd, iov, cnt));
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	int h = hit_fd(F_PWRITE, fd);
	if (h == 1) {
		struct iovec v[64];
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, v, short_iov(iov, cnt, v), off));
	}
	return after(h, real(fd, iov, cnt, off));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(pwritev64);
	int h = hit_fd(F_PWRITE, fd);
	if (h == 1) {
		struct iovec v[64];
		if (!shortw && mode != M_KILL)
			FAIL();
		return after(mode == M_KILL ? 2 : 0, real(fd, v, short_iov(iov, cnt, v), off));
	}
	return after(h, real(fd, iov, cnt, off));
}

int fsync(int fd)
{
	REAL(fsync);
	int h = hit_fd(F_FSYNC, fd);
	if (h == 1)
		FAIL();
	return after(h, real(fd));
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	int h = hit_fd(F_FDATASYNC, fd);
	if (h == 1)
		FAIL();
	return after(h, real(fd));
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	int h = hit_fd(F_FTRUNCATE, fd);
	if (h == 1)
		FAIL();
	return after(h, real(fd, len));
}

int ftruncate64(int fd, off64_t len)
{
	REAL(ftruncate64);
	int h = hit_fd(F_FTRUNCATE, fd);
	if (h == 1)
		FAIL();
	return after(h, real(fd, len));
}

static int rename_hit(int odfd, const char *old, int ndfd, const char *new)
{
	char a[PATH_MAX], b[PATH_MAX];

	load();
	if (!(ops & F_RENAME))
		return 0;
	resolve(odfd, old, a, sizeof a);
	resolve(ndfd, new, b, sizeof b);
	return hit(F_RENAME, path_wanted(a) ? a : b);
}

int rename(const char *old, const char *new)
{
	REAL(rename);
	int h = rename_hit(AT_FDCWD, old, AT_FDCWD, new);
	if (h == 1)
		FAIL();
	return after(h, real(old, new));
}

int renameat(int odfd, const char *old, int ndfd, const char *new)
{
	REAL(renameat);
	int h = rename_hit(odfd, old, ndfd, new);
	if (h == 1)
		FAIL();
	return after(h, real(odfd, old, ndfd, new));
}

int renameat2(int odfd, const char *old, int ndfd, const char *new, unsigned flags)
{
	REAL(renameat2);
	int h = rename_hit(odfd, old, ndfd, new);
	if (h == 1)
		FAIL();
	return after(h, real(odfd, old, ndfd, new, flags));
}

static int path_hit(int op, int dfd, const char *name)
{
	char p[PATH_MAX];

	load();
	if (!(ops & op))
		return 0;
	resolve(dfd, name, p, sizeof p);
	return hit(op, p);
}

int unlink(const char *path)
{
	REAL(unlink);
	int h = path_hit(F_UNLINK, AT_FDCWD, path);
	if (h == 1)
		FAIL();
	return after(h, real(path));
}

int unlinkat(int dfd, const char *path, int flags)
{
	REAL(unlinkat);
	int h = path_hit(F_UNLINK, dfd, path);
	if (h == 1)
		FAIL();
	return after(h, real(dfd, path, flags));
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	int h = path_hit(F_MKDIR, AT_FDCWD, path);
	if (h == 1)
		FAIL();
	return after(h, real(path, mode));
}
