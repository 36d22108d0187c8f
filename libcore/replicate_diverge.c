/*
 * replicate_diverge.c: does a follower hold the leader's history?
 *
 * Before the first append the follower compares its last batch with
 * the leader's batch at that offset (offset, CRC, leader epoch).  If
 * they differ, or the follower holds more than the leader, the histories
 * diverged: that is an error (MQ_ECORRUPT) unless truncate_diverged, in
 * which case the log is cut to the longest common prefix, found batch by
 * batch.  A follower whose end lies before the leader's log start
 * (retention) stops with MQ_ENOTFOUND unless reset, which empties the
 * partition and starts it at the leader's log start.
 */
#include <stdio.h>

#include "replicate_priv.h"

/* The local batch holding offset: its header into *b (data not kept). */
static int local_batch(const char *dir, int64_t offset, struct mq_batch *b)
{
	struct mq_reader *rd;
	int rc;

	if (mq_reader_open(&rd, dir) < 0)
		return -1;
	rc = mq_reader_seek(rd, offset) < 0 ? -1 : mq_reader_next(rd, b);
	mq_reader_close(rd);
	if (rc == 0)
		return mq_error(MQ_ECORRUPT, "no batch at offset %lld in '%s'", (long long)offset, dir);
	return rc < 0 ? -1 : 0;
}

static int same_batch(const struct mq_batch *a, const struct mq_batch *b)
{
	return a->base_offset == b->base_offset && a->crc == b->crc &&
	       a->leader_epoch == b->leader_epoch && a->last_offset_delta == b->last_offset_delta;
}

/* The end of the longest common prefix of the local log and the
 * source's, from offset from (where both hold data). */
static int common_prefix(struct rep *r, struct part *pt, int64_t from, int64_t *common)
{
	struct mq_reader *rd;
	struct mq_batch lb, sb;
	struct chunk *c = &r->ck[0];
	int64_t at = from;
	int rc = 0;

	if (mq_reader_open(&rd, pt->dir) < 0)
		return -1;
	mq_reader_set_crc_check(rd, 0);
	if (mq_reader_seek(rd, from) < 0) {
		mq_reader_close(rd);
		return -1;
	}
	while ((rc = mq_reader_next(rd, &lb)) > 0) {
		if (mq_rep_fetch(r, pt, lb.base_offset, -1, 1, 0, c) < 0) {
			rc = -1;
			break;
		}
		if (c->len == 0 || mq_batch_parse(c->data, c->len, &sb) != MQ_BATCH_OK ||
		    !same_batch(&lb, &sb))
			break;
		at = mq_batch_last_offset(&lb) + 1;
	}
	mq_reader_close(rd);
	*common = at;
	return rc < 0 ? -1 : 0;
}

int mq_rep_reconcile(struct rep *r, struct part *pt)
{
	struct mq_partition_info pi, si;
	struct mq_batch mine, theirs;
	struct chunk *c = &r->ck[0];
	int64_t start, end;

	if (mq_partition_info(pt->dir, &pi) < 0)
		return -1;
	pt->end = pi.log_end;
	if (r->remote ? mq_client_partition_info(pt->src, pt->p, &si) < 0 :
			mq_partition_info(pt->sdir, &si) < 0)
		return -1;
	start = si.log_start;
	end = si.log_end;
	if (pi.log_end < start || (pi.log_end == 0 && start > 0)) {
		/* an empty follower simply starts where the leader does */
		if (!r->o->reset && pi.log_end > pi.log_start)
			return mq_error(MQ_ENOTFOUND,
					"'%s' partition %d: the leader's log starts at %lld, past this follower's end %lld "
					"(retention); --reset starts over from the leader's log start",
					pt->src->name, pt->p, (long long)start, (long long)pi.log_end);
		if (mq_partition_reset(pt->dir, start) < 0)
			return -1;
		pt->end = start;
		return 0;
	}
	if (pi.log_end == pi.log_start)
		return 0;
	int diverged = 0;
	char why[256] = "";
	if (pi.log_end > end) {
		diverged = 1;
		snprintf(why, sizeof why, "this follower's log ends at %lld, past the leader's end %lld",
			 (long long)pi.log_end, (long long)end);
	} else if (pi.log_end - 1 >= start) {
		if (local_batch(pt->dir, pi.log_end - 1, &mine) < 0)
			return -1;
		if (mq_rep_fetch(r, pt, mine.base_offset, -1, 1, 0, c) < 0)
			return -1;
		if (c->len == 0 || mq_batch_parse(c->data, c->len, &theirs) != MQ_BATCH_OK) {
			diverged = 1;
			snprintf(why, sizeof why, "the leader has no batch at offset %lld",
				 (long long)mine.base_offset);
		} else if (!same_batch(&mine, &theirs)) {
			diverged = 1;
			snprintf(why, sizeof why,
				 "the batches at offset %lld differ (here: offsets %lld-%lld, CRC %08x, epoch %d; "
				 "leader: offsets %lld-%lld, CRC %08x, epoch %d)", (long long)mine.base_offset,
				 (long long)mine.base_offset, (long long)mq_batch_last_offset(&mine), mine.crc,
				 mine.leader_epoch, (long long)theirs.base_offset,
				 (long long)mq_batch_last_offset(&theirs), theirs.crc, theirs.leader_epoch);
		}
	}
	if (!diverged)
		return 0;
	if (!r->o->truncate_diverged)
		return mq_error(MQ_ECORRUPT,
				"'%s' partition %d diverged from the leader: %s; refusing to extend a different "
				"history (--truncate-diverged cuts this log back to the common prefix)",
				pt->src->name, pt->p, why);
	int64_t common;
	if (common_prefix(r, pt, pi.log_start > start ? pi.log_start : start, &common) < 0)
		return -1;
	if (r->o->note) {
		char msg[512];
		snprintf(msg, sizeof msg, "'%s' partition %d diverged (%s): truncated from %lld to %lld",
			 pt->src->name, pt->p, why, (long long)pi.log_end, (long long)common);
		r->o->note(r->o->arg, msg);
	}
	mq_log_close(pt->log);
	pt->log = NULL;
	if (mq_partition_truncate(pt->dir, common, pt->dst->conf.index_interval_bytes) < 0)
		return -1;
	pt->end = common;
	return 0;
}
