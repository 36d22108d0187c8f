/*
 * fsio.c: file primitives every module shares.  The important one is
 * mq_write_file_atomic, the single routine behind every durable small
 * file (topic.conf, checkpoints, committed offsets; DESIGN.md §4): write
 * a temp file created with O_EXCL, fsync it, rename it over the target,
 * fsync the directory.  A crash at any instant leaves the old contents or
 * the new, never a mix, and never an empty file.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mq.h"

/* Moves bytes from->to through a pipe with splice(2), so that they are
 * never copied into this process: 0 at the end of input, 1 when splice
 * cannot be used for these descriptors (nothing moved), -1 on error.
 * The pipe is our own even when to is one: a splice from a socket holds
 * its pipe's lock while it waits for data, which would keep the reader
 * of that pipe from what is already there.  Each splice out moves
 * exactly what came in: one into a socket asking for more would wait. */
static int relay_splice(int from, int to)
{
	int p[2], rc = -1, moved = 0;
	struct stat st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 1;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	/* a pipe out (ssh's), as large: fewer turns with its reader */
	if (fstat(to, &st) == 0 && S_ISFIFO(st.st_mode))
		fcntl(to, F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		ssize_t n = splice(from, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && !moved && (errno == EINVAL || errno == ENOSYS)) {
			rc = 1;
			break;
		}
		if (n <= 0) {
			rc = n == 0 ? 0 : -1;
			break;
		}
		moved = 1;
		while (n > 0) {
			ssize_t w = splice(p[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			n -= w;
		}
	}
out:
	close(p[0]);
	close(p[1]);
	return rc;
}

int mq_relay(int from, int to)
{
	size_t size = 1 << 20;
	int rc = relay_splice(from, to);
	char *buf;

	if (rc != 1)
		return rc;
	if (!(buf = malloc(size)))
		return -1;
	for (;;) {
		ssize_t n = read(from, buf, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || mq_write_all(to, buf, (size_t)n) < 0) {
			rc = n == 0 ? 0 : -1;
			break;
		}
	}
	free(buf);
	return rc;
}

int mq_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int mq_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

ssize_t mq_pread_full(int fd, void *p, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (char *)p + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void dir_of(const char *path, char *buf, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, n, ".");
	else if (slash == path)
		snprintf(buf, n, "/");
	else
		snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

int mq_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return mq_syserr("cannot open directory '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		mq_syserr("cannot sync directory '%s'", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int write_file(const char *path, const void *p, size_t n, int sync);

int mq_write_file_atomic(const char *path, const void *p, size_t n)
{
	return write_file(path, p, n, 1);
}

int mq_write_file_replace(const char *path, const void *p, size_t n)
{
	return write_file(path, p, n, 0);
}

static int write_file(const char *path, const void *p, size_t n, int sync)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *what = "create";
	int fd, e;

	dir_of(path, dir, sizeof dir);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= sizeof tmp)
		return mq_error(MQ_EUSAGE, "path too long '%s'", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EEXIST) {
		/* left behind by a crashed process that had our pid */
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	}
	if (fd < 0)
		goto fail;
	what = "write";
	if (mq_write_all(fd, p, n) < 0)
		goto fail;
	what = "sync";
	if (sync && fsync(fd) < 0)
		goto fail;
	what = "write";
	e = close(fd);
	fd = -1;
	if (e < 0)
		goto fail;
	what = "replace";
	if (rename(tmp, path) < 0)
		goto fail;
	return sync ? mq_fsync_dir(dir) : 0;
fail:
	/* always an I/O error, named after the file asked for */
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return mq_error(MQ_EIO, "cannot %s '%s': %s", what, path, strerror(e));
}

int mq_read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t r;

	if (fd < 0)
		return -1;
	/* never a silent prefix: a caller might write it back */
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		if (errno == 0 || (uint64_t)st.st_size > max)
			errno = EFBIG;
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	r = mq_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (r < 0) {
		free(buf);
		return -1;
	}
	buf[r] = 0;
	*out = buf;
	if (len)
		*len = (size_t)r;
	return 0;
}

/* mkdir -p, and every directory it creates is made durable by syncing
 * the directory that holds it: a new group's offsets must survive a
 * power loss as surely as the file written in them. */
int mq_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, mode) == 0) {
			char *slash = strrchr(buf, '/');
			if (slash && slash != buf) {
				*slash = 0;
				int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				*slash = '/';
				if (fd >= 0) {
					fsync(fd);
					close(fd);
				}
			}
		} else if (errno != EEXIST) {
			/* an existing directory mkdir refuses for another reason
			 * (a read-only mount above the data directory) is fine */
			struct stat st;
			int e = errno;
			if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
				errno = e;
				return -1;
			}
		}
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

static int rm_at(int dfd, const char *name)
{
	int fd;
	DIR *d;
	struct dirent *e;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (rm_at(dirfd(d), e->d_name) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int mq_rm_rf(const char *path)
{
	return rm_at(AT_FDCWD, path);
}

int mq_checkpoint_read(const char *path, int64_t *v)
{
	char *s, *end;
	size_t n;

	if (mq_read_file(path, 64, &s, &n) < 0)
		return -1;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end == s || (*end && *end != '\n') || errno) {
		free(s);
		errno = EINVAL;
		return -1;
	}
	free(s);
	*v = x;
	return 0;
}

int mq_checkpoint_write(const char *path, int64_t v, int sync)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRId64 "\n", v);

	return write_file(path, buf, (size_t)n, sync);
}

int mq_pathf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n)
		return mq_error(MQ_EUSAGE, "path too long '%.64s...'", buf);
	return 0;
}
