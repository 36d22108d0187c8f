/*
 * verify.c: checking a partition from end to end, and repairing it.
 *
 * Every batch of every segment is read: length, magic, CRC, offsets that
 * rise without gaps or overlaps from one batch and one segment to the
 * next; every offset index entry must name the start of a batch and that
 * batch's last offset; time index entries must lie inside the segment.
 * A batch that is cut short at the end of the last segment is a torn
 * tail.  Each problem is reported with its file and byte position.
 *
 * Repair holds the partition lock, truncates the log at the first bad
 * batch, removes the segments after it (they would follow a hole),
 * rebuilds the indexes of segments whose indexes were wrong, and moves
 * the recovery point back below the cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_priv.h"

struct ctx {
	void (*report)(const struct mq_verify_problem *, void *);
	void *arg;
	struct mq_verify_result *res;
};

static void problem(struct ctx *c, const char *file, int64_t pos, const char *what)
{
	struct mq_verify_problem p;

	snprintf(p.file, sizeof p.file, "%s", file);
	p.pos = pos;
	snprintf(p.what, sizeof p.what, "%s", what);
	c->res->nproblems++;
	if (c->report)
		c->report(&p, c->arg);
}

/* ---- for a log's recovery (log.c) ---- */

/* Is the damage at pos a tail, that a crash can leave (a batch cut
 * short, the last batch garbled, zeros to the end), rather than damage
 * with good batches after it?  Follows the batch lengths from pos and
 * looks for a whole, CRC-valid batch. */
int mq_damaged_tail(int fd, int64_t pos, int64_t size)
{
	struct mq_walk w;
	struct mq_batch b;
	uint8_t h[MQ_BATCH_OVERHEAD];
	int tail = 1;

	for (int hops = 0; hops < 1024 && pos < size; hops++) {
		if (mq_pread_full(fd, h, sizeof h, (off_t)pos) != (ssize_t)sizeof h)
			break;
		int32_t len = (int32_t)mq_be32(h + 8);
		if (len < MQ_BATCH_HEADER - MQ_BATCH_OVERHEAD || len > MQ_MAX_BATCH)
			break;
		pos += (int64_t)len + MQ_BATCH_OVERHEAD;
		if (pos >= size)
			break;
		mq_walk_init(&w, fd, pos, size, 1);
		int rc = mq_walk_next(&w, &b);
		mq_walk_free(&w);
		if (rc > 0) {
			tail = 0;
			break;
		}
	}
	return tail;
}

/* Checks a closed segment from pos (CRC, offsets rising without gaps);
 * *cut gets the position of the first bad or torn batch, or -1; *next
 * the offset after the last good batch. */
int mq_segment_validate(const char *dir, const struct mq_segment *s, int64_t pos,
			   int64_t *next, int64_t *cut)
{
	char path[PATH_MAX];
	struct mq_walk w;
	struct mq_batch b;
	int fd, rc;

	mq_segment_path(path, sizeof path, dir, s->base, "log");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return mq_syserr("cannot open segment '%s'", path);
	*cut = -1;
	mq_walk_init(&w, fd, pos, s->size, 1);
	for (;;) {
		int64_t at = w.pos;
		rc = mq_walk_next(&w, &b);
		if (rc > 0 && (pos > 0 || at > 0) && b.base_offset != *next && *next >= 0)
			rc = mq_error(MQ_ECORRUPT, "offset gap");
		if (rc > 0 && (b.base_offset < s->base || mq_batch_last_offset(&b) - s->base > INT32_MAX))
			rc = mq_error(MQ_ECORRUPT, "offset outside the segment");
		if (rc <= 0) {
			if (rc < 0 && mq_errclass() != MQ_ECORRUPT)
				break;
			if (at < s->size)
				*cut = at;
			rc = 0;
			break;
		}
		*next = mq_batch_last_offset(&b) + 1;
	}
	mq_walk_free(&w);
	close(fd);
	return rc;
}

