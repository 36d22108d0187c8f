/*
 * consumer.c: reading several partitions at once, alone or as a member of
 * a consumer group, for mq-consume.
 *
 * Each partition read is a cursor: a lock-free reader, the next offset to
 * hand out, the offset delivered so far (what the caller has written out
 * and flushed), and where to stop.  Batches are handed out round-robin
 * across cursors.  Waiting for data is an inotify watch on every
 * partition directory: an append modifies the segment, a roll creates
 * one, so a reader wakes within the kernel's notification latency and
 * spends no CPU while idle.
 *
 * In a group, cursors come and go with ownership (group.c): a partition
 * being revoked gets its delivered offset committed first.  Commits are
 * crash-safe and happen after delivery (at-least-once), at most every
 * MQ_COMMIT_INTERVAL_MS per partition and always when a partition is
 * revoked or the consumer closes.
 *
 * A remote data directory (an mq-serve's address) changes only where
 * the bytes come from: cursors read through fetch requests, waiting is
 * a long-polling request that returns when any cursor's partition has
 * more, and the group is the server's (group.c, remote members).  A
 * remote member commits before each heartbeat, so that a partition the
 * heartbeat moves away has its delivered offset committed first.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

#define MQ_COMMIT_INTERVAL_MS 100
#define MQ_REMOTE_WAIT_MS 10000

struct cursor {
	struct mq_tp tp;
	struct mq_topic *t;       /* c->topics[...], fixed once opened */
	char dir[PATH_MAX];
	struct mq_reader *r;
	int64_t first;            /* records below this are skipped */
	int64_t delivered;        /* next offset after what was delivered */
	int64_t committed;        /* -1: nothing committed by us */
	int64_t committed_at;
	int64_t stop;             /* -e: the end as it was; -1 none */
	int64_t hw;               /* read below it (min.insync.replicas > 0) */
	int done;
	int wd;
};

struct mq_consumer {
	struct mq_consumer_opts o;
	struct mq_topic *topics;
	size_t ntopics;
	struct mq_tp *all;
	size_t nall;
	struct cursor *cur;
	size_t ncur;
	size_t next;              /* round-robin position */
	struct mq_group *group;
	int ino;
	int assigned_once_n;
	struct mq_tp *assigned_once;
	int64_t opened;
	int finished;             /* a partition was finished by the caller */
	int remote;               /* datadir is an address */
	int unwatched;            /* an inotify watch could not be added */
};

static struct mq_topic *topic_of(struct mq_consumer *c, const char *name)
{
	for (size_t i = 0; i < c->ntopics; i++)
		if (!strcmp(c->topics[i].name, name))
			return &c->topics[i];
	return NULL;
}

/* The offset to start a partition at, per the options. */
static int start_offset(struct mq_consumer *c, struct cursor *cu, int first_time, int64_t *out)
{
	struct mq_partition_info pi;
	const struct mq_offset_spec *s = &c->o.start;
	int64_t off = 0, stored;
	int kind = s->kind, rc;

	struct mq_topic *t = cu->t;
	if (mq_topic_partition_info(t, cu->tp.partition, &pi) < 0)
		return -1;
	if (!c->remote && mq_partition_hw(cu->dir, &t->conf, &pi.high_watermark) < 0)
		return -1;
	if (c->o.group && (kind == MQ_OFFSET_DEFAULT || kind == MQ_OFFSET_STORED || !first_time)) {
		rc = mq_group_committed(c->o.datadir, c->o.group, cu->tp.topic, cu->tp.partition, &stored);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			off = stored;
			kind = -1;
		} else {
			kind = MQ_OFFSET_BEGINNING;
		}
	} else if (kind == MQ_OFFSET_DEFAULT || kind == MQ_OFFSET_STORED) {
		if (kind == MQ_OFFSET_STORED)
			return mq_error(MQ_EUSAGE, "offset 'stored' needs a group (-g)");
		kind = MQ_OFFSET_BEGINNING;
	}
	switch (kind) {
	case MQ_OFFSET_BEGINNING: off = pi.log_start; break;
	case MQ_OFFSET_END: off = pi.log_end; break;
	case MQ_OFFSET_ABSOLUTE: off = s->value; break;
	case MQ_OFFSET_FROM_END:
		off = pi.log_end - s->value;
		if (off < pi.log_start)
			off = pi.log_start;
		break;
	case MQ_OFFSET_TIME:
		if (mq_reader_seek_time(cu->r, s->value, &off) < 0)
			return -1;
		break;
	default: break;
	}
	if (off < pi.log_start || off > pi.log_end) {
		if (c->o.reset == MQ_RESET_EARLIEST)
			off = pi.log_start;
		else if (c->o.reset == MQ_RESET_LATEST)
			off = pi.log_end;
		else
			return mq_error(MQ_ENOTFOUND,
					"offset %lld out of range for '%s' partition %d (log holds %lld to %lld)%s",
					(long long)off, cu->tp.topic, cu->tp.partition,
					(long long)pi.log_start, (long long)pi.log_end,
					off < pi.log_start ? "; use --offset-reset earliest to start at the log start" : "");
	}
	*out = off;
	if (c->o.exit_at_end)
		cu->stop = pi.high_watermark;
	return 0;
}

