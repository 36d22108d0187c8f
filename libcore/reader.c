/*
 * reader.c: reading a partition without any lock, while appenders,
 * retention and rolls go on.
 *
 * A reader holds one segment open and walks it.  At the end of what is
 * there it looks again: the file may have grown (an append), or a newer
 * segment may exist (a roll).  It checks for the newer segment before
 * re-reading the size of the current one, so that a batch appended just
 * before a roll is never skipped.  A batch not yet whole is "not there
 * yet", never an error.  An open descriptor keeps a segment readable even
 * when retention unlinks it.
 *
 * A reader of a remote partition (mq_reader_open_remote) does the same
 * over fetch requests: it holds the batches of the last answer and asks
 * for more from where they end, checking each batch's CRC as a local
 * read does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

struct mq_reader {
	char dir[PATH_MAX];
	char file[PATH_MAX];
	int segfd;
	int64_t base;             /* of the open segment */
	int64_t min_offset;       /* skip batches wholly before this */
	int64_t next;             /* offset after the last batch returned */
	int64_t batch_pos;        /* file position of the last batch */
	int check_crc;
	int waiting;              /* positioned in a partition with no segment */
	struct mq_walk w;
	/* remote */
	const struct mq_topic *t;
	int32_t part;
	struct mq_response resp;
	size_t rpos;              /* next batch in resp.body */
	int64_t log_end;          /* as the last answer said */
};

#define MQ_FETCH_BYTES (1 << 20)

int mq_reader_open_remote(struct mq_reader **rp, const struct mq_topic *t, int32_t part)
{
	struct mq_reader *r = calloc(1, sizeof *r);

	if (!r)
		return mq_syserr("cannot open partition %d of '%s'", part, t->name);
	snprintf(r->dir, sizeof r->dir, "%s/%s/%d", t->dir, t->name, part);
	snprintf(r->file, sizeof r->file, "%s", r->dir);
	r->segfd = -1;
	r->check_crc = 1;
	r->t = t;
	r->part = part;
	r->log_end = -1;
	*rp = r;
	return 0;
}

static int remote_next(struct mq_reader *r, struct mq_batch *b)
{
	for (int fetched = 0;;) {
		if (r->rpos < r->resp.body.len) {
			const uint8_t *p = r->resp.body.p + r->rpos;
			size_t avail = r->resp.body.len - r->rpos;
			int rc = mq_batch_parse(p, avail, b);
			if (rc != MQ_BATCH_OK || (r->check_crc && !mq_batch_crc_ok(b)))
				return mq_error(MQ_ECORRUPT, "corrupt batch from '%s' at offset %lld: %s",
						r->dir, (long long)r->next,
						rc == MQ_BATCH_BAD ? mq_errmsg() :
						rc == MQ_BATCH_SHORT ? "truncated" : "CRC mismatch");
			r->rpos += b->size;
			if (mq_batch_last_offset(b) < r->min_offset)
				continue;
			r->next = mq_batch_last_offset(b) + 1;
			return 1;
		}
		if (fetched)
			return 0;
		r->rpos = 0;
		if (mq_client_fetch(r->t, r->part, r->next, MQ_FETCH_BYTES, 0, NULL, -1, &r->resp) < 0)
			return -1;
		r->log_end = r->resp.log_end;
		fetched = 1;
	}
}

int64_t mq_reader_log_end(struct mq_reader *r)
{
	struct mq_partition_info pi;

	if (r->t && r->log_end >= 0)
		return r->log_end;
	if (r->t ? mq_client_partition_info(r->t, r->part, &pi) < 0 : mq_partition_info(r->dir, &pi) < 0)
		return -1;
	return pi.log_end;
}

int mq_reader_open(struct mq_reader **rp, const char *dir)
{
	struct mq_reader *r = calloc(1, sizeof *r);

	if (!r)
		return mq_syserr("cannot open partition '%s'", dir);
	if (strlen(dir) >= sizeof r->dir - 32) {
		free(r);
		return mq_error(MQ_EUSAGE, "path too long '%s'", dir);
	}
	strcpy(r->dir, dir);
	r->segfd = -1;
	r->check_crc = 1;
	*rp = r;
	return 0;
}

void mq_reader_close(struct mq_reader *r)
{
	if (!r)
		return;
	if (r->segfd >= 0)
		close(r->segfd);
	mq_walk_free(&r->w);
	mq_response_free(&r->resp);
	free(r);
}

void mq_reader_set_crc_check(struct mq_reader *r, int on)
{
	r->check_crc = on;
	r->w.check_crc = on;
}