/* Rebuilds a closed segment's indexes when missing or damaged. */
int mq_index_heal(const char *dir, const struct mq_segment *s, int64_t interval)
{
	char path[PATH_MAX];
	struct mq_index ix;
	int damaged, fd, rc;

	if (mq_index_load(&ix, dir, s->base, s->size, &damaged) < 0)
		return -1;
	mq_index_free(&ix);
	mq_segment_path(path, sizeof path, dir, s->base, "index");
	if (!damaged && access(path, F_OK) == 0) {
		mq_segment_path(path, sizeof path, dir, s->base, "timeindex");
		if (access(path, F_OK) == 0)
			return 0;
	}
	mq_segment_path(path, sizeof path, dir, s->base, "log");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return mq_syserr("cannot open segment '%s'", path);
	rc = mq_index_rebuild(dir, s->base, fd, s->size, interval, 1);
	close(fd);
	return rc;
}

int mq_index_rebuild(const char *dir, int64_t base, int fd, int64_t size,
			 int64_t interval, int closed)
{
	struct mq_walk w;
	struct mq_batch b;
	struct mq_buf ix = { 0 }, tix = { 0 };
	int64_t last_pos = 0, max_ts = -1, max_off = base, last_tts = -1;
	char path[PATH_MAX];
	uint8_t e[12];
	int rc;

	mq_walk_init(&w, fd, 0, size, 0);
	while ((rc = mq_walk_next(&w, &b)) > 0) {
		int64_t pos = w.pos - (int64_t)b.size;
		if (b.max_timestamp > max_ts) {
			max_ts = b.max_timestamp;
			max_off = mq_batch_last_offset(&b);
		}
		if (pos > last_pos && pos - last_pos > interval) {
			mq_put32(e, (uint32_t)(mq_batch_last_offset(&b) - base));
			mq_put32(e + 4, (uint32_t)pos);
			if (mq_buf_append(&ix, e, 8) < 0)
				goto fail;
			last_pos = pos;
			if (max_ts > last_tts) {
				mq_put64(e, (uint64_t)max_ts);
				mq_put32(e + 8, (uint32_t)(max_off - base));
				if (mq_buf_append(&tix, e, 12) < 0)
					goto fail;
				last_tts = max_ts;
			}
		}
	}
	if (rc < 0)
		goto fail;
	if (closed && max_ts > last_tts) {
		mq_put64(e, (uint64_t)max_ts);
		mq_put32(e + 8, (uint32_t)(max_off - base));
		if (mq_buf_append(&tix, e, 12) < 0)
			goto fail;
	}
	mq_walk_free(&w);
	mq_segment_path(path, sizeof path, dir, base, "index");
	if (mq_write_file_atomic(path, ix.p ? (void *)ix.p : "", ix.len) < 0)
		goto fail_bufs;
	mq_segment_path(path, sizeof path, dir, base, "timeindex");
	if (mq_write_file_atomic(path, tix.p ? (void *)tix.p : "", tix.len) < 0)
		goto fail_bufs;
	mq_buf_free(&ix);
	mq_buf_free(&tix);
	return 0;
fail:
	mq_walk_free(&w);
fail_bufs:
	mq_buf_free(&ix);
	mq_buf_free(&tix);
	return -1;
}

/* Checks one segment.  *next is the offset the segment must start at (-1:
 * any) and becomes the offset after its last good batch; *cut gets the
 * position of the first bad batch, or -1. */
