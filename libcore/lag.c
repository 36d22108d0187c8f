/*
 * lag.c: how far consumer groups are behind, and whether that is getting
 * better, for mq-lag.
 *
 * For every partition a group has committed in (and every other
 * partition of those topics), a row: the committed offset, the log end,
 * the lag between them, the age of the oldest record not yet consumed,
 * the consumption rate, a status and the live owner.  Reading is cheap
 * by design: commit histories are small files, the log end and the
 * timestamps come from each partition's indexes and last batch, read
 * once per partition whatever the number of groups, never from whole
 * segments.
 *
 * Status, after LinkedIn Burrow's rules, over the commits in the window
 * (the last `window_ms`); lag at a commit is the log end then minus the
 * offset; a partition whose lag is at most `allowed_lag` is caught up:
 *
 *   REWIND  the committed offset went down inside the window
 *   STOP    not caught up, no live owner, last commit older than the window
 *   STALL   not caught up, a live owner, no progress for the whole window
 *   WARN    not caught up and the lag grew at every commit in the window
 *           (at least three commits)
 *   OK      otherwise: caught up, or consuming and not falling behind
 *
 * A partition with no commit at all is fully behind (lag = end - start)
 * and STOP when it holds records.  A group's status is its worst.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_priv.h"

const char *mq_lag_status_name(int s)
{
	static const char *const names[] = { "OK", "WARN", "REWIND", "STALL", "STOP" };
	return s >= 0 && s <= MQ_LAG_STOP ? names[s] : "?";
}

/* What lag rows need of a partition, read once whatever the number of
 * groups: its state, its segments and their offset indexes, and the
 * segment last opened to find a timestamp. */
struct pstate {
	struct mq_partition_info pi;
	char dir[PATH_MAX];
	struct mq_segment *segs;
	struct mq_index *ix;
	uint8_t *loaded;          /* ix[i] read yet? */
	size_t nsegs;
	struct seen { int64_t base, last, ts; } *seen;   /* batch headers read */
	size_t nseen;
	int fd;
	size_t fdseg;
	int ok;
};

/* Loads segment i's indexes the first time they are needed. */
static struct mq_index *index_of(struct pstate *ps, size_t i)
{
	if (!ps->loaded[i]) {
		int damaged;
		ps->loaded[i] = 1;
		if (mq_index_load(&ps->ix[i], ps->dir, ps->segs[i].base, ps->segs[i].size, &damaged) < 0)
			memset(&ps->ix[i], 0, sizeof ps->ix[i]);
	}
	return &ps->ix[i];
}

static int open_segment(struct pstate *ps, size_t i)
{
	char path[PATH_MAX];

	if (ps->fd >= 0 && ps->fdseg == i)
		return 0;
	if (ps->fd >= 0)
		close(ps->fd);
	mq_segment_path(path, sizeof path, ps->dir, ps->segs[i].base, "log");
	ps->fd = open(path, O_RDONLY | O_CLOEXEC);
	ps->fdseg = i;
	return ps->fd < 0 ? -1 : 0;
}

/* The partition's start, end and last timestamp, the way
 * mq_partition_info finds them, but reading the last segment's indexes
 * once for both that and the AGE lookups. */
