/*
 * log.c: appending to a partition, the way Kafka's Log and LogSegment do,
 * with several processes appending at once.
 *
 * Protocol.  Every append takes the partition lock (an flock on the
 * partition directory, see partition.c), brings its view of the active
 * segment up to date, writes its batches at the end of the active segment
 * in one write, adds index entries, and releases the lock.  Other
 * appenders may have written since this process last held the lock, so
 * under the lock it:
 *   - fstats the active segment: if it grew, it walks the new batch
 *     headers to learn the next offset (and adds any index entry a
 *     writer killed between its two writes did not get to add); if it
 *     shrank (a repair), it reloads everything;
 *   - checks whether a segment named by that next offset exists, which
 *     means another writer rolled: it reloads.
 * Readers take no lock: a batch being written is simply not whole yet.
 *
 * Recovery.  The first append of a process recovers the tail before
 * anything else: from the recovery point (a checkpointed offset below
 * which the log is known valid) it reads every batch, checking length,
 * CRC and offsets, truncates at the first batch that is torn or bad,
 * drops later segments, and rewrites index entries past the recovery
 * point.  A partition directory holding only a Kafka .log is recovered
 * the same way (no recovery point: everything is checked).
 *
 * The recovery point advances on roll (after an fdatasync of the closed
 * segment, as Kafka flushes on roll), after each fdatasync in --fsync
 * mode, and when an appender closes, at most once per MQ_RP_INTERVAL of
 * log, so recovery reads at most that much plus one session's appends.
 * Without --fsync the point may run ahead of what reached the disk
 * before a power loss; readers check CRCs, so such damage shows as
 * corrupt data, and mq-topic verify --repair removes it.
 *
 * Segments roll when the next write would pass segment.bytes, when the
 * first batch of the segment is older than segment.ms, or when relative
 * offsets or positions would overflow the indexes' 32 bits.  Retention
 * runs on roll.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

#define MQ_RP_INTERVAL (64 << 20)
#define MQ_WRITE_BEHIND (16 << 20)

struct mq_log {
	char dir[PATH_MAX];
	struct mq_config conf;
	int flags;
	int lockfd;
	int recovered;
	int broken;
	/* the active segment as last seen under the lock */
	int64_t base;
	int segfd, ixfd, tixfd;
	int64_t size;
	int64_t next;             /* log end offset */
	int64_t first_ts;         /* max timestamp of its first batch */
	int64_t nix, ntix;        /* entries in .index, .timeindex */
	int64_t last_ix_pos;      /* position of the last index entry, 0 */
	int64_t last_tix_ts;      /* timestamp of the last time entry */
	int64_t max_ts, max_ts_off;
	int64_t last_pos;         /* position of the last batch, -1 none */
	/* the recovery point */
	int64_t rp_base, rp_pos;
	/* a follower's writeback started up to here (write_behind) */
	int64_t wb_base, wb_pos;
};

static void close_segment(struct mq_log *l)
{
	if (l->segfd >= 0) close(l->segfd);
	if (l->ixfd >= 0) close(l->ixfd);
	if (l->tixfd >= 0) close(l->tixfd);
	l->segfd = l->ixfd = l->tixfd = -1;
}

static int open_file(struct mq_log *l, int64_t base, const char *ext, int flags)
{
	char path[PATH_MAX];
	int fd;

	mq_segment_path(path, sizeof path, l->dir, base, ext);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | flags, 0666);
	if (fd < 0)
		mq_syserr("cannot open segment '%s'", path);
	return fd;
}

int mq_log_open(struct mq_log **lp, const char *dir, const struct mq_config *conf, int flags)
{
	struct mq_log *l = calloc(1, sizeof *l);

	*lp = NULL;
	if (!l)
		return mq_syserr("cannot open partition '%s'", dir);
	if (strlen(dir) >= sizeof l->dir - 32) {
		free(l);
		return mq_error(MQ_EUSAGE, "path too long '%s'", dir);
	}
	strcpy(l->dir, dir);
	l->conf = *conf;
	if (l->conf.segment_bytes > INT32_MAX)
		l->conf.segment_bytes = INT32_MAX;
	l->flags = flags;
	l->lockfd = l->segfd = l->ixfd = l->tixfd = -1;
	l->wb_base = -1;
	/* never created here: a topic deleted meanwhile must not come back */
	l->lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->lockfd < 0) {
		mq_syserr("cannot open partition '%s'", dir);
		free(l);
		return -1;
	}
	*lp = l;
	return 0;
}