static int check_segment(struct ctx *c, const char *dir, const struct mq_segment *s,
			 int64_t *next, int64_t *cut, int *index_bad)
{
	char file[PATH_MAX], msg[512];
	struct mq_index ix;
	struct mq_walk w;
	struct mq_batch b;
	size_t ie = 0;
	int fd, rc, damaged;

	*cut = -1;
	*index_bad = 0;
	mq_segment_path(file, sizeof file, dir, s->base, "log");
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return mq_syserr("cannot open segment '%s'", file);
	if (mq_index_load(&ix, dir, s->base, s->size, &damaged) < 0) {
		close(fd);
		return -1;
	}
	if (damaged) {
		char f[PATH_MAX];
		mq_segment_path(f, sizeof f, dir, s->base, "index");
		problem(c, f, 0, "index entries do not increase or point past the log");
		*index_bad = 1;
	}
	mq_walk_init(&w, fd, 0, s->size, 1);
	for (;;) {
		int64_t pos = w.pos;
		rc = mq_walk_next(&w, &b);
		if (rc == 0) {
			if (pos < s->size) {
				snprintf(msg, sizeof msg, "torn batch: %lld bytes at the end are not a whole batch",
					 (long long)(s->size - pos));
				problem(c, file, pos, msg);
				*cut = pos;
			}
			break;
		}
		if (rc < 0) {
			if (mq_errclass() != MQ_ECORRUPT)
				goto fail;
			problem(c, file, pos, mq_errmsg());
			*cut = pos;
			break;
		}
		if (*next >= 0 && b.base_offset != *next) {
			snprintf(msg, sizeof msg, "batch starts at offset %lld, expected %lld",
				 (long long)b.base_offset, (long long)*next);
			problem(c, file, pos, msg);
			*cut = pos;
			break;
		}
		if (mq_batch_last_offset(&b) - s->base > INT32_MAX || b.base_offset > INT64_MAX / 2) {
			snprintf(msg, sizeof msg, "batch offset %lld does not fit a segment based at %lld",
				 (long long)b.base_offset, (long long)s->base);
			problem(c, file, pos, msg);
			*cut = pos;
			break;
		}
		if (*next < 0 && b.base_offset != s->base) {
			snprintf(msg, sizeof msg, "first batch starts at offset %lld, the segment at %lld",
				 (long long)b.base_offset, (long long)s->base);
			problem(c, file, pos, msg);
			*cut = pos;
			break;
		}
		/* index entries must land on batch starts */
		while (ie < ix.noff && ix.off[ie].pos < pos) {
			char f[PATH_MAX];
			mq_segment_path(f, sizeof f, dir, s->base, "index");
			snprintf(msg, sizeof msg, "entry %zu points inside a batch (position %lld)",
				 ie, (long long)ix.off[ie].pos);
			problem(c, f, (int64_t)ie * 8, msg);
			*index_bad = 1;
			ie++;
		}
		if (ie < ix.noff && ix.off[ie].pos == pos) {
			if (ix.off[ie].offset != mq_batch_last_offset(&b)) {
				char f[PATH_MAX];
				mq_segment_path(f, sizeof f, dir, s->base, "index");
				snprintf(msg, sizeof msg, "entry %zu names offset %lld, the batch ends at %lld",
					 ie, (long long)ix.off[ie].offset, (long long)mq_batch_last_offset(&b));
				problem(c, f, (int64_t)ie * 8, msg);
				*index_bad = 1;
			}
			ie++;
		}
		*next = mq_batch_last_offset(&b) + 1;
		c->res->batches++;
		c->res->records += b.count;
		c->res->bytes += (int64_t)b.size;
	}
	if (*next < 0)
		*next = s->base;
	if (*cut < 0 && ie < ix.noff) {
		char f[PATH_MAX];
		mq_segment_path(f, sizeof f, dir, s->base, "index");
		problem(c, f, (int64_t)ie * 8, "entries past the last batch");
		*index_bad = 1;
	}
	for (size_t t = 0; t < ix.ntime && *cut < 0; t++)
		if (ix.time[t].offset >= *next) {
			char f[PATH_MAX];
			mq_segment_path(f, sizeof f, dir, s->base, "timeindex");
			snprintf(msg, sizeof msg, "entry %zu names offset %lld past the segment end %lld",
				 t, (long long)ix.time[t].offset, (long long)*next);
			problem(c, f, (int64_t)t * 12, msg);
			*index_bad = 1;
			break;
		}
	mq_walk_free(&w);
	mq_index_free(&ix);
	close(fd);
	return 0;
fail:
	mq_walk_free(&w);
	mq_index_free(&ix);
	close(fd);
	return -1;
}

/* The topic's index.interval.bytes, from the topic.conf above dir. */
static int64_t index_interval(const char *dir)
{
	char path[PATH_MAX], *text;
	struct mq_config conf;

	mq_config_default(&conf);
	if (mq_pathf(path, sizeof path, "%s/../topic.conf", dir) == 0 &&
	    mq_read_file(path, 1 << 16, &text, NULL) == 0) {
		mq_config_parse(&conf, text, path);
		free(text);
	}
	return conf.index_interval_bytes;
}