static int add_cursor(struct mq_consumer *c, const struct mq_tp *tp)
{
	struct mq_topic *t = topic_of(c, tp->topic);
	struct cursor *cu;
	int first_time = 1;

	for (int i = 0; i < c->assigned_once_n; i++)
		if (!strcmp(c->assigned_once[i].topic, tp->topic) &&
		    c->assigned_once[i].partition == tp->partition)
			first_time = 0;
	struct cursor *nc = realloc(c->cur, (c->ncur + 1) * sizeof *c->cur);
	if (!nc)
		return mq_syserr("cannot open partition");
	c->cur = nc;
	cu = &c->cur[c->ncur];
	memset(cu, 0, sizeof *cu);
	cu->tp = *tp;
	cu->t = t;
	cu->stop = -1;
	cu->committed = -1;
	cu->wd = -1;
	mq_topic_partition_dir(t, tp->partition, cu->dir, sizeof cu->dir);
	if (c->remote ? mq_reader_open_remote(&cu->r, t, tp->partition) < 0 :
			mq_reader_open(&cu->r, cu->dir) < 0)
		return -1;
	mq_reader_set_crc_check(cu->r, c->o.check_crc);
	int64_t off = 0;
	if (start_offset(c, cu, first_time, &off) < 0 || mq_reader_seek(cu->r, off) < 0) {
		mq_reader_close(cu->r);
		return -1;
	}
	cu->first = cu->delivered = off;
	if (cu->stop >= 0 && off >= cu->stop)
		cu->done = 1;
	if (c->ino >= 0 && !c->remote)
		cu->wd = inotify_add_watch(c->ino, cu->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
	if (cu->wd < 0 && !c->remote)
		c->unwatched = 1;
	c->ncur++;
	if (first_time) {
		struct mq_tp *na = realloc(c->assigned_once, (size_t)(c->assigned_once_n + 1) * sizeof *na);
		if (na) {
			c->assigned_once = na;
			c->assigned_once[c->assigned_once_n++] = *tp;
		}
	}
	return 0;
}

static struct cursor *find(struct mq_consumer *c, const struct mq_tp *tp)
{
	for (size_t i = 0; i < c->ncur; i++)
		if (c->cur[i].tp.partition == tp->partition && !strcmp(c->cur[i].tp.topic, tp->topic))
			return &c->cur[i];
	return NULL;
}

/* Commits the delivered offsets of cursors (all when cu is NULL) whose
 * last commit is older than the interval, or all of them with force. */
static int commit(struct mq_consumer *c, struct cursor *only, int force)
{
	struct mq_commit_req *r;
	size_t n = 0;
	int64_t now = mq_now_ms();
	int rc;

	if (!c->o.group || !c->o.commit || c->ncur == 0)
		return 0;
	if (!(r = calloc(c->ncur, sizeof *r)))
		return mq_syserr("cannot commit");
	for (size_t i = 0; i < c->ncur; i++) {
		struct cursor *cu = &c->cur[i];
		int64_t end;
		if ((only && cu != only) || cu->delivered == cu->committed ||
		    (!force && now - cu->committed_at < MQ_COMMIT_INTERVAL_MS))
			continue;
		if ((end = mq_reader_log_end(cu->r)) < 0) {
			free(r);
			return -1;
		}
		r[n++] = (struct mq_commit_req){ cu->tp.topic, cu->tp.partition, cu->delivered, end };
	}
	rc = mq_group_commit_many(c->o.datadir, c->o.group, r, n);
	free(r);
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < c->ncur; i++) {
		struct cursor *cu = &c->cur[i];
		if ((only && cu != only) || cu->delivered == cu->committed ||
		    (!force && now - cu->committed_at < MQ_COMMIT_INTERVAL_MS))
			continue;
		cu->committed = cu->delivered;
		cu->committed_at = now;
	}
	return 0;
}

static int on_revoke(void *arg, const struct mq_tp *tp)
{
	struct mq_consumer *c = arg;
	struct cursor *cu = find(c, tp);

	if (!cu)
		return 0;
	if (commit(c, cu, 1) < 0)
		return -1;
	if (cu->wd >= 0)
		inotify_rm_watch(c->ino, cu->wd);
	mq_reader_close(cu->r);
	*cu = c->cur[--c->ncur];
	return 0;
}