static int open_segment(struct mq_reader *r, int64_t base, int64_t pos)
{
	int fd;
	struct stat st;

	mq_segment_path(r->file, sizeof r->file, r->dir, base, "log");
	fd = open(r->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mq_syserr("cannot open segment '%s'", r->file);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return mq_syserr("cannot stat segment '%s'", r->file);
	}
	if (r->segfd >= 0)
		close(r->segfd);
	r->segfd = fd;
	r->base = base;
	mq_walk_free(&r->w);
	mq_walk_init(&r->w, fd, pos, st.st_size, r->check_crc);
	return 0;
}

int mq_reader_seek(struct mq_reader *r, int64_t offset)
{
	struct mq_partition_info pi;
	struct mq_segment *segs;
	struct mq_index ix;
	size_t n, i;
	int damaged;
	int64_t pos;

	if (r->t) {
		r->min_offset = r->next = offset;
		r->rpos = r->resp.body.len = 0;
		return 0;
	}
	if (mq_partition_info(r->dir, &pi) < 0)
		return -1;
	if (offset < pi.log_start)
		return mq_error(MQ_ENOTFOUND, "offset %lld is before the log start %lld",
				(long long)offset, (long long)pi.log_start);
	if (offset > pi.log_end)
		return mq_error(MQ_ENOTFOUND, "offset %lld is past the log end %lld",
				(long long)offset, (long long)pi.log_end);
	if (mq_segments_list(r->dir, &segs, &n) < 0)
		return -1;
	r->min_offset = offset;
	r->next = offset;
	if (n == 0) {
		/* never written: empty until a writer creates a segment */
		free(segs);
		if (r->segfd >= 0)
			close(r->segfd);
		r->segfd = -1;
		r->waiting = 1;
		return 0;
	}
	r->waiting = 0;
	for (i = n; i-- > 1;)
		if (segs[i].base <= offset)
			break;
	if (mq_index_load(&ix, r->dir, segs[i].base, segs[i].size, &damaged) < 0) {
		free(segs);
		return -1;
	}
	pos = mq_index_lookup(&ix, offset);
	mq_index_free(&ix);
	if (open_segment(r, segs[i].base, pos) < 0) {
		free(segs);
		return -1;
	}
	free(segs);
	return 0;
}