static int lock(struct mq_log *l)
{
	return mq_flock_ex(l->lockfd, l->dir);
}

static void unlock(struct mq_log *l)
{
	flock(l->lockfd, LOCK_UN);
}

static int add_index_entry(struct mq_log *l, int64_t last_offset, int64_t pos)
{
	uint8_t e[12];

	mq_put32(e, (uint32_t)(last_offset - l->base));
	mq_put32(e + 4, (uint32_t)pos);
	if (mq_pwrite_all(l->ixfd, e, 8, l->nix * 8) < 0)
		return mq_syserr("cannot write index of '%s'", l->dir);
	l->nix++;
	l->last_ix_pos = pos;
	if (l->max_ts > l->last_tix_ts || (l->ntix == 0 && l->max_ts >= 0)) {
		mq_put64(e, (uint64_t)l->max_ts);
		mq_put32(e + 8, (uint32_t)(l->max_ts_off - l->base));
		if (mq_pwrite_all(l->tixfd, e, 12, l->ntix * 12) < 0)
			return mq_syserr("cannot write time index of '%s'", l->dir);
		l->ntix++;
		l->last_tix_ts = l->max_ts;
	}
	return 0;
}

/* Accounts for a batch at pos of the active segment the way Kafka's
 * LogSegment.append does: max timestamp first, then an index entry when
 * more than index.interval.bytes went by since the last one. */
static int account(struct mq_log *l, const struct mq_batch *b, int64_t pos)
{
	if (pos == 0)
		l->first_ts = b->max_timestamp;
	l->last_pos = pos;
	if (b->max_timestamp > l->max_ts) {
		l->max_ts = b->max_timestamp;
		l->max_ts_off = mq_batch_last_offset(b);
	}
	if (pos > l->last_ix_pos && pos - l->last_ix_pos > l->conf.index_interval_bytes)
		if (add_index_entry(l, mq_batch_last_offset(b), pos) < 0)
			return -1;
	l->next = mq_batch_last_offset(b) + 1;
	return 0;
}

/* Walks the active segment from pos to its end, accounting for each
 * batch.  A batch cut short at the end (a writer killed mid-write) is cut
 * off.  With check set, CRCs and dense offsets are verified too, and a
 * damaged tail is cut off; damage with good batches after it is refused
 * (MQ_ECORRUPT): that is mq-topic verify --repair's to decide, not an
 * append's.  Without check, only whole batches other appenders wrote
 * under the lock are expected: anything else is refused. */
static int scan(struct mq_log *l, int64_t pos, int check)
{
	struct mq_walk w;
	struct mq_batch b;
	struct stat st;
	char why[256] = "";
	int rc;

	if (fstat(l->segfd, &st) < 0)
		return mq_syserr("cannot stat segment in '%s'", l->dir);
	mq_walk_init(&w, l->segfd, pos, st.st_size, check);
	while ((rc = mq_walk_next(&w, &b)) > 0) {
		if (check && (b.base_offset != l->next ||
			      mq_batch_last_offset(&b) - l->base > INT32_MAX)) {
			w.pos -= (int64_t)b.size;
			rc = mq_error(MQ_ECORRUPT, "batch at offset %lld where %lld was expected",
				      (long long)b.base_offset, (long long)l->next);
			break;
		}
		if (account(l, &b, w.pos - (int64_t)b.size) < 0) {
			mq_walk_free(&w);
			return -1;
		}
	}
	mq_walk_free(&w);
	if (rc < 0 && mq_errclass() != MQ_ECORRUPT)
		return -1;
	if (rc < 0)
		snprintf(why, sizeof why, "%s", mq_errmsg());
	l->size = w.pos;
	if (w.pos >= st.st_size)
		return 0;
	if (rc < 0 && (!check || !mq_damaged_tail(l->segfd, w.pos, st.st_size)))
		return mq_error(MQ_ECORRUPT,
				"corrupt batch in '%s/%020lld.log' at byte %lld (%s); "
				"mq-topic verify --repair decides what to keep",
				l->dir, (long long)l->base, (long long)w.pos, why);
	if (ftruncate(l->segfd, (off_t)w.pos) < 0)
		return mq_syserr("cannot truncate segment in '%s'", l->dir);
	/* index entries past the cut */
	if (ftruncate(l->ixfd, (off_t)(l->nix * 8)) < 0 ||
	    ftruncate(l->tixfd, (off_t)(l->ntix * 12)) < 0)
		return mq_syserr("cannot truncate index in '%s'", l->dir);
	return 0;
}

