/*
 * offsets.c: a consumer group's committed offsets and their history.
 *
 *   DATADIR/groups/GROUP/offsets/TOPIC    "partition offset time end\n"
 *                                         lines, oldest first per partition
 *
 * A partition's last line is its committed offset (the next record to
 * deliver), when it was committed, and the log end offset then.  The
 * history keeps the last MQ_GROUP_HISTORY commits of each partition, at
 * least a second apart (the newest replaces a younger one), for mq-lag's
 * rules.  Commits are written with mq_write_file_atomic under an flock on
 * the offsets directory (members owning different partitions of a topic
 * share its file): a crash leaves the old history or the new.  One file
 * per topic keeps mq-lag to one small read per group and topic.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_priv.h"

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The histories of every partition of one topic, as loaded from
 * groups/GROUP/offsets/TOPIC. */
struct history {
	int32_t p;
	struct mq_commit h[MQ_GROUP_HISTORY];
	size_t n;
};

static int hist_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct history *)a)->p, y = ((const struct history *)b)->p;
	return (x > y) - (x < y);
}

/* Parses "partition offset time end" lines (oldest first per partition)
 * into a sorted array of histories. */
static int parse_offsets(char *s, const char *what, struct history **out, size_t *nout)
{
	struct history *v = NULL;
	size_t n = 0;
	char *line, *save = NULL;

	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *e0, *e1, *e2, *e3;
		long long p = strtoll(line, &e0, 10);
		struct mq_commit c;
		c.offset = strtoll(e0, &e1, 10);
		c.time = strtoll(e1, &e2, 10);
		c.end = strtoll(e2, &e3, 10);
		if (e0 == line || e1 == e0 || e2 == e1 || e3 == e2 || *e3 || p < 0 || p > INT32_MAX) {
			free(v);
			return mq_error(MQ_ECORRUPT, "invalid commit history in '%s'", what);
		}
		if (n == 0 || v[n - 1].p != p) {
			struct history *nv = realloc(v, (n + 1) * sizeof *v);
			if (!nv) {
				free(v);
				return mq_syserr("cannot read '%s'", what);
			}
			v = nv;
			v[n].p = (int32_t)p;
			v[n].n = 0;
			n++;
		}
		struct history *h = &v[n - 1];
		if (h->n == MQ_GROUP_HISTORY) {
			memmove(h->h, h->h + 1, (MQ_GROUP_HISTORY - 1) * sizeof *h->h);
			h->n--;
		}
		h->h[h->n++] = c;
	}
	if (n)
		qsort(v, n, sizeof *v, hist_cmp);
	*out = v;
	*nout = n;
	return 0;
}

static int offsets_path(const char *datadir, const char *group, const char *topic,
			char *buf, size_t n)
{
	if (mq_group_name_check(group) < 0)
		return -1;
	return mq_pathf(buf, n, "%s/groups/%s/offsets/%s", datadir, group, topic);
}

static int load_offsets(const char *path, struct history **v, size_t *n)
{
	char *s;
	size_t len;

	*v = NULL;
	*n = 0;
	if (mq_read_file(path, (size_t)1 << 30, &s, &len) < 0)
		return errno == ENOENT ? 0 : mq_syserr("cannot read '%s'", path);
	int rc = parse_offsets(s, path, v, n);
	free(s);
	return rc;
}

