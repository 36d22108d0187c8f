/*
 * partition.c: a partition directory seen from outside the writer:
 * listing its segments, walking batches, reading its state for describe
 * and mq-lag, applying retention, and the partition lock.
 *
 * The lock is an flock on the partition directory itself, so a Kafka
 * partition directory needs no extra file, and a process that dies
 * releases it with its last descriptor.  Whoever changes the log (an
 * appender, retention, verify --repair) holds it; readers never take it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

void mq_segment_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext)
{
	snprintf(buf, n, "%s/%020" PRId64 ".%s", dir, base, ext);
}

int mq_segment_name(const char *name, const char *ext, int64_t *base)
{
	int64_t v = 0;

	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (name[i] - '0');
	}
	if (name[20] != '.' || strcmp(name + 21, ext))
		return 0;
	*base = v;
	return 1;
}

int mq_segment_remove(const char *dir, int64_t base)
{
	static const char *const ext[] = { "log", "index", "timeindex" };
	char path[PATH_MAX];

	for (int e = 0; e < 3; e++) {
		mq_segment_path(path, sizeof path, dir, base, ext[e]);
		if (unlink(path) < 0 && errno != ENOENT)
			return mq_syserr("cannot delete segment '%s'", path);
	}
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct mq_segment *)a)->base, y = ((const struct mq_segment *)b)->base;
	return x < y ? -1 : x > y;
}

int mq_segments_list(const char *dir, struct mq_segment **segs, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct mq_segment *v = NULL;
	size_t cnt = 0, cap = 0;

	if (!d)
		return mq_syserr("cannot open partition '%s'", dir);
	while ((e = readdir(d))) {
		int64_t base;
		struct stat st;
		if (!mq_segment_name(e->d_name, "log", &base))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;   /* deleted by retention meanwhile */
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct mq_segment *nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return mq_syserr("cannot list partition '%s'", dir);
			}
			v = nv;
		}
		v[cnt++] = (struct mq_segment){ base, st.st_size };
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof *v, seg_cmp);
	*segs = v;
	*n = cnt;
	return 0;
}

/* ---- the walker ---- */

void mq_walk_init(struct mq_walk *w, int fd, int64_t pos, int64_t size, int check_crc)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->pos = pos;
	w->size = size;
	w->buf_pos = pos;
	w->check_crc = check_crc;
}

void mq_walk_free(struct mq_walk *w)
{
	mq_buf_free(&w->buf);
}

/* Makes at least need bytes from w->pos available in the buffer (fewer
 * at the end of the file).  Returns the bytes available. */
static ssize_t fill(struct mq_walk *w, size_t need)
{
	size_t have;

	if (w->pos < w->buf_pos || w->pos > w->buf_pos + (int64_t)w->buf.len) {
		w->buf.len = 0;
		w->buf_pos = w->pos;
	}
	w->buf_off = (size_t)(w->pos - w->buf_pos);
	have = w->buf.len - w->buf_off;
	if (have >= need)
		return (ssize_t)have;
	/* slide what is left to the front, then read a chunk behind it */
	if (have)
		memmove(w->buf.p, w->buf.p + w->buf_off, have);
	w->buf.len = have;
	w->buf_pos = w->pos;
	w->buf_off = 0;
	size_t want = need > MQ_WALK_CHUNK ? need : MQ_WALK_CHUNK;
	int64_t left = w->size - (w->pos + (int64_t)have);
	if (left <= 0)
		return (ssize_t)have;
	if ((int64_t)(want - have) > left)
		want = have + (size_t)left;
	if (want > have) {
		if (mq_buf_reserve(&w->buf, want - have) < 0)
			return -1;
		ssize_t r = mq_pread_full(w->fd, w->buf.p + have, want - have, (off_t)(w->pos + (int64_t)have));
		if (r < 0)
			return mq_syserr("cannot read segment");
		w->buf.len += (size_t)r;
	}
	return (ssize_t)w->buf.len;
}

int mq_walk_next(struct mq_walk *w, struct mq_batch *b)
{
	ssize_t avail;
	int rc;

	if (w->pos >= w->size)
		return 0;
	if ((avail = fill(w, MQ_BATCH_HEADER)) < 0)
		return -1;
	rc = mq_batch_parse(w->buf.p + w->buf_off, (size_t)avail, b);
	if (rc == MQ_BATCH_SHORT && avail >= MQ_BATCH_OVERHEAD) {
		int32_t len = (int32_t)mq_be32(w->buf.p + w->buf_off + 8);
		if (len > MQ_MAX_BATCH)
			return mq_error(MQ_ECORRUPT, "batch length %d too large", len);
		if ((int64_t)len + MQ_BATCH_OVERHEAD > w->size - w->pos) {
			w->buf.len = w->buf_off;
			return 0;
		}
		if ((avail = fill(w, (size_t)len + MQ_BATCH_OVERHEAD)) < 0)
			return -1;
		rc = mq_batch_parse(w->buf.p + w->buf_off, (size_t)avail, b);
	}
	if (rc == MQ_BATCH_SHORT) {
		/* forget the partial bytes: a torn tail may be truncated and
		 * written anew by the time we look again */
		w->buf.len = w->buf_off;
		return 0;
	}
	if (rc == MQ_BATCH_BAD)
		return -1;
	if (w->check_crc && !mq_batch_crc_ok(b))
		return mq_error(MQ_ECORRUPT, "CRC mismatch (stored %08x, computed %08x)",
				b->crc, mq_crc32c(0, b->data + 21, b->size - 21));
	w->pos += (int64_t)b->size;
	return 1;
}

/* ---- lock ---- */

int mq_partition_lock(const char *dir, int *fd)
{
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return mq_syserr("cannot open partition '%s'", dir);
	if (mq_flock_ex(*fd, dir) < 0) {
		close(*fd);
		return -1;
	}
	return 0;
}