/* Loads the active segment's state.  Index entries at or before
 * want_pos are trusted when the batch at the last of them really ends at
 * the offset it names; the rest of the segment is scanned from there,
 * with full checks when check is set. */
static int load_active(struct mq_log *l, int64_t base, int64_t want_pos, int check)
{
	struct mq_index ix;
	struct stat st;
	uint8_t h[MQ_BATCH_HEADER];
	int damaged;
	size_t keep = 0, tkeep = 0;

	close_segment(l);
	l->base = base;
	if ((l->segfd = open_file(l, base, "log", 0)) < 0 ||
	    (l->ixfd = open_file(l, base, "index", 0)) < 0 ||
	    (l->tixfd = open_file(l, base, "timeindex", 0)) < 0)
		return -1;
	if (fstat(l->segfd, &st) < 0)
		return mq_syserr("cannot stat segment in '%s'", l->dir);
	if (mq_index_load(&ix, l->dir, base, st.st_size, &damaged) < 0)
		return -1;
	while (keep < ix.noff && ix.off[keep].pos <= want_pos)
		keep++;
	if (keep > 0) {
		const struct mq_offset_entry *e = &ix.off[keep - 1];
		if (mq_pread_full(l->segfd, h, sizeof h, e->pos) != (ssize_t)sizeof h ||
		    (int64_t)mq_be64(h) + (int32_t)mq_be32(h + 23) != e->offset)
			keep = 0;     /* the index does not describe this log */
	}
	while (keep && tkeep < ix.ntime && ix.time[tkeep].offset <= ix.off[keep - 1].offset)
		tkeep++;
	l->nix = (int64_t)keep;
	l->ntix = (int64_t)tkeep;
	l->last_ix_pos = keep ? ix.off[keep - 1].pos : 0;
	l->last_tix_ts = tkeep ? ix.time[tkeep - 1].timestamp : -1;
	l->max_ts = l->last_tix_ts;
	l->max_ts_off = tkeep ? ix.time[tkeep - 1].offset : base;
	/* the scan starts at the batch the last kept entry names */
	l->next = keep ? (int64_t)mq_be64(h) : base;
	l->first_ts = -1;
	mq_index_free(&ix);
	if (l->last_ix_pos > 0 && mq_pread_full(l->segfd, h, sizeof h, 0) == (ssize_t)sizeof h)
		l->first_ts = (int64_t)mq_be64(h + 35);
	if (ftruncate(l->ixfd, (off_t)(l->nix * 8)) < 0 ||
	    ftruncate(l->tixfd, (off_t)(l->ntix * 12)) < 0)
		return mq_syserr("cannot truncate index in '%s'", l->dir);
	l->size = l->last_ix_pos;
	l->last_pos = -1;
	if (scan(l, l->last_ix_pos, check) < 0)
		return -1;
	/* the batch the last entry names was cut: trust one entry less */
	if (l->nix > 0 && l->size <= l->last_ix_pos)
		return load_active(l, base, l->size - 1, check);
	return 0;
}

static int read_ckpt(struct mq_log *l, const char *name, int64_t *v)
{
	char path[PATH_MAX];

	mq_pathf(path, sizeof path, "%s/%s", l->dir, name);
	return mq_checkpoint_read(path, v);
}

/* A checkpoint is synced only when the log's data is: a recovery point
 * must never be durable ahead of what it vouches for. */
static int write_ckpt(struct mq_log *l, const char *name, int64_t v)
{
	char path[PATH_MAX];

	mq_pathf(path, sizeof path, "%s/%s", l->dir, name);
	return mq_checkpoint_write(path, v, l->flags & MQ_LOG_FSYNC);
}

static int create_segment(struct mq_log *l, int64_t base)
{
	int fd = open_file(l, base, "log", O_EXCL);

	if (fd < 0 && errno != EEXIST)
		return -1;
	if (fd >= 0)
		close(fd);
	return mq_fsync_dir(l->dir);
}

static int checkpoint_recovery(struct mq_log *l)
{
	if (write_ckpt(l, MQ_CKPT_RECOVERY, l->next) < 0)
		return -1;
	l->rp_base = l->base;
	l->rp_pos = l->size;
	return 0;
}

