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

/* What lag rows need of a partition, read once. */
struct pstate {
	struct mq_partition_info pi;
	struct mq_time_entry *te;   /* time entries of all segments, in order */
	size_t nte;
	int ok;
};

static int load_pstate(const char *dir, struct pstate *ps)
{
	struct mq_segment *segs;
	size_t n;

	memset(ps, 0, sizeof *ps);
	if (mq_partition_info(dir, &ps->pi) < 0) {
		if (mq_errclass() != MQ_ENOTFOUND)
			return -1;
		ps->pi.first_timestamp = ps->pi.last_timestamp = -1;
		return 0;
	}
	if (mq_segments_list(dir, &segs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct mq_index ix;
		int damaged;
		if (mq_index_load(&ix, dir, segs[i].base, segs[i].size, &damaged) < 0)
			continue;
		if (ix.ntime) {
			struct mq_time_entry *nt = realloc(ps->te, (ps->nte + ix.ntime) * sizeof *nt);
			if (nt) {
				ps->te = nt;
				memcpy(ps->te + ps->nte, ix.time, ix.ntime * sizeof *nt);
				ps->nte += ix.ntime;
			}
		}
		mq_index_free(&ix);
	}
	free(segs);
	ps->ok = 1;
	return 0;
}

/* When the record at offset was appended, as the time index knows it:
 * the first entry at or after the offset (the max timestamp up to it,
 * close above the record's own), else the last batch's. */
static int64_t time_at(const struct pstate *ps, int64_t offset)
{
	size_t lo = 0, hi = ps->nte;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ps->te[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ps->nte)
		return ps->te[lo].timestamp;
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
	if (!n)
		return NULL;
	*tc = n;
	c = &n[(*ntc)++];
	memset(c, 0, sizeof *c);
	c->name = strdup(name);
	c->exists = mq_topic_open(datadir, name, &c->t) == 0;
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
		if (!c || !c->exists) {
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
			if (!c || !c->exists)
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
				const struct pstate *ps = &c->ps[p];
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
					int64_t ts = time_at(ps, from);
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
				free(tc[i].ps[p].te);
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