static const struct history *find_history(const struct history *v, size_t n, int32_t p)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].p == p)
			return &v[mid];
		if (v[mid].p < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int mq_group_offsets_load(const char *datadir, const char *group, const char *topic,
			  struct mq_group_offsets *go)
{
	char path[PATH_MAX];

	memset(go, 0, sizeof *go);
	if (offsets_path(datadir, group, topic, path, sizeof path) < 0)
		return -1;
	return load_offsets(path, (struct history **)&go->priv, &go->n);
}

size_t mq_group_offsets_get(const struct mq_group_offsets *go, int32_t p,
			    const struct mq_commit **h)
{
	const struct history *x = find_history(go->priv, go->n, p);

	*h = x ? x->h : NULL;
	return x ? x->n : 0;
}

void mq_group_offsets_free(struct mq_group_offsets *go)
{
	free(go->priv);
	memset(go, 0, sizeof *go);
}

int mq_group_history(const char *datadir, const char *group, const char *topic, int32_t p,
		     struct mq_commit *h, size_t max, size_t *n)
{
	struct mq_group_offsets go;
	const struct mq_commit *x;
	size_t k;

	*n = 0;
	if (mq_group_offsets_load(datadir, group, topic, &go) < 0)
		return -1;
	k = mq_group_offsets_get(&go, p, &x);
	if (k > max) {
		x += k - max;
		k = max;
	}
	if (k)
		memcpy(h, x, k * sizeof *h);
	*n = k;
	mq_group_offsets_free(&go);
	return 0;
}

int mq_group_committed(const char *datadir, const char *group, const char *topic, int32_t p,
		       int64_t *offset)
{
	if (mq_remote_is(datadir))
		return mq_client_group_committed(datadir, group, topic, p, offset);
	struct mq_commit h[MQ_GROUP_HISTORY];
	size_t n;

	if (mq_group_history(datadir, group, topic, p, h, MQ_GROUP_HISTORY, &n) < 0)
		return -1;
	if (n == 0)
		return 0;
	*offset = h[n - 1].offset;
	return 1;
}

/* Adds a commit to a partition's history: entries stay a second apart
 * (the newest replaces a younger one), at most MQ_GROUP_HISTORY. */
static void add_commit(struct history *h, int64_t offset, int64_t end, int64_t now)
{
	if (h->n > 0 && h->h[h->n - 1].offset == offset && h->h[h->n - 1].end == end &&
	    now - h->h[h->n - 1].time < 1000)
		return;
	if (h->n >= 2 && h->h[h->n - 1].time - h->h[h->n - 2].time < 1000)
		h->n--;
	if (h->n == MQ_GROUP_HISTORY) {
		memmove(h->h, h->h + 1, (MQ_GROUP_HISTORY - 1) * sizeof *h->h);
		h->n--;
	}
	h->h[h->n++] = (struct mq_commit){ offset, now, end };
}

/* Commits for one topic: read, change, write back, under the group's
 * offsets lock (several members write the same file). */
static int commit_topic(const char *datadir, const char *group, const char *topic,
			const struct mq_commit_req *r, size_t n)
{
	char path[PATH_MAX];
	struct history *v;
	size_t nv;
	struct mq_buf b = { 0 };
	int64_t now = mq_now_ms();

	if (offsets_path(datadir, group, topic, path, sizeof path) < 0 ||
	    load_offsets(path, &v, &nv) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct history *h = (struct history *)find_history(v, nv, r[i].partition);
		if (!h) {
			struct history *nh = realloc(v, (nv + 1) * sizeof *v);
			if (!nh) {
				free(v);
				return mq_syserr("cannot commit");
			}
			v = nh;
			v[nv] = (struct history){ .p = r[i].partition };
			nv++;
			qsort(v, nv, sizeof *v, hist_cmp);
			h = (struct history *)find_history(v, nv, r[i].partition);
		}
		add_commit(h, r[i].offset, r[i].end, now);
	}
	for (size_t i = 0; i < nv; i++)
		for (size_t k = 0; k < v[i].n; k++) {
			char line[128];
			int len = snprintf(line, sizeof line, "%d %" PRId64 " %" PRId64 " %" PRId64 "\n",
					   v[i].p, v[i].h[k].offset, v[i].h[k].time, v[i].h[k].end);
			if (mq_buf_append(&b, line, (size_t)len) < 0) {
				free(v);
				mq_buf_free(&b);
				return -1;
			}
		}
	free(v);
	int rc = mq_write_file_atomic(path, b.p ? (void *)b.p : "", b.len);
	mq_buf_free(&b);
	return rc;
}

int mq_group_commit_many(const char *datadir, const char *group,
			 const struct mq_commit_req *r, size_t n)
{
	if (mq_remote_is(datadir))
		return mq_client_group_commit_many(datadir, group, r, n);
	char dir[PATH_MAX];
	int lockfd, rc = 0;

	if (n == 0)
		return 0;
	if (mq_group_name_check(group) < 0 ||
	    mq_pathf(dir, sizeof dir, "%s/groups/%s/offsets", datadir, group) < 0)
		return -1;
	if (mq_mkdir_p(dir, 0777) < 0)
		return mq_syserr("cannot create '%s'", dir);
	if (mq_partition_lock(dir, &lockfd) < 0)
		return -1;
	/* one write per topic, for all of its partitions in r */
	for (size_t i = 0; i < n && rc == 0; i++) {
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(r[j].topic, r[i].topic);
		if (seen)
			continue;
		size_t k = 0;
		struct mq_commit_req *same = malloc((n - i) * sizeof *same);
		if (!same) {
			rc = mq_syserr("cannot commit");
			break;
		}
		for (size_t j = i; j < n; j++)
			if (!strcmp(r[j].topic, r[i].topic))
				same[k++] = r[j];
		rc = commit_topic(datadir, group, r[i].topic, same, k);
		free(same);
	}
	mq_partition_unlock(lockfd);
	return rc;
}

int mq_group_commit(const char *datadir, const char *group, const char *topic, int32_t p,
		    int64_t offset, int64_t end)
{
	if (mq_remote_is(datadir)) {
		struct mq_commit_req r = { topic, p, offset, end };
		return mq_client_group_commit_many(datadir, group, &r, 1);
	}
	struct mq_commit_req r = { topic, p, offset, end };

	return mq_group_commit_many(datadir, group, &r, 1);
}

/* Adds the topic names found in dir (files or directories) to *v. */
static int add_names(const char *dir, char ***v, size_t *cnt)
{
	DIR *d;
	struct dirent *e;

	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : mq_syserr("cannot read '%s'", dir);
	while ((e = readdir(d))) {
		int seen = 0;
		if (e->d_name[0] == '.' || mq_topic_name_check(e->d_name) < 0)
			continue;
		for (size_t i = 0; i < *cnt && !seen; i++)
			seen = !strcmp((*v)[i], e->d_name);
		if (seen)
			continue;
		char **nv = realloc(*v, (*cnt + 1) * sizeof **v);
		if (!nv || !(nv[*cnt] = strdup(e->d_name))) {
			if (nv)
				*v = nv;
			closedir(d);
			return mq_syserr("cannot read '%s'", dir);
		}
		*v = nv;
		(*cnt)++;
	}
	closedir(d);
	return 0;
}

int mq_group_topics(const char *datadir, const char *group, char ***names, size_t *n)
{
	char path[PATH_MAX];
	char **v = NULL;
	size_t cnt = 0;

	*names = NULL;
	*n = 0;
	/* committed in, or consumed without committing (partition locks) */
	if (mq_pathf(path, sizeof path, "%s/groups/%s/offsets", datadir, group) < 0 ||
	    add_names(path, &v, &cnt) < 0 ||
	    mq_pathf(path, sizeof path, "%s/groups/%s/topics", datadir, group) < 0 ||
	    add_names(path, &v, &cnt) < 0) {
		mq_strv_free(v, cnt);
		return -1;
	}
	if (cnt)
		qsort(v, cnt, sizeof *v, str_cmp);
	*names = v;
	*n = cnt;
	return 0;
}