/* Recovery, under the lock, once per process (see the top).  Closed
 * segments before the one holding the recovery point are trusted (their
 * indexes are healed if missing or damaged); from there on every batch
 * is checked, and the log is cut at the first bad one. */
static int recover(struct mq_log *l)
{
	struct mq_segment *segs;
	size_t n, i, rpseg = 0;
	int64_t rp = -1, ls = 0, next = -1, cut, want;

	if (mq_segments_list(l->dir, &segs, &n) < 0)
		return -1;
	read_ckpt(l, MQ_CKPT_LOG_START, &ls);
	if (n == 0) {
		free(segs);
		if (create_segment(l, ls) < 0)
			return -1;
		l->recovered = 1;
		return load_active(l, ls, 0, 1);
	}
	if (read_ckpt(l, MQ_CKPT_RECOVERY, &rp) < 0)
		rp = -1;
	for (rpseg = n; rpseg-- > 1;)
		if (segs[rpseg].base <= rp)
			break;
	for (i = 0; i + 1 < n; i++) {
		if (i < rpseg) {
			if (mq_index_heal(l->dir, &segs[i], l->conf.index_interval_bytes) < 0)
				goto fail;
			continue;
		}
		want = 0;
		if (i == rpseg && rp >= segs[i].base) {
			struct mq_index ix;
			int damaged;
			if (mq_index_load(&ix, l->dir, segs[i].base, segs[i].size, &damaged) < 0)
				goto fail;
			want = damaged ? 0 : mq_index_lookup(&ix, rp);
			mq_index_free(&ix);
			next = -1;
		}
		if (mq_segment_validate(l->dir, &segs[i], want, &next, &cut) < 0)
			goto fail;
		if (cut < 0 && next == segs[i + 1].base) {
			if (mq_index_heal(l->dir, &segs[i], l->conf.index_interval_bytes) < 0)
				goto fail;
			continue;
		}
		/* closed segments were synced at roll: damage there is not a
		 * crash's, and good data follows it */
		char file[PATH_MAX];
		mq_segment_path(file, sizeof file, l->dir, segs[i].base, "log");
		if (cut >= 0)
			mq_error(MQ_ECORRUPT, "corrupt batch in '%s' at byte %lld; "
				 "mq-topic verify --repair decides what to keep", file, (long long)cut);
		else
			mq_error(MQ_ECORRUPT, "'%s' ends at offset %lld but the next segment starts at %lld; "
				 "mq-topic verify --repair decides what to keep", file, (long long)next,
				 (long long)segs[i + 1].base);
		goto fail;
	}
	want = 0;
	if (rpseg == n - 1 && rp >= segs[n - 1].base) {
		struct mq_index ix;
		int damaged;
		if (mq_index_load(&ix, l->dir, segs[n - 1].base, segs[n - 1].size, &damaged) < 0)
			goto fail;
		want = mq_index_lookup(&ix, rp);
		mq_index_free(&ix);
	}
	if (load_active(l, segs[n - 1].base, want, 1) < 0)
		goto fail;
	l->recovered = 1;
	free(segs);
	/* never leave the recovery point above a cut */
	if (rp > l->next && checkpoint_recovery(l) < 0)
		return -1;
	l->rp_base = l->base;
	l->rp_pos = l->size;
	return 0;
fail:
	free(segs);
	return -1;
}

/* Under the lock: catches up with other appenders (see the top). */
/* Loads the newest segment, as after a roll by another appender. */
static int load_newest(struct mq_log *l)
{
	struct mq_segment *segs;
	size_t n;
	int64_t newest;

	if (mq_segments_list(l->dir, &segs, &n) < 0)
		return -1;
	if (n == 0) {
		free(segs);
		return mq_error(MQ_ENOTFOUND, "partition '%s' lost its segments", l->dir);
	}
	newest = segs[n - 1].base;
	free(segs);
	return load_active(l, newest, INT64_MAX, 0);
}

/* Does the log still end where this process last saw it end?  The last
 * batch it accounted must be there, ending at the size it knows. */
static int view_holds(struct mq_log *l)
{
	uint8_t h[MQ_BATCH_HEADER];

	if (l->last_pos < 0)
		return l->size == 0;
	if (mq_pread_full(l->segfd, h, sizeof h, l->last_pos) != (ssize_t)sizeof h)
		return 0;
	return (int64_t)mq_be64(h) + (int32_t)mq_be32(h + 23) + 1 == l->next &&
	       l->last_pos + (int32_t)mq_be32(h + 8) + MQ_BATCH_OVERHEAD == l->size;
}