int mq_flock_ex(int fd, const char *dir)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return mq_syserr("cannot lock partition '%s'", dir);
	return 0;
}

void mq_partition_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- state ---- */

/* Walks the batches after the last offset index entry of a segment to
 * find its next offset and max timestamp.  *next is left alone when the
 * segment holds no batch. */
static int segment_tail(const char *dir, const struct mq_segment *s, int64_t *next,
			int64_t *maxts, int64_t *first_ts)
{
	char path[PATH_MAX];
	struct mq_index ix;
	struct mq_walk w;
	struct mq_batch b;
	int damaged, fd, rc;
	int64_t pos;

	if (mq_index_load(&ix, dir, s->base, s->size, &damaged) < 0)
		return -1;
	pos = mq_index_lookup(&ix, INT64_MAX);
	*maxts = ix.ntime ? ix.time[ix.ntime - 1].timestamp : -1;
	mq_index_free(&ix);
	mq_segment_path(path, sizeof path, dir, s->base, "log");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : mq_syserr("cannot open segment '%s'", path);
	if (first_ts) {
		uint8_t h[MQ_BATCH_HEADER];
		*first_ts = -1;
		if (mq_pread_full(fd, h, sizeof h, 0) == (ssize_t)sizeof h)
			*first_ts = (int64_t)mq_be64(h + 27);
	}
	mq_walk_init(&w, fd, pos, s->size, 0);
	while ((rc = mq_walk_next(&w, &b)) > 0) {
		*next = mq_batch_last_offset(&b) + 1;
		if (b.max_timestamp > *maxts)
			*maxts = b.max_timestamp;
	}
	mq_walk_free(&w);
	close(fd);
	/* a bad batch at the tail is the writer's to repair; report what is
	 * readable */
	return 0;
}

int mq_segment_max_timestamp(const char *dir, const struct mq_segment *s, int64_t *ts)
{
	int64_t next = s->base;
	return segment_tail(dir, s, &next, ts, NULL);
}

int mq_partition_info(const char *dir, struct mq_partition_info *pi)
{
	struct mq_segment *segs;
	size_t n;
	char path[PATH_MAX];
	int64_t ls = 0, hw;

	memset(pi, 0, sizeof *pi);
	pi->first_timestamp = pi->last_timestamp = -1;
	if (mq_segments_list(dir, &segs, &n) < 0)
		return -1;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_LOG_START, dir);
	if (mq_checkpoint_read(path, &ls) < 0)
		ls = 0;
	pi->nsegments = n;
	for (size_t i = 0; i < n; i++)
		pi->bytes += segs[i].size;
	if (n == 0) {
		pi->log_start = pi->log_end = pi->high_watermark = ls;
		free(segs);
		return 0;
	}
	if (ls < segs[0].base)
		ls = segs[0].base;
	pi->log_start = ls;
	/* the end: a segment is created at the offset it starts with, so an
	 * empty last segment still tells the end */
	int64_t next = segs[n - 1].base, fts;
	if (segment_tail(dir, &segs[n - 1], &next, &pi->last_timestamp, &fts) < 0) {
		free(segs);
		return -1;
	}
	pi->log_end = next < ls ? ls : next;
	{
		uint8_t h[MQ_BATCH_HEADER];
		mq_segment_path(path, sizeof path, dir, segs[0].base, "log");
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (mq_pread_full(fd, h, sizeof h, 0) == (ssize_t)sizeof h)
				pi->first_timestamp = (int64_t)mq_be64(h + 27);
			close(fd);
		}
	}
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
	pi->high_watermark = mq_checkpoint_read(path, &hw) == 0 && hw < pi->log_end ? hw : pi->log_end;
	free(segs);
	return 0;
}

/* ---- retention ---- */

int mq_partition_retention(const char *dir, const struct mq_config *conf,
			   int64_t now, size_t *removed)
{
	int lockfd, rc;

	if (mq_partition_lock(dir, &lockfd) < 0)
		return -1;
	rc = mq_retention_locked(dir, conf, now, removed);
	mq_partition_unlock(lockfd);
	return rc;
}

int mq_retention_locked(const char *dir, const struct mq_config *conf,
			int64_t now, size_t *removed)
{
	struct mq_segment *segs;
	size_t n, del = 0;
	int64_t total = 0, ls, maxts;
	char path[PATH_MAX];

	*removed = 0;
	if (mq_segments_list(dir, &segs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		total += segs[i].size;
	/* never the active (last) segment */
	while (del + 1 < n) {
		int expired = 0;
		if (conf->retention_bytes >= 0 && total - segs[del].size >= conf->retention_bytes)
			expired = 1;
		if (!expired && conf->retention_ms >= 0) {
			if (mq_segment_max_timestamp(dir, &segs[del], &maxts) < 0)
				goto fail_segs;
			expired = maxts >= 0 && now - maxts > conf->retention_ms;
		}
		if (!expired)
			break;
		total -= segs[del].size;
		del++;
	}
	if (del > 0) {
		/* move the log start first: a crash before the unlinks leaves
		 * files that the next run removes, never a start that points
		 * at deleted data */
		mq_pathf(path, sizeof path, "%s/" MQ_CKPT_LOG_START, dir);
		if (mq_checkpoint_read(path, &ls) < 0 || ls < segs[del].base)
			if (mq_checkpoint_write(path, segs[del].base, 1) < 0)
				goto fail_segs;
		for (size_t i = 0; i < del; i++)
			if (mq_segment_remove(dir, segs[i].base) < 0)
				goto fail_segs;
		*removed = del;
	}
	free(segs);
	return 0;
fail_segs:
	free(segs);
	return -1;
}
