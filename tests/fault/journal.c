/*
 * journal.c: an LD_PRELOAD shim that records, in order, every operation
 * that changes files under one directory, so that tests/crash/powerloss.py
 * can rebuild the disk as a power loss at any point would leave it.
 *
 *   cc -shared -fPIC -O1 -o journal.so tests/fault/journal.c -ldl
 *   LD_PRELOAD=$PWD/journal.so MQ_JOURNAL=$TMP/journal MQ_JOURNAL_DIR=$MQ_DIR \
 *       mq-produce --fsync -v t <input
 *
 * MQ_JOURNAL_DIR must be an absolute path without symbolic links (the
 * data directory); only paths under it are recorded.  MQ_JOURNAL is the
 * journal file, outside that directory.  Records are appended with one
 * write each (O_APPEND), so several processes may share a journal.
 *
 * Records, one per operation that succeeded, in the order they
 * returned; fields are separated by tabs, paths are absolute:
 *
 *   C INO PATH            open/creat created the regular file PATH
 *   M INO PATH            mkdir created the directory PATH
 *   W INO OFF LEN         write/pwrite/writev of LEN bytes at OFF,
 *                         followed by the LEN bytes and a newline
 *   T INO LEN             ftruncate (and open with O_TRUNC: LEN 0)
 *   S INO                 fsync or fdatasync of a regular file
 *   D INO                 fsync or fdatasync of a directory
 *   R OLD NEW             rename (renameat, renameat2)
 *   U PATH                unlink (unlinkat)
 *   X PATH                rmdir (unlinkat with AT_REMOVEDIR)
 *   A LEN                 the program wrote LEN bytes to standard error
 *                         (fprintf, vfprintf, fputs, fputc, fwrite on
 *                         stderr, or write on fd 2), followed by the
 *                         bytes and a newline: this is how -v
 *                         acknowledgements take their place in the
 *                         journal
 *
 * Descriptors are followed from open/openat/creat (and 64 variants),
 * dup, dup2, dup3 to close.  Paths relative to a directory descriptor
 * are resolved through /proc/self/fd.  The shim prints nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096

static int loaded, jfd = -1;
static const char *prefix;
static size_t prefix_len;
/* followed descriptors: inode + 1 (0: not followed), and whether a dir */
static uint64_t fd_ino[MAXFD];
static unsigned char fd_dir[MAXFD];