static int load_pstate(const char *dir, struct pstate *ps)
{
	char path[PATH_MAX];
	int64_t ls = 0, hw;

	memset(ps, 0, sizeof *ps);
	ps->fd = -1;
	ps->pi.first_timestamp = ps->pi.last_timestamp = -1;
	snprintf(ps->dir, sizeof ps->dir, "%s", dir);
	if (mq_segments_list(dir, &ps->segs, &ps->nsegs) < 0)
		return mq_errclass() == MQ_ENOTFOUND ? 0 : -1;
	ps->ix = calloc(ps->nsegs ? ps->nsegs : 1, sizeof *ps->ix);
	ps->loaded = calloc(ps->nsegs ? ps->nsegs : 1, 1);
	if (!ps->ix || !ps->loaded)
		return mq_syserr("cannot read '%s'", dir);
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_LOG_START, dir);
	if (mq_checkpoint_read(path, &ls) < 0)
		ls = 0;
	if (ps->nsegs == 0) {
		ps->pi.log_start = ps->pi.log_end = ps->pi.high_watermark = ls;
		ps->ok = 1;
		return 0;
	}
	if (ls < ps->segs[0].base)
		ls = ps->segs[0].base;
	size_t last = ps->nsegs - 1;
	struct mq_index *ix = index_of(ps, last);
	int64_t pos = mq_index_lookup(ix, INT64_MAX);
	ps->pi.log_end = ps->segs[last].base;
	ps->pi.last_timestamp = ix->ntime ? ix->time[ix->ntime - 1].timestamp : -1;
	if (open_segment(ps, last) == 0) {
		struct mq_walk w;
		struct mq_batch b;
		mq_walk_init(&w, ps->fd, pos, ps->segs[last].size, 0);
		while (mq_walk_next(&w, &b) > 0) {
			ps->pi.log_end = mq_batch_last_offset(&b) + 1;
			if (b.max_timestamp > ps->pi.last_timestamp)
				ps->pi.last_timestamp = b.max_timestamp;
		}
		mq_walk_free(&w);
	}
	ps->pi.log_start = ls;
	if (ps->pi.log_end < ls)
		ps->pi.log_end = ls;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
	ps->pi.high_watermark = mq_checkpoint_read(path, &hw) == 0 && hw < ps->pi.log_end ?
				hw : ps->pi.log_end;
	ps->ok = 1;
	return 0;
}

static void free_pstate(struct pstate *ps)
{
	for (size_t i = 0; ps->ix && i < ps->nsegs; i++)
		mq_index_free(&ps->ix[i]);
	free(ps->ix);
	free(ps->loaded);
	free(ps->segs);
	free(ps->seen);
	if (ps->fd >= 0)
		close(ps->fd);
}

/* When the record at offset was appended.  The time index brackets it:
 * the entries just before and at or after the offset hold the times
 * around it; when they are close (a busy partition) the later one is the
 * answer without touching the log.  Otherwise the timestamp of the batch
 * holding the offset is read, through the offset index and a header or
 * two. */
static int64_t time_at(struct pstate *ps, int64_t offset, int64_t now)
{
	size_t i, lo = 0, hi;
	int64_t pos;

	if (!ps->ok || ps->nsegs == 0)
		return -1;
	for (i = ps->nsegs; i-- > 1;)
		if (ps->segs[i].base <= offset)
			break;
	const struct mq_index *ix = index_of(ps, i);
	hi = ix->ntime;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->time[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && lo < ix->ntime) {
		int64_t before = ix->time[lo - 1].timestamp, after = ix->time[lo].timestamp;
		int64_t slack = (now - after) / 100;
		if (after - before <= (slack > 1000 ? slack : 1000))
			return after;
	}
	if (open_segment(ps, i) < 0)
		return -1;
	/* batches whose headers an earlier lookup read */
	for (size_t k = 0; k < ps->nseen; k++)
		if (ps->seen[k].base <= offset && offset <= ps->seen[k].last)
			return ps->seen[k].ts;
	pos = mq_index_lookup(ix, offset);
	for (int chunks = 0; chunks < 16; chunks++) {
		uint8_t buf[16384];
		ssize_t got = mq_pread_full(ps->fd, buf, sizeof buf, (off_t)pos);
		size_t at = 0;
		int64_t found = -2;
		if (got < MQ_BATCH_HEADER)
			break;
		while (at + MQ_BATCH_HEADER <= (size_t)got) {
			const uint8_t *h = buf + at;
			int64_t base = (int64_t)mq_be64(h), last = base + (int32_t)mq_be32(h + 23);
			int32_t len = (int32_t)mq_be32(h + 8);
			if (len < MQ_BATCH_HEADER - MQ_BATCH_OVERHEAD || h[16] != 2)
				return ps->pi.last_timestamp;
			struct seen *ns = realloc(ps->seen, (ps->nseen + 1) * sizeof *ns);
			if (ns) {
				ps->seen = ns;
				ps->seen[ps->nseen++] = (struct seen){ base, last, (int64_t)mq_be64(h + 27) };
			}
			if (found == -2 && base <= offset && offset <= last)
				found = (int64_t)mq_be64(h + 27);
			at += (size_t)len + MQ_BATCH_OVERHEAD;
		}
		if (found != -2)
			return found;
		pos += (int64_t)at;
	}
	return ps->pi.last_timestamp;
}