static int on_assign(void *arg, const struct mq_tp *tp)
{
	return add_cursor(arg, tp);
}

int mq_consumer_open(struct mq_consumer **cp, const struct mq_consumer_opts *o)
{
	struct mq_consumer *c = calloc(1, sizeof *c);

	if (!c)
		return mq_syserr("cannot open consumer");
	c->o = *o;
	c->opened = mq_now_ms();
	c->remote = mq_remote_is(o->datadir);
	c->ino = c->remote ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	c->topics = calloc(o->ntopics, sizeof *c->topics);
	if (!c->topics)
		goto fail_sys;
	for (size_t i = 0; i < o->ntopics; i++) {
		if (mq_topic_open(o->datadir, o->topics[i], &c->topics[i]) < 0)
			goto fail;
		c->ntopics++;
		if (o->partition >= c->topics[i].conf.partitions) {
			mq_error(MQ_ENOTFOUND, "partition %d not found: topic '%s' has %d", o->partition,
				 o->topics[i], c->topics[i].conf.partitions);
			goto fail;
		}
		for (int32_t p = 0; p < c->topics[i].conf.partitions; p++) {
			if (o->partition >= 0 && p != o->partition)
				continue;
			struct mq_tp *na = realloc(c->all, (c->nall + 1) * sizeof *na);
			if (!na)
				goto fail_sys;
			c->all = na;
			c->all[c->nall++] = (struct mq_tp){ c->topics[i].name, p };
		}
	}
	if (o->group) {
		if (mq_group_open(&c->group, o->datadir, o->group) < 0 ||
		    mq_group_subscribe(c->group, c->all, c->nall) < 0 ||
		    mq_group_rebalance(c->group, 1, on_revoke, on_assign, c) < 0)
			goto fail;
	} else {
		for (size_t i = 0; i < c->nall; i++)
			if (add_cursor(c, &c->all[i]) < 0)
				goto fail;
	}
	*cp = c;
	return 0;
fail_sys:
	mq_syserr("cannot open consumer");
fail:
	mq_consumer_close(c);
	return -1;
}

int mq_consumer_next(struct mq_consumer *c, struct mq_tp *tp, struct mq_batch *b, int64_t *first)
{
	size_t alive = 0;

	if (c->group && c->remote && mq_group_due(c->group) && commit(c, NULL, 1) < 0)
		return -1;
	if (c->group && mq_group_rebalance(c->group, 0, on_revoke, on_assign, c) < 0)
		return -1;
	for (size_t k = 0; k < c->ncur; k++) {
		size_t i = (c->next + k) % c->ncur;
		struct cursor *cu = &c->cur[i];
		if (cu->done)
			continue;
		alive++;
		/* only what enough followers have (the server sees to it remotely) */
		int64_t pos = mq_reader_position(cu->r);
		if (!c->remote && cu->t->conf.min_insync_replicas > 0 && pos >= cu->hw) {
			if (mq_partition_hw(cu->dir, &cu->t->conf, &cu->hw) < 0)
				return -1;
			if (pos >= cu->hw) {
				if (cu->stop >= 0 && pos >= cu->stop) {
					cu->done = 1;
					alive--;
				}
				continue;
			}
		}
		int rc = mq_reader_next(cu->r, b);
		if (rc < 0) {
			if (mq_errclass() != MQ_ECORRUPT || !c->o.skip_corrupt)
				return -1;
			if (c->o.on_corrupt)
				c->o.on_corrupt(c->o.arg, mq_errmsg());
			if (mq_reader_skip_corrupt(cu->r) < 0)
				return -1;
			k--;          /* read on from where it skipped to */
			alive--;
			continue;
		}
		if (rc == 0) {
			if (cu->stop >= 0 && mq_reader_position(cu->r) >= cu->stop) {
				cu->done = 1;
				alive--;
			}
			continue;
		}
		c->next = i + 1;
		*tp = cu->tp;
		*first = cu->first;
		if (cu->stop >= 0 && mq_batch_last_offset(b) + 1 >= cu->stop)
			cu->done = 1;
		return 1;
	}
	/* nothing now: done when every partition reached its stop (-e) or
	 * was finished (--until); a member given no partition for a few
	 * rebalance rounds has nothing to do */
	if (alive == 0 && c->ncur > 0 && (c->o.exit_at_end || c->finished))
		return 2;
	if (c->o.exit_at_end && c->group && c->ncur == 0 &&
	    mq_now_ms() - c->opened > 4 * MQ_GROUP_POLL_MS)
		return 2;
	return 0;
}