static int repair_segment(struct ctx *c, const char *dir, const struct mq_segment *s,
			  int64_t cut, int closed)
{
	char file[PATH_MAX];
	int fd;

	mq_segment_path(file, sizeof file, dir, s->base, "log");
	if ((fd = open(file, O_RDWR | O_CLOEXEC)) < 0)
		return mq_syserr("cannot open segment '%s'", file);
	if (cut >= 0) {
		if (ftruncate(fd, (off_t)cut) < 0 || fsync(fd) < 0) {
			mq_syserr("cannot truncate '%s'", file);
			close(fd);
			return -1;
		}
		c->res->truncated_bytes += s->size - cut;
	}
	int rc = mq_index_rebuild(dir, s->base, fd, cut >= 0 ? cut : s->size,
				  index_interval(dir), closed);
	close(fd);
	return rc;
}

int mq_verify_partition(const char *dir, int repair,
			void (*report)(const struct mq_verify_problem *, void *),
			void *arg, struct mq_verify_result *res)
{
	struct ctx c = { report, arg, res };
	struct mq_segment *segs = NULL;
	size_t n;
	int lockfd = -1, rc = -1;
	int64_t next = -1, ls = 0, cut_offset = -1;
	char path[PATH_MAX];

	memset(res, 0, sizeof *res);
	if (repair && mq_partition_lock(dir, &lockfd) < 0)
		return -1;
	if (mq_segments_list(dir, &segs, &n) < 0)
		goto out;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_LOG_START, dir);
	if (mq_checkpoint_read(path, &ls) == 0 && n > 0 && ls < segs[0].base) {
		char msg[128];
		snprintf(msg, sizeof msg, "log start offset %lld is below the first segment %lld",
			 (long long)ls, (long long)segs[0].base);
		problem(&c, path, 0, msg);
	}
	for (size_t i = 0; i < n; i++) {
		int64_t cut;
		int index_bad;
		int64_t expect = i == 0 ? -1 : next;
		if (i > 0 && segs[i].base != next) {
			char file[PATH_MAX], msg[128];
			mq_segment_path(file, sizeof file, dir, segs[i].base, "log");
			snprintf(msg, sizeof msg, "segment starts at offset %lld, expected %lld",
				 (long long)segs[i].base, (long long)next);
			problem(&c, file, 0, msg);
			if (repair) {
				cut_offset = next;
				for (size_t j = i; j < n; j++) {
					if (mq_segment_remove(dir, segs[j].base) < 0)
						goto out;
					res->truncated_bytes += segs[j].size;
				}
				break;
			}
			expect = -1;
		}
		if (check_segment(&c, dir, &segs[i], &expect, &cut, &index_bad) < 0)
			goto out;
		next = expect;
		if (repair && (cut >= 0 || index_bad)) {
			if (repair_segment(&c, dir, &segs[i], cut, i + 1 < n && cut < 0) < 0)
				goto out;
			if (cut >= 0) {
				cut_offset = next;
				/* everything after the cut goes */
				for (size_t j = i + 1; j < n; j++) {
					if (mq_segment_remove(dir, segs[j].base) < 0)
						goto out;
					res->truncated_bytes += segs[j].size;
				}
				break;
			}
		}
	}
	if (repair && cut_offset >= 0) {
		int64_t rp;
		mq_pathf(path, sizeof path, "%s/" MQ_CKPT_RECOVERY, dir);
		if (mq_checkpoint_read(path, &rp) == 0 && rp > cut_offset &&
		    mq_checkpoint_write(path, cut_offset, 1) < 0)
			goto out;
		mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
		if (mq_checkpoint_read(path, &rp) == 0 && rp > cut_offset &&
		    mq_checkpoint_write(path, cut_offset, 1) < 0)
			goto out;
		if (mq_fsync_dir(dir) < 0)
			goto out;
	}
	rc = 0;
out:
	free(segs);
	if (lockfd >= 0)
		mq_partition_unlock(lockfd);
	return rc;
}