/* Is there a segment after the open one?  *base gets the first. */
static int newer_segment(struct mq_reader *r, int64_t *base)
{
	char path[PATH_MAX];
	struct mq_segment *segs;
	size_t n;
	int found = 0;

	mq_segment_path(path, sizeof path, r->dir, r->next, "log");
	if (r->next > r->base && access(path, F_OK) == 0) {
		*base = r->next;
		return 1;
	}
	if (mq_segments_list(r->dir, &segs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (segs[i].base > r->base) {
			*base = segs[i].base;
			found = 1;
			break;
		}
	free(segs);
	return found;
}

int mq_reader_next(struct mq_reader *r, struct mq_batch *b)
{
	struct stat st;
	int rc;

	if (r->t)
		return remote_next(r, b);
	if (r->segfd < 0) {
		if (mq_reader_seek(r, r->waiting ? r->next : 0) < 0)
			return -1;
		if (r->segfd < 0)
			return 0;
	}
	for (;;) {
		int64_t pos = r->w.pos;
		rc = mq_walk_next(&r->w, b);
		if (rc > 0) {
			if (mq_batch_last_offset(b) < r->min_offset)
				continue;
			r->batch_pos = pos;
			r->next = mq_batch_last_offset(b) + 1;
			return 1;
		}
		if (rc < 0) {
			if (mq_errclass() == MQ_ECORRUPT)
				return mq_error(MQ_ECORRUPT, "corrupt batch in '%s' at byte %lld: %s",
						r->file, (long long)pos, mq_errmsg());
			return -1;
		}
		/* the end of what was there: a roll, or more data? */
		int64_t nb;
		int newer = newer_segment(r, &nb);
		if (newer < 0)
			return -1;
		if (fstat(r->segfd, &st) < 0)
			return mq_syserr("cannot stat segment '%s'", r->file);
		if (st.st_size > r->w.size) {
			r->w.size = st.st_size;
			continue;
		}
		if (!newer)
			return 0;
		if (r->w.pos < st.st_size)
			return mq_error(MQ_ECORRUPT, "torn batch in '%s' at byte %lld before a newer segment",
					r->file, (long long)r->w.pos);
		if (open_segment(r, nb, 0) < 0)
			return -1;
	}
}

int mq_reader_skip_corrupt(struct mq_reader *r)
{
	uint8_t h[MQ_BATCH_HEADER];
	struct stat st;
	int64_t nb;
	int newer;

	if (r->t) {
		struct mq_batch b;
		/* the batch that failed is still at rpos: pass it, or all the
		 * answer when even its header is bad */
		if (mq_batch_parse(r->resp.body.p + r->rpos, r->resp.body.len - r->rpos, &b) == MQ_BATCH_OK) {
			r->rpos += b.size;
			r->next = mq_batch_last_offset(&b) + 1;
		} else {
			r->rpos = r->resp.body.len;
		}
		return 0;
	}
	/* a batch whose header holds up (a CRC mismatch): skip just it */
	if (mq_pread_full(r->segfd, h, sizeof h, r->w.pos) == (ssize_t)sizeof h &&
	    fstat(r->segfd, &st) == 0) {
		int32_t len = (int32_t)mq_be32(h + 8);
		int64_t base = (int64_t)mq_be64(h), last = base + (int32_t)mq_be32(h + 23);
		if (h[16] == 2 && len >= MQ_BATCH_HEADER - MQ_BATCH_OVERHEAD && len <= MQ_MAX_BATCH &&
		    r->w.pos + len + MQ_BATCH_OVERHEAD <= st.st_size && base >= r->next && last >= base) {
			r->w.pos += (int64_t)len + MQ_BATCH_OVERHEAD;
			r->next = last + 1;
			return 0;
		}
	}
	/* otherwise the rest of the segment is lost: the next one, or the
	 * end of this one (the offsets it held count as passed) */
	if ((newer = newer_segment(r, &nb)) < 0)
		return -1;
	if (newer) {
		r->next = nb;
		return open_segment(r, nb, 0);
	}
	if (fstat(r->segfd, &st) < 0)
		return mq_syserr("cannot stat segment '%s'", r->file);
	struct mq_partition_info pi;
	if (mq_partition_info(r->dir, &pi) == 0 && pi.log_end > r->next)
		r->next = pi.log_end;
	r->w.pos = st.st_size;
	r->w.size = st.st_size;
	return 0;
}

int mq_reader_seek_time(struct mq_reader *r, int64_t ts, int64_t *offset)
{
	struct mq_segment *segs;
	struct mq_partition_info pi;
	size_t n;

	if (r->t)
		return mq_client_offset_for_time(r->t, r->part, ts, offset) < 0 ? -1 : mq_reader_seek(r, *offset);
	if (mq_partition_info(r->dir, &pi) < 0 || mq_segments_list(r->dir, &segs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int64_t maxts, from;
		struct mq_index ix;
		struct mq_batch b;
		int damaged, rc;

		if (mq_segment_max_timestamp(r->dir, &segs[i], &maxts) < 0)
			goto fail;
		if (maxts < ts)
			continue;
		if (mq_index_load(&ix, r->dir, segs[i].base, segs[i].size, &damaged) < 0)
			goto fail;
		from = mq_index_lookup_time(&ix, ts);
		int64_t pos = mq_index_lookup(&ix, from);
		mq_index_free(&ix);
		if (open_segment(r, segs[i].base, pos) < 0)
			goto fail;
		r->min_offset = r->next = from < pi.log_start ? pi.log_start : from;
		while ((rc = mq_walk_next(&r->w, &b)) > 0) {
			struct mq_record_iter it = { 0 };
			struct mq_record rec;
			if (b.max_timestamp < ts || (b.attributes & MQ_ATTR_CONTROL))
				continue;
			if (mq_record_iter_init(&it, &b, (size_t)MQ_MAX_BATCH) < 0)
				goto fail;
			while (mq_record_next(&it, &rec) > 0)
				if (rec.timestamp >= ts && rec.offset >= pi.log_start) {
					mq_record_iter_free(&it);
					free(segs);
					*offset = rec.offset;
					return mq_reader_seek(r, rec.offset);
				}
			mq_record_iter_free(&it);
		}
		if (rc < 0)
			goto fail;
	}
	free(segs);
	*offset = pi.log_end;
	return mq_reader_seek(r, pi.log_end);
fail:
	free(segs);
	return -1;
}

int64_t mq_reader_position(const struct mq_reader *r)
{
	return r->next;
}

const char *mq_reader_file(const struct mq_reader *r)
{
	return r->file;
}

int mq_reader_batch_fd(const struct mq_reader *r, off_t *pos)
{
	*pos = (off_t)r->batch_pos;
	return r->segfd;
}