void mq_consumer_delivered(struct mq_consumer *c, const struct mq_tp *tp, int64_t next)
{
	struct cursor *cu = find(c, tp);

	if (cu && next > cu->delivered)
		cu->delivered = next;
}

void mq_consumer_finish(struct mq_consumer *c, const struct mq_tp *tp)
{
	struct cursor *cu = find(c, tp);

	if (cu) {
		cu->done = 1;
		c->finished = 1;
	}
}

int mq_consumer_commit(struct mq_consumer *c, int force)
{
	return commit(c, NULL, force);
}

/* Long-polls the server for any cursor's partition to move. */
static int remote_wait(struct mq_consumer *c, int timeout_ms)
{
	struct mq_tp *tps = calloc(c->ncur + 1, sizeof *tps);
	int64_t *offs = calloc(c->ncur + 1, sizeof *offs);
	size_t n = 0;
	int rc = 0;

	if (!tps || !offs) {
		free(tps);
		free(offs);
		return mq_syserr("cannot wait for data");
	}
	if (c->group && (timeout_ms < 0 || timeout_ms > MQ_GROUP_POLL_MS))
		timeout_ms = MQ_GROUP_POLL_MS;
	if (timeout_ms < 0 || timeout_ms > MQ_REMOTE_WAIT_MS)
		timeout_ms = MQ_REMOTE_WAIT_MS;
	for (size_t i = 0; i < c->ncur; i++)
		if (!c->cur[i].done) {
			tps[n] = c->cur[i].tp;
			offs[n++] = mq_reader_position(c->cur[i].r);
		}
	if (n > 0) {
		rc = mq_client_wait(c->topics[0].remote, tps, offs, n, timeout_ms, NULL);
		if (rc < 0 && mq_remote_last_status() == 0 && c->o.stop && *c->o.stop)
			rc = 0;   /* a signal ended the wait */
	} else {
		struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	free(tps);
	free(offs);
	return rc;
}

int mq_consumer_wait(struct mq_consumer *c, int timeout_ms)
{
	struct pollfd pf = { .fd = c->ino, .events = POLLIN };
	char buf[4096];

	if (c->remote)
		return remote_wait(c, timeout_ms);
	/* without inotify (or a watch), look again now and then */
	if ((c->group || c->ino < 0 || c->unwatched) &&
	    (timeout_ms < 0 || timeout_ms > MQ_GROUP_POLL_MS))
		timeout_ms = MQ_GROUP_POLL_MS;
	int r = poll(&pf, c->ino >= 0 ? 1 : 0, timeout_ms);
	if (r < 0 && errno != EINTR)
		return mq_syserr("cannot wait for data");
	while (c->ino >= 0 && read(c->ino, buf, sizeof buf) > 0)
		;
	return 0;
}

size_t mq_consumer_partitions(const struct mq_consumer *c)
{
	return c->ncur;
}

int mq_consumer_close(struct mq_consumer *c)
{
	int rc = 0;

	if (!c)
		return 0;
	if (mq_consumer_commit(c, 1) < 0)
		rc = -1;
	for (size_t i = 0; i < c->ncur; i++)
		mq_reader_close(c->cur[i].r);
	mq_group_close(c->group);
	for (size_t i = 0; i < c->ntopics; i++)
		mq_topic_close(&c->topics[i]);
	if (c->ino >= 0)
		close(c->ino);
	free(c->topics);
	free(c->all);
	free(c->cur);
	free(c->assigned_once);
	free(c);
	return rc;
}

int mq_offset_spec_parse(const char *s, struct mq_offset_spec *spec)
{
	if (!strcmp(s, "beginning") || !strcmp(s, "earliest")) {
		spec->kind = MQ_OFFSET_BEGINNING;
	} else if (!strcmp(s, "end") || !strcmp(s, "latest")) {
		spec->kind = MQ_OFFSET_END;
	} else if (!strcmp(s, "stored")) {
		spec->kind = MQ_OFFSET_STORED;
	} else if (s[0] == '@') {
		spec->kind = MQ_OFFSET_TIME;
		if (mq_parse_time(s + 1, &spec->value) < 0)
			return mq_error(MQ_EUSAGE, "invalid offset '%s': bad time after '@'", s);
	} else if (s[0] == '-') {
		spec->kind = MQ_OFFSET_FROM_END;
		if (mq_parse_int(s + 1, 0, INT64_MAX, &spec->value) < 0)
			return mq_error(MQ_EUSAGE, "invalid offset '%s'", s);
	} else {
		spec->kind = MQ_OFFSET_ABSOLUTE;
		if (mq_parse_int(s, 0, INT64_MAX, &spec->value) < 0)
			return mq_error(MQ_EUSAGE,
					"invalid offset '%s': expected beginning, end, stored, N, -N or @TIME", s);
	}
	return 0;
}