static void load(void)
{
	const char *j;

	if (loaded)
		return;
	loaded = 1;
	j = getenv("MQ_JOURNAL");
	prefix = getenv("MQ_JOURNAL_DIR");
	if (!j || !*j || !prefix || prefix[0] != '/') {
		prefix = NULL;
		return;
	}
	prefix_len = strlen(prefix);
	while (prefix_len > 1 && prefix[prefix_len - 1] == '/')
		prefix_len--;
	jfd = (int)syscall(SYS_openat, AT_FDCWD, j, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (jfd < 0)
		prefix = NULL;
}

static int under(const char *p)
{
	load();
	return prefix && p && !strncmp(p, prefix, prefix_len) &&
	       (p[prefix_len] == '/' || p[prefix_len] == 0);
}

/* One record: a header line and, for W and A, the data and a newline. */
static void record(const void *data, size_t n, const char *fmt, ...)
{
	char head[2 * PATH_MAX + 64];
	va_list ap;
	int h;

	if (jfd < 0)
		return;
	va_start(ap, fmt);
	h = vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	if (h < 0 || h >= (int)sizeof head)
		return;
	size_t total = (size_t)h + (data ? n + 1 : 0);
	char *buf = malloc(total);
	if (!buf)
		return;
	memcpy(buf, head, (size_t)h);
	if (data) {
		memcpy(buf + h, data, n);
		buf[total - 1] = '\n';
	}
	size_t done = 0;
	while (done < total) {
		long w = syscall(SYS_write, jfd, buf + done, total - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	free(buf);
}

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

static void follow(int fd, const char *p)
{
	struct stat st;

	if (fd < 0 || fd >= MAXFD)
		return;
	fd_ino[fd] = 0;
	if (!under(p) || fstat(fd, &st) < 0)
		return;
	fd_ino[fd] = (uint64_t)st.st_ino + 1;
	fd_dir[fd] = S_ISDIR(st.st_mode);
}

static uint64_t followed(int fd)
{
	return fd >= 0 && fd < MAXFD ? fd_ino[fd] : 0;
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

static int do_open(int dfd, const char *name, int flags, mode_t mode,
		   int (*op)(int, const char *, int, ...))
{
	char p[PATH_MAX];
	int existed = 1, fd, e;

	resolve(dfd, name, p, sizeof p);
	if (under(p) && (flags & O_CREAT))
		existed = faccessat(AT_FDCWD, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	fd = op(dfd, name, flags, mode);
	e = errno;
	follow(fd, p);
	if (fd >= 0 && followed(fd) && !fd_dir[fd]) {
		if (!existed)
			record(NULL, 0, "C\t%llu\t%s\n", (unsigned long long)followed(fd) - 1, p);
		else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
			record(NULL, 0, "T\t%llu\t0\n", (unsigned long long)followed(fd) - 1);
	}
	errno = e;
	return fd;
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
	if (fd >= 0 && fd < MAXFD)
		fd_ino[fd] = 0;
	return real(fd);
}

static int copy_fd(int old, int fd)
{
	if (fd >= 0 && fd < MAXFD && fd != old) {
		fd_ino[fd] = followed(old);
		fd_dir[fd] = old >= 0 && old < MAXFD ? fd_dir[old] : 0;
	}
	return fd;
}

int dup(int old)
{
	REAL(dup);
	return copy_fd(old, real(old));
}

int dup2(int old, int new)
{
	REAL(dup2);
	return copy_fd(old, real(old, new));
}

int dup3(int old, int new, int flags)
{
	REAL(dup3);
	return copy_fd(old, real(old, new, flags));
}

static void rec_write(int fd, const void *buf, ssize_t w, off_t off)
{
	if (w > 0)
		record(buf, (size_t)w, "W\t%llu\t%lld\t%zd\n", (unsigned long long)followed(fd) - 1,
		       (long long)off, w);
}

static void rec_stderr(const void *buf, size_t n)
{
	load();
	if (n > 0)
		record(buf, n, "A\t%zu\n", n);
}

/* where a write() at the file offset lands */
static off_t write_pos(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
		return st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	if (fd == 2) {
		ssize_t w = real(fd, buf, n);
		if (w > 0)
			rec_stderr(buf, (size_t)w);
		return w;
	}
	if (!followed(fd))
		return real(fd, buf, n);
	off_t off = write_pos(fd);
	ssize_t w = real(fd, buf, n);
	int e = errno;
	rec_write(fd, buf, w, off);
	errno = e;
	return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	ssize_t w = real(fd, buf, n, off);
	int e = errno;
	if (followed(fd))
		rec_write(fd, buf, w, off);
	errno = e;
	return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	ssize_t w = real(fd, buf, n, off);
	int e = errno;
	if (followed(fd))
		rec_write(fd, buf, w, off);
	errno = e;
	return w;
}

/* the first w bytes of a vector, gathered */
static void rec_writev(int fd, const struct iovec *iov, int cnt, ssize_t w, off_t off)
{
	char *buf;
	size_t at = 0;

	if (w <= 0 || !(buf = malloc((size_t)w)))
		return;
	for (int i = 0; i < cnt && at < (size_t)w; i++) {
		size_t k = iov[i].iov_len < (size_t)w - at ? iov[i].iov_len : (size_t)w - at;
		memcpy(buf + at, iov[i].iov_base, k);
		at += k;
	}
	if (fd == 2)
		rec_stderr(buf, (size_t)w);
	else
		rec_write(fd, buf, w, off);
	free(buf);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	off_t off = followed(fd) ? write_pos(fd) : 0;
	ssize_t w = real(fd, iov, cnt);
	int e = errno;
	if (followed(fd) || fd == 2)
		rec_writev(fd, iov, cnt, w, off);
	errno = e;
	return w;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	ssize_t w = real(fd, iov, cnt, off);
	int e = errno;
	if (followed(fd))
		rec_writev(fd, iov, cnt, w, off);
	errno = e;
	return w;
}

static int rec_sync(int fd, int rc)
{
	int e = errno;

	if (rc == 0 && followed(fd))
		record(NULL, 0, "%c\t%llu\n", fd_dir[fd] ? 'D' : 'S', (unsigned long long)followed(fd) - 1);
	errno = e;
	return rc;
}

int fsync(int fd)
{
	REAL(fsync);
	return rec_sync(fd, real(fd));
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	return rec_sync(fd, real(fd));
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	int rc = real(fd, len), e = errno;
	if (rc == 0 && followed(fd))
		record(NULL, 0, "T\t%llu\t%lld\n", (unsigned long long)followed(fd) - 1, (long long)len);
	errno = e;
	return rc;
}

int ftruncate64(int fd, off64_t len)
{
	REAL(ftruncate64);
	int rc = real(fd, len), e = errno;
	if (rc == 0 && followed(fd))
		record(NULL, 0, "T\t%llu\t%lld\n", (unsigned long long)followed(fd) - 1, (long long)len);
	errno = e;
	return rc;
}

static int rec_rename(int rc, int odfd, const char *old, int ndfd, const char *new)
{
	char a[PATH_MAX], b[PATH_MAX];
	int e = errno;

	if (rc == 0) {
		resolve(odfd, old, a, sizeof a);
		resolve(ndfd, new, b, sizeof b);
		if (under(a) || under(b))
			record(NULL, 0, "R\t%s\t%s\n", a, b);
	}
	errno = e;
	return rc;
}

int rename(const char *old, const char *new)
{
	REAL(rename);
	return rec_rename(real(old, new), AT_FDCWD, old, AT_FDCWD, new);
}

int renameat(int odfd, const char *old, int ndfd, const char *new)
{
	REAL(renameat);
	return rec_rename(real(odfd, old, ndfd, new), odfd, old, ndfd, new);
}

int renameat2(int odfd, const char *old, int ndfd, const char *new, unsigned flags)
{
	REAL(renameat2);
	return rec_rename(real(odfd, old, ndfd, new, flags), odfd, old, ndfd, new);
}

static int rec_path(int rc, char kind, int dfd, const char *name)
{
	char p[PATH_MAX];
	int e = errno;

	if (rc == 0) {
		resolve(dfd, name, p, sizeof p);
		if (under(p)) {
			if (kind == 'M') {
				struct stat st;
				if (stat(p, &st) == 0)
					record(NULL, 0, "M\t%llu\t%s\n", (unsigned long long)st.st_ino, p);
			} else {
				record(NULL, 0, "%c\t%s\n", kind, p);
			}
		}
	}
	errno = e;
	return rc;
}

int unlink(const char *path)
{
	REAL(unlink);
	return rec_path(real(path), 'U', AT_FDCWD, path);
}

int unlinkat(int dfd, const char *path, int flags)
{
	REAL(unlinkat);
	return rec_path(real(dfd, path, flags), flags & AT_REMOVEDIR ? 'X' : 'U', dfd, path);
}

int rmdir(const char *path)
{
	REAL(rmdir);
	return rec_path(real(path), 'X', AT_FDCWD, path);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	return rec_path(real(path, mode), 'M', AT_FDCWD, path);
}

int mkdirat(int dfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	return rec_path(real(dfd, path, mode), 'M', dfd, path);
}

/* ---- standard error, where -v acknowledgements go ---- */

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
	REAL(vfprintf);
	if (f != stderr)
		return real(f, fmt, ap);
	char buf[8192];
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(buf, sizeof buf, fmt, cp);
	va_end(cp);
	int rc = real(f, fmt, ap);
	if (rc > 0 && n > 0)
		rec_stderr(buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
	return rc;
}

int fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	return rc;
}

int __vfprintf_chk(FILE *f, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	return vfprintf(f, fmt, ap);
}

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	va_list ap;
	int rc;

	(void)flag;
	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	return rc;
}

int fputs(const char *s, FILE *f)
{
	REAL(fputs);
	int rc = real(s, f);
	if (f == stderr && rc >= 0)
		rec_stderr(s, strlen(s));
	return rc;
}

int fputc(int c, FILE *f)
{
	REAL(fputc);
	int rc = real(c, f);
	if (f == stderr && rc != EOF) {
		char ch = (char)c;
		rec_stderr(&ch, 1);
	}
	return rc;
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	REAL(fwrite);
	size_t rc = real(p, size, n, f);
	if (f == stderr && rc > 0)
		rec_stderr(p, rc * size);
	return rc;
}