static int status_of(const struct mq_lag_row *r, const struct mq_commit *h, size_t n,
		     const struct mq_lag_opts *o, int64_t now)
{
	size_t first = n;
	int64_t allowed = o->allowed_lag;

	if (n == 0)
		return r->end > r->start ? MQ_LAG_STOP : MQ_LAG_OK;
	while (first > 0 && now - h[first - 1].time <= o->window_ms)
		first--;
	/* the commit just before the window tells where it started */
	size_t from = first > 0 ? first - 1 : 0;
	for (size_t i = from + 1; i < n; i++)
		if (h[i].offset < h[i - 1].offset && i >= first)
			return MQ_LAG_REWIND;
	if (r->lag <= allowed)
		return MQ_LAG_OK;
	if (now - h[n - 1].time > o->window_ms && !r->owner[0])
		return MQ_LAG_STOP;
	if (r->owner[0] && h[n - 1].offset == h[from].offset &&
	    now - h[from].time >= o->window_ms)
		return MQ_LAG_STALL;
	if (now - h[n - 1].time > o->window_ms)
		return r->owner[0] ? MQ_LAG_STALL : MQ_LAG_STOP;
	if (n - first >= 3) {
		int growing = 1;
		for (size_t i = first + 1; i < n && growing; i++)
			growing = h[i].end - h[i].offset > h[i - 1].end - h[i - 1].offset;
		if (growing)
			return MQ_LAG_WARN;
	}
	return MQ_LAG_OK;
}

static double rate_of(const struct mq_commit *h, size_t n, int64_t now, int64_t window)
{
	size_t first = n;

	while (first > 0 && now - h[first - 1].time <= window)
		first--;
	if (first > 0)
		first--;
	if (n < 2 || first >= n - 1 || h[n - 1].time <= h[first].time)
		return 0;
	int64_t d = h[n - 1].offset - h[first].offset;
	return d > 0 ? (double)d * 1000.0 / (double)(h[n - 1].time - h[first].time) : 0;
}

struct topic_cache {
	char *name;
	struct mq_topic t;
	struct pstate *ps;
	int exists;
};

static struct topic_cache *topic(struct topic_cache **tc, size_t *ntc, const char *datadir,
				 const char *name)
{
	for (size_t i = 0; i < *ntc; i++)
		if (!strcmp((*tc)[i].name, name))
			return &(*tc)[i];
	struct topic_cache *n = realloc(*tc, (*ntc + 1) * sizeof *n), *c;
	if (!n) {
		mq_syserr("cannot gather lag");
		return NULL;
	}
	*tc = n;
	c = &n[(*ntc)++];
	memset(c, 0, sizeof *c);
	c->name = strdup(name);
	c->exists = mq_topic_open(datadir, name, &c->t) == 0;
	if (!c->exists && mq_errclass() != MQ_ENOTFOUND)
		return NULL;    /* a damaged topic.conf is an error, not a deletion */
	if (c->exists) {
		c->ps = calloc((size_t)c->t.conf.partitions, sizeof *c->ps);
		char dir[PATH_MAX];
		for (int32_t p = 0; c->ps && p < c->t.conf.partitions; p++) {
			mq_topic_partition_dir(&c->t, p, dir, sizeof dir);
			load_pstate(dir, &c->ps[p]);
		}
	}
	return c;
}

static int add_row(struct mq_lag_report *rep, const struct mq_lag_row *r)
{
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 64;
		struct mq_lag_row *nr = realloc(rep->rows, cap * sizeof *nr);
		if (!nr)
			return mq_syserr("cannot gather lag");
		rep->rows = nr;
		rep->cap = cap;
	}
	rep->rows[rep->n++] = *r;
	return 0;
}

