/*
 * enospc.c: an LD_PRELOAD shim that fills the disk on demand, for the
 * full-disk tests (DESIGN.md §7).
 *
 *   cc -shared -fPIC -o enospc.so tests/fault/enospc.c -ldl
 *   LD_PRELOAD=$PWD/enospc.so MQ_FAIL_AFTER=3 mq-produce logs <input
 *
 * It follows the descriptors opened (open, openat, creat and their 64
 * variants) on paths ending in MQ_FAIL_SUFFIX (default ".log"), and lets
 * the first MQ_FAIL_AFTER writes to them (write, pwrite, writev, pwritev
 * and 64 variants) through; every later one fails with ENOSPC
 * (MQ_FAIL_ERRNO=EIO for EIO instead), as a full disk would, without
 * writing anything.  With MQ_FAIL_PARTIAL=1 the first write (or pwrite)
 * past the budget writes half of its bytes and returns that short count,
 * as a disk filling up in the middle of a write does; the next one
 * fails.  Writes to other files are left alone.  Without MQ_FAIL_AFTER
 * it changes nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096

static unsigned char tracked[MAXFD];
static long budget = -1;           /* writes left; -1: not configured */
static int fail_errno = ENOSPC;
static int partial;                /* a short write is still to come */
static int loaded;

static void load(void)
{
	const char *s;

	if (loaded)
		return;
	loaded = 1;
	if ((s = getenv("MQ_FAIL_AFTER")) && *s)
		budget = strtol(s, NULL, 10);
	if ((s = getenv("MQ_FAIL_ERRNO")) && !strcmp(s, "EIO"))
		fail_errno = EIO;
	if ((s = getenv("MQ_FAIL_PARTIAL")) && !strcmp(s, "1"))
		partial = 1;
}

static int wanted(const char *path)
{
	const char *suffix = getenv("MQ_FAIL_SUFFIX");
	size_t n, m;

	if (!suffix)
		suffix = ".log";
	if (!path)
		return 0;
	n = strlen(path);
	m = strlen(suffix);
	return n >= m && !strcmp(path + n - m, suffix);
}

static int track(int fd, const char *path)
{
	if (fd >= 0 && fd < MAXFD)
		tracked[fd] = (unsigned char)wanted(path);
	return fd;
}

/* 1 when this write must fail (errno set), 2 when it must be short,
 * 0 when it goes through. */
static int refuse(int fd)
{
	load();
	if (budget < 0 || fd < 0 || fd >= MAXFD || !tracked[fd])
		return 0;
	if (budget > 0) {
		budget--;
		return 0;
	}
	if (partial) {
		partial = 0;
		return 2;
	}
	errno = fail_errno;
	return 1;
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

int open(const char *path, int flags, ...)
{
	REAL(open);
	OPEN_MODE(flags, mode);
	return track(real(path, flags, mode), path);
}

int open64(const char *path, int flags, ...)
{
	REAL(open64);
	OPEN_MODE(flags, mode);
	return track(real(path, flags, mode), path);
}

int openat(int dfd, const char *path, int flags, ...)
{
	REAL(openat);
	OPEN_MODE(flags, mode);
	return track(real(dfd, path, flags, mode), path);
}

int openat64(int dfd, const char *path, int flags, ...)
{
	REAL(openat64);
	OPEN_MODE(flags, mode);
	return track(real(dfd, path, flags, mode), path);
}

int __open_2(const char *path, int flags)
{
	REAL(open);
	return track(real(path, flags), path);
}

int __open64_2(const char *path, int flags)
{
	REAL(open64);
	return track(real(path, flags), path);
}

int __openat_2(int dfd, const char *path, int flags)
{
	REAL(openat);
	return track(real(dfd, path, flags), path);
}

int creat(const char *path, mode_t mode)
{
	REAL(creat);
	return track(real(path, mode), path);
}

int creat64(const char *path, mode_t mode)
{
	REAL(creat64);
	return track(real(path, mode), path);
}

int close(int fd)
{
	REAL(close);
	if (fd >= 0 && fd < MAXFD)
		tracked[fd] = 0;
	return real(fd);
}

int dup2(int old, int new)
{
	REAL(dup2);
	int fd = real(old, new);
	if (fd >= 0 && fd < MAXFD && old >= 0 && old < MAXFD)
		tracked[fd] = tracked[old];
	return fd;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	switch (refuse(fd)) {
	case 1: return -1;
	case 2: return real(fd, buf, n / 2);
	}
	return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	switch (refuse(fd)) {
	case 1: return -1;
	case 2: return real(fd, buf, n / 2, off);
	}
	return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	switch (refuse(fd)) {
	case 1: return -1;
	case 2: return real(fd, buf, n / 2, off);
	}
	return real(fd, buf, n, off);
}

/* vectored writes fail whole, never short */
static int refuse_whole(int fd)
{
	if (!refuse(fd))
		return 0;
	errno = fail_errno;
	return 1;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	return refuse_whole(fd) ? -1 : real(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	return refuse_whole(fd) ? -1 : real(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(pwritev64);
	return refuse_whole(fd) ? -1 : real(fd, iov, cnt, off);
}