static int resync(struct mq_log *l)
{
	struct stat st;
	char name[32];

	if (fstat(l->segfd, &st) < 0)
		return mq_syserr("cannot stat segment in '%s'", l->dir);
	/* deleted (retention, repair), cut, or rewritten under us */
	if (st.st_nlink == 0 || st.st_size < l->size || !view_holds(l))
		return load_newest(l);
	if (st.st_size > l->size) {
		/* entries another appender added */
		struct stat ist;
		if (fstat(l->ixfd, &ist) < 0 || fstat(l->tixfd, &st) < 0)
			return mq_syserr("cannot stat index in '%s'", l->dir);
		if (ist.st_size / 8 > l->nix) {
			uint8_t e[8];
			l->nix = ist.st_size / 8;
			if (mq_pread_full(l->ixfd, e, 8, (l->nix - 1) * 8) != 8)
				return mq_syserr("cannot read index in '%s'", l->dir);
			l->last_ix_pos = (int32_t)mq_be32(e + 4);
		}
		if (st.st_size / 12 > l->ntix) {
			uint8_t e[12];
			l->ntix = st.st_size / 12;
			if (mq_pread_full(l->tixfd, e, 12, (l->ntix - 1) * 12) != 12)
				return mq_syserr("cannot read index in '%s'", l->dir);
			l->last_tix_ts = (int64_t)mq_be64(e);
			if (l->last_tix_ts > l->max_ts) {
				l->max_ts = l->last_tix_ts;
				l->max_ts_off = l->base + (int32_t)mq_be32(e + 8);
			}
		}
		if (scan(l, l->size, 0) < 0)
			return -1;
	}
	mq_pathf(name, sizeof name, "%020lld.log", (long long)l->next);
	if (l->next != l->base && faccessat(l->lockfd, name, F_OK, 0) == 0)
		return load_newest(l);    /* others rolled, maybe more than once */
	return 0;
}

static int roll(struct mq_log *l)
{
	size_t removed;

	/* Kafka closes a segment with a last time index entry */
	if (l->max_ts > l->last_tix_ts) {
		uint8_t e[12];
		mq_put64(e, (uint64_t)l->max_ts);
		mq_put32(e + 8, (uint32_t)(l->max_ts_off - l->base));
		if (mq_pwrite_all(l->tixfd, e, 12, l->ntix * 12) < 0)
			return mq_syserr("cannot write time index of '%s'", l->dir);
	}
	if (fdatasync(l->segfd) < 0) {
		l->broken = 1;
		return mq_syserr("cannot sync segment in '%s'", l->dir);
	}
	if (create_segment(l, l->next) < 0 || load_active(l, l->next, 0, 0) < 0)
		return -1;
	if (checkpoint_recovery(l) < 0)
		return -1;
	return mq_retention_locked(l->dir, &l->conf, mq_now_ms(), &removed);
}

static int need_roll(struct mq_log *l, size_t len, int64_t next_ts, int64_t count)
{
	if (l->size == 0 || (l->flags & MQ_LOG_FOLLOWER))
		return 0;
	if (l->size + (int64_t)len > l->conf.segment_bytes)
		return 1;
	if (l->first_ts >= 0 && next_ts - l->first_ts > l->conf.segment_ms)
		return 1;
	return l->next + count - l->base > INT32_MAX;
}

/* A follower copies as fast as the link goes and syncs each segment it
 * closes (roll): starting the writeback as it goes leaves that sync
 * little to wait for, so the copy does not stall at every roll. */
static void write_behind(struct mq_log *l)
{
	if (!(l->flags & MQ_LOG_FOLLOWER) || (l->flags & MQ_LOG_FSYNC))
		return;
	if (l->wb_base != l->base) {
		l->wb_base = l->base;
		l->wb_pos = 0;
	}
	if (l->size - l->wb_pos < MQ_WRITE_BEHIND)
		return;
	/* advice: a failure shows at the sync */
	sync_file_range(l->segfd, l->wb_pos, l->size - l->wb_pos, SYNC_FILE_RANGE_WRITE);
	l->wb_pos = l->size;
}