int mq_lag_gather(const char *datadir, char *const *groups, size_t ngroups,
		  const struct mq_lag_opts *o, struct mq_lag_report *rep)
{
	char **all = NULL, **gl;
	size_t nall = 0, ng;
	struct topic_cache *tc = NULL;
	size_t ntc = 0;
	int64_t now = mq_now_ms();
	int rc = -1;

	if (mq_remote_is(datadir))
		return mq_client_lag(datadir, groups, ngroups, o, rep);
	memset(rep, 0, sizeof *rep);
	if (ngroups == 0) {
		if (mq_group_list(datadir, &all, &nall) < 0)
			return -1;
		gl = all;
		ng = nall;
	} else {
		gl = (char **)groups;
		ng = ngroups;
		for (size_t i = 0; i < ng; i++) {
			char path[PATH_MAX];
			if (mq_group_name_check(gl[i]) < 0)
				return -1;
			mq_pathf(path, sizeof path, "%s/groups/%s", datadir, gl[i]);
			if (access(path, F_OK) < 0)
				return mq_error(MQ_ENOTFOUND, "group '%s' not found", gl[i]);
		}
	}
	if (o->topic) {
		struct topic_cache *c = topic(&tc, &ntc, datadir, o->topic);
		if (!c)
			goto out;
		if (!c->exists) {
			mq_error(MQ_ENOTFOUND, "topic '%s' not found", o->topic);
			goto out;
		}
	}
	for (size_t g = 0; g < ng; g++) {
		char **topics, **members;
		size_t nt, nm;
		if (mq_group_topics(datadir, gl[g], &topics, &nt) < 0)
			goto out;
		if (mq_group_members(datadir, gl[g], &members, &nm) < 0) {
			mq_strv_free(topics, nt);
			goto out;
		}
		mq_strv_free(members, nm);
		for (size_t t = 0; t < nt; t++) {
			if (o->topic && strcmp(o->topic, topics[t]))
				continue;
			struct topic_cache *c = topic(&tc, &ntc, datadir, topics[t]);
			if (!c) {
				mq_strv_free(topics, nt);
				goto out;
			}
			if (!c->exists)
				continue;   /* the topic was deleted: nothing to lag behind */
			struct mq_group_offsets go;
			if (mq_group_offsets_load(datadir, gl[g], topics[t], &go) < 0) {
				mq_strv_free(topics, nt);
				goto out;
			}
			for (int32_t p = 0; p < c->t.conf.partitions; p++) {
				const struct mq_commit *h;
				size_t nh = mq_group_offsets_get(&go, p, &h);
				struct mq_lag_row r = { 0 };
				struct pstate *ps = &c->ps[p];
				snprintf(r.group, sizeof r.group, "%s", gl[g]);
				snprintf(r.topic, sizeof r.topic, "%s", topics[t]);
				r.partition = p;
				r.members = (int)nm;
				r.start = ps->pi.log_start;
				r.end = ps->pi.high_watermark;
				r.committed = nh ? h[nh - 1].offset : -1;
				/* below the log start (retention moved past it):
				 * what is left is all lag */
				int64_t from = r.committed < r.start ? r.start : r.committed;
				r.lag = r.end > from ? r.end - from : 0;
				if (r.committed >= 0 && r.committed < r.start)
					r.lag = r.end - r.start;
				r.age_ms = -1;
				if (r.lag > 0) {
					int64_t ts = time_at(ps, from, now);
					r.age_ms = ts >= 0 && now > ts ? now - ts : 0;
				} else if (nh) {
					r.age_ms = 0;
				}
				r.rate = rate_of(h, nh, now, o->window_ms);
				if (nm > 0)   /* without live members, nobody owns anything */
					mq_group_owner(datadir, gl[g], topics[t], p, r.owner, sizeof r.owner);
				r.last_commit = nh ? h[nh - 1].time : -1;
				r.status = status_of(&r, h, nh, o, now);
				if (add_row(rep, &r) < 0) {
					mq_group_offsets_free(&go);
					mq_strv_free(topics, nt);
					goto out;
				}
			}
			mq_group_offsets_free(&go);
		}
		mq_strv_free(topics, nt);
	}
	rc = 0;
out:
	for (size_t i = 0; i < ntc; i++) {
		if (tc[i].exists) {
			for (int32_t p = 0; tc[i].ps && p < tc[i].t.conf.partitions; p++)
				free_pstate(&tc[i].ps[p]);
			free(tc[i].ps);
			mq_topic_close(&tc[i].t);
		}
		free(tc[i].name);
	}
	free(tc);
	mq_strv_free(all, nall);
	return rc;
}

void mq_lag_report_free(struct mq_lag_report *rep)
{
	free(rep->rows);
	memset(rep, 0, sizeof *rep);
}