static int append(struct mq_log *l, uint8_t *buf, size_t len, int keep_offsets, int64_t *first)
{
	struct mq_batch b;
	int64_t count = 0, maxts = -1, at;
	size_t off;
	int rc = -1;

	if (l->broken)
		return mq_error(MQ_EIO, "partition '%s' unusable after an earlier failure", l->dir);
	for (off = 0; off < len; off += b.size) {
		if (mq_batch_parse(buf + off, len - off, &b) != MQ_BATCH_OK)
			return mq_error(MQ_ECORRUPT, "invalid batch to append at byte %zu", off);
		count += b.last_offset_delta + 1;
		if (b.max_timestamp > maxts)
			maxts = b.max_timestamp;
	}
	if (lock(l) < 0)
		return -1;
	if (!l->recovered ? recover(l) < 0 : resync(l) < 0)
		goto out;
	if (need_roll(l, len, maxts, count) && roll(l) < 0)
		goto out;
	if (keep_offsets && (int64_t)mq_be64(buf) != l->next) {
		mq_error(MQ_ECORRUPT, "batch at offset %lld does not follow the log end %lld",
			 (long long)mq_be64(buf), (long long)l->next);
		goto out;
	}
	*first = l->next;
	at = l->next;
	for (off = 0; off < len; off += b.size) {
		mq_batch_parse(buf + off, len - off, &b);
		if (!keep_offsets) {
			mq_batch_set_offset(buf + off, at, 0);
			b.base_offset = at;
		} else if (b.base_offset != at) {
			mq_error(MQ_ECORRUPT, "batches to append are not contiguous at offset %lld",
				 (long long)at);
			goto out;
		}
		at += b.last_offset_delta + 1;
	}
	if (mq_pwrite_all(l->segfd, buf, len, l->size) < 0) {
		mq_syserr("cannot append to '%s'", l->dir);
		/* leave no partial batch behind */
		if (ftruncate(l->segfd, (off_t)l->size) < 0)
			l->broken = 1;
		goto out;
	}
	if ((l->flags & MQ_LOG_FSYNC) && fdatasync(l->segfd) < 0) {
		/* never retried: the page cache may have dropped the data */
		l->broken = 1;
		mq_syserr("cannot sync '%s'", l->dir);
		goto out;
	}
	for (off = 0; off < len; off += b.size) {
		mq_batch_parse(buf + off, len - off, &b);
		if (account(l, &b, l->size + (int64_t)off) < 0)
			goto out;
	}
	l->size += (int64_t)len;
	write_behind(l);
	if ((l->flags & MQ_LOG_FSYNC) &&
	    (l->base != l->rp_base || l->size - l->rp_pos > MQ_RP_INTERVAL))
		checkpoint_recovery(l);
	rc = 0;
out:
	unlock(l);
	return rc;
}

int mq_log_append(struct mq_log *l, uint8_t *buf, size_t len, int64_t *first)
{
	return append(l, buf, len, 0, first);
}

int mq_log_append_raw(struct mq_log *l, const uint8_t *buf, size_t len)
{
	int64_t first;

	return append(l, (uint8_t *)buf, len, 1, &first);
}

int mq_log_roll_at(struct mq_log *l, int64_t base)
{
	int rc = -1;

	if (l->broken)
		return mq_error(MQ_EIO, "partition '%s' unusable after an earlier failure", l->dir);
	if (lock(l) < 0)
		return -1;
	if (!l->recovered ? recover(l) < 0 : resync(l) < 0)
		goto out;
	if (base == l->base) {
		rc = 0;
	} else if (base != l->next || base < l->base) {
		mq_error(MQ_ECORRUPT, "the leader's segment starts at offset %lld, the log in '%s' ends at %lld",
			 (long long)base, l->dir, (long long)l->next);
	} else {
		rc = roll(l);
	}
out:
	unlock(l);
	return rc;
}

int64_t mq_log_end_offset(struct mq_log *l)
{
	if (!l->recovered) {
		if (lock(l) < 0)
			return -1;
		int rc = recover(l);
		unlock(l);
		if (rc < 0)
			return -1;
	}
	return l->next;
}

int mq_log_close(struct mq_log *l)
{
	int rc = 0;

	if (!l)
		return 0;
	if (l->recovered && !l->broken && lock(l) == 0) {
		if (resync(l) == 0 &&
		    (l->base != l->rp_base || l->size - l->rp_pos > (1 << 20)))
			rc = checkpoint_recovery(l);
		unlock(l);
	}
	close_segment(l);
	close(l->lockfd);
	free(l);
	return rc;
}
