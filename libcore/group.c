/*
 * group.c: consumer groups over a data directory, with the kernel as the
 * coordinator.
 *
 *   DATADIR/groups/GROUP/members/ID            "pid host start\ntopics T...\n",
 *                                              flock'd by the live member
 *   DATADIR/groups/GROUP/topics/T/P.lock       flock'd by the partition's
 *                                              owner; holds "ID pid host\n"
 *   DATADIR/groups/GROUP/offsets/T             commit histories (offsets.c)
 *
 * Membership.  A member creates its file under a temporary name, locks it,
 * and renames it into members/, so no one ever sees it unlocked while it
 * lives.  A member file whose lock can be taken belongs to a dead process
 * (the kernel dropped the lock with it) and is removed by whoever finds
 * it.  Member IDs start with the start time, so sorting them orders
 * members by age.
 *
 * Assignment.  Every member computes the same assignment from what it
 * sees: the partitions of each topic go round-robin over the live members
 * that take that topic (their files list the topics), sorted by age,
 * starting at a place set by a hash of the topic's name.  It releases what it holds and should not (after its
 * consumer committed), and takes what it should hold when the lock is
 * free.  Members look again every MQ_GROUP_POLL_MS, so a new, leaving or
 * killed member is absorbed within about a second; a killed owner's
 * partition locks vanish with it, so nothing stays stale.
 *
 * Committed offsets are offsets.c's.
 *
 * Remote members.  When the data directory is an mq-serve's address,
 * the membership lives in that server (serve_groups.c) and this side
 * heartbeats every MQ_GROUP_POLL_MS: each heartbeat rebalances there and
 * answers with what this member owns, from which the revoke and assign
 * calls are made here as for a local member.  The server ends a member
 * that has not heartbeaten for its session timeout (MQ_SESSION_TIMEOUT,
 * default 10s, at least 1s).  The membership the server opens for it
 * (mq_group_open_member) names the consumer's pid and host, taken from
 * its member ID, in the member file and the partition locks, so that
 * mq-lag shows the consumer as the owner, not the server.
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

struct owned {
	struct mq_tp tp;
	int fd;                    /* the flock'd P.lock */
};

struct mq_group {
	char dir[PATH_MAX];        /* DATADIR/groups/GROUP */
	char id[128];
	int memberfd;
	struct mq_tp *subs;
	size_t nsubs;
	struct owned *own;
	size_t nown;
	int64_t last_poll;
	char *addr;                /* remote: the server's address */
	char group[256];
	long pid;                  /* the member's, in its files */
	char host[64];
};

#define MQ_SESSION_MS 10000

static void host(char *buf, size_t n);
static int tp_cmp(const void *a, const void *b);
static int owns(const struct mq_group *g, const struct mq_tp *tp);

static int remote_open(struct mq_group **gp, const char *addr, const char *group)
{
	struct mq_group *g = calloc(1, sizeof *g);
	char h[64];

	if (!g || !(g->addr = strdup(addr))) {
		free(g);
		return mq_syserr("cannot join group '%s'", group);
	}
	host(h, sizeof h);
	g->memberfd = -1;
	snprintf(g->group, sizeof g->group, "%s", group);
	snprintf(g->id, sizeof g->id, "%013" PRId64 "-%s-%ld", mq_now_ms(), h, (long)getpid());
	*gp = g;
	return 0;
}

static int remote_rebalance(struct mq_group *g, int (*revoke)(void *arg, const struct mq_tp *tp),
			    int (*assign)(void *arg, const struct mq_tp *tp), void *arg)
{
	int32_t *now = calloc(g->nsubs + 1, sizeof *now);
	size_t n;
	int changed = 0;

	if (!now)
		return mq_syserr("cannot rebalance");
	const char *e = getenv("MQ_SESSION_TIMEOUT");
	int64_t session = MQ_SESSION_MS;
	if (e && mq_parse_duration(e, &session) < 0)
		session = MQ_SESSION_MS;
	if (mq_client_group_heartbeat(g->addr, g->group, g->id, g->subs, g->nsubs, session,
				      NULL, 0, now, &n) < 0)
		goto fail;
	for (size_t i = 0; i < g->nown;) {
		size_t k = 0;
		while (k < g->nsubs && tp_cmp(&g->subs[k], &g->own[i].tp))
			k++;
		if (k < g->nsubs && now[k]) {
			i++;
			continue;
		}
		struct mq_tp tp = g->own[i].tp;
		if (revoke && revoke(arg, &tp) < 0)
			goto fail;
		g->own[i] = g->own[--g->nown];
		changed = 1;
	}
	for (size_t k = 0; k < g->nsubs; k++) {
		if (!now[k] || owns(g, &g->subs[k]) >= 0)
			continue;
		struct owned *no = realloc(g->own, (g->nown + 1) * sizeof *no);
		if (!no) {
			mq_syserr("cannot rebalance");
			goto fail;
		}
		g->own = no;
		g->own[g->nown++] = (struct owned){ g->subs[k], -1 };
		changed = 1;
		if (assign && assign(arg, &g->subs[k]) < 0)
			goto fail;
	}
	free(now);
	return changed;
fail:
	free(now);
	return -1;
}

int mq_group_name_check(const char *name)
{
	if (mq_topic_name_check(name) < 0)
		return mq_error(MQ_EUSAGE, "invalid group name '%s': use 1-249 of [A-Za-z0-9._-]", name);
	return 0;
}

static int group_dir(const char *datadir, const char *group, char *buf, size_t n)
{
	if (mq_group_name_check(group) < 0)
		return -1;
	return mq_pathf(buf, n, "%s/groups/%s", datadir, group);
}

static void host(char *buf, size_t n)
{
	if (gethostname(buf, n) < 0)
		snprintf(buf, n, "localhost");
	buf[n - 1] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
}

/* Declared in serve_priv.h: mq-serve opens its remote members with it. */
int mq_group_open_member(struct mq_group **gp, const char *datadir, const char *group,
			 const char *remote_id)
{
	struct mq_group *g = calloc(1, sizeof *g);
	char path[PATH_MAX], tmp[PATH_MAX], line[256];
	const char *h, *p;
	int fd;

	if (!g)
		return mq_syserr("cannot join group '%s'", group);
	g->memberfd = -1;
	g->pid = (long)getpid();
	host(g->host, sizeof g->host);
	/* a remote member's ID is "TIME-HOST-PID" (remote_open) */
	h = remote_id && strspn(remote_id, "0123456789") == 13 && remote_id[13] == '-' ?
	    remote_id + 14 : NULL;
	p = h ? strrchr(h, '-') : NULL;
	if (p && p > h && (size_t)(p - h) < sizeof g->host && p[1] &&
	    strspn(p + 1, "0123456789") == strlen(p + 1) && strlen(p + 1) < 10) {
		snprintf(g->host, sizeof g->host, "%.*s", (int)(p - h), h);
		g->pid = atol(p + 1);
	}
	if (group_dir(datadir, group, g->dir, sizeof g->dir) < 0)
		goto fail;
	mq_pathf(path, sizeof path, "%s/members", g->dir);
	if (mq_mkdir_p(path, 0777) < 0) {
		mq_syserr("cannot create group '%s'", group);
		goto fail;
	}
	snprintf(g->id, sizeof g->id, "%013" PRId64 "-%s-%ld", mq_now_ms(), g->host, g->pid);
	mq_pathf(tmp, sizeof tmp, "%s/.%s", path, g->id);
	mq_pathf(path, sizeof path, "%s/members/%s", g->dir, g->id);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		mq_syserr("cannot join group '%s'", group);
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	int n = snprintf(line, sizeof line, "%ld %s %" PRId64 "\n", g->pid, g->host, mq_now_ms());
	if (mq_write_all(fd, line, (size_t)n) < 0 || rename(tmp, path) < 0) {
		mq_syserr("cannot join group '%s'", group);
		close(fd);
		unlink(tmp);
		goto fail;
	}
	g->memberfd = fd;
	*gp = g;
	return 0;
fail:
	free(g);
	return -1;
}

int mq_group_open(struct mq_group **gp, const char *datadir, const char *group)
{
	if (mq_remote_is(datadir))
		return remote_open(gp, datadir, group);
	return mq_group_open_member(gp, datadir, group, NULL);
}

static int tp_cmp(const void *a, const void *b)
{
	const struct mq_tp *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int mq_group_subscribe(struct mq_group *g, const struct mq_tp *tps, size_t n)
{
	struct mq_buf b = { 0 };
	char line[128];

	free(g->subs);
	g->subs = malloc((n ? n : 1) * sizeof *g->subs);
	if (!g->subs)
		return mq_syserr("cannot subscribe");
	memcpy(g->subs, tps, n * sizeof *tps);
	g->nsubs = n;
	if (n)
		qsort(g->subs, n, sizeof *g->subs, tp_cmp);
	if (g->addr)
		return 0;
	/* tell the others which topics this member takes partitions of */
	mq_buf_append(&b, line, (size_t)snprintf(line, sizeof line, "%ld %s %" PRId64 "\ntopics",
						 g->pid, g->host, mq_now_ms()));
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(g->subs[i].topic, g->subs[i - 1].topic)) {
			mq_buf_append(&b, " ", 1);
			mq_buf_append(&b, g->subs[i].topic, strlen(g->subs[i].topic));
		}
	mq_buf_append(&b, "\n", 1);
	int rc = ftruncate(g->memberfd, 0) < 0 || mq_pwrite_all(g->memberfd, b.p, b.len, 0) < 0 ?
		 mq_syserr("cannot join group") : 0;
	mq_buf_free(&b);
	return rc;
}

/* Does a member (its "ID\tT1 T2 ..." line) take partitions of topic?
 * A member that published no topics takes them all. */
static int subscribes(const char *member, const char *topic)
{
	const char *t = strchr(member, '\t');
	size_t n = strlen(topic);

	if (!t)
		return 1;
	for (t++; *t;) {
		size_t k = strcspn(t, " ");
		if (k == n && !memcmp(t, topic, n))
			return 1;
		t += k + (t[k] == ' ');
	}
	return 0;
}

static int id_is(const char *member, const char *id)
{
	size_t n = strlen(id);
	return !strncmp(member, id, n) && (member[n] == 0 || member[n] == '\t');
}

/* Is partition tp ours?  Each topic's partitions go round-robin over the
 * live members that take that topic, sorted by age, starting at a place
 * set by the topic's name: every member computes the same answer. */
static int mine(struct mq_group *g, char **members, size_t nm, const struct mq_tp *tp)
{
	size_t ne = 0, me = (size_t)-1;

	for (size_t i = 0; i < nm; i++) {
		if (!subscribes(members[i], tp->topic))
			continue;
		if (id_is(members[i], g->id))
			me = ne;
		ne++;
	}
	if (me == (size_t)-1)
		return ne == 0;    /* not listed yet (just joined): only if alone */
	uint32_t start = (uint32_t)mq_murmur2(tp->topic, strlen(tp->topic));
	return ((uint32_t)tp->partition + start) % ne == me;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Live members, sorted by age; removes the files of dead ones. */
static int live_members(const char *gdir, char ***out, size_t *n, int reap)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	*n = 0;
	mq_pathf(path, sizeof path, "%s/members", gdir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : mq_syserr("cannot read group '%s'", gdir);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			/* nobody holds it: its member is gone */
			if (reap)
				unlinkat(dirfd(d), e->d_name, 0);
			close(fd);
			continue;
		}
		/* "pid host start\ntopics T1 T2 ...\n": keep the topics */
		char buf[8192], *topics = NULL;
		ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
		close(fd);
		buf[r > 0 ? r : 0] = 0;
		if ((topics = strstr(buf, "\ntopics ")))
			topics[strcspn(topics + 1, "\n") + 1] = 0;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 8;
			char **nv = realloc(v, cap * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		if (asprintf(&v[cnt], "%s%s%s", e->d_name, topics ? "\t" : "",
			     topics ? topics + 8 : "") < 0)
			break;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, str_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

static void lock_path(const struct mq_group *g, const struct mq_tp *tp, char *buf, size_t n,
		      const char *ext)
{
	mq_pathf(buf, n, "%s/topics/%s/%d.%s", g->dir, tp->topic, tp->partition, ext);
}

static int owns(const struct mq_group *g, const struct mq_tp *tp)
{
	for (size_t i = 0; i < g->nown; i++)
		if (!tp_cmp(&g->own[i].tp, tp))
			return (int)i;
	return -1;
}

static int try_acquire(struct mq_group *g, const struct mq_tp *tp)
{
	char path[PATH_MAX], line[256];
	int fd;

	lock_path(g, tp, path, sizeof path, "lock");
	{
		char d[PATH_MAX];
		mq_pathf(d, sizeof d, "%s/topics/%s", g->dir, tp->topic);
		if (mq_mkdir_p(d, 0777) < 0)
			return mq_syserr("cannot create '%s'", d);
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return mq_syserr("cannot open '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return 0;
	}
	int n = snprintf(line, sizeof line, "%s %ld %s\n", g->id, g->pid, g->host);
	if (ftruncate(fd, 0) < 0 || mq_pwrite_all(fd, line, (size_t)n, 0) < 0) {
		close(fd);
		return mq_syserr("cannot write '%s'", path);
	}
	struct owned *no = realloc(g->own, (g->nown + 1) * sizeof *g->own);
	if (!no) {
		close(fd);
		return mq_syserr("cannot acquire partition");
	}
	g->own = no;
	g->own[g->nown].tp = *tp;
	g->own[g->nown].fd = fd;
	g->nown++;
	return 1;
}

void mq_group_release(struct mq_group *g, const struct mq_tp *tp)
{
	int i = owns(g, tp);

	if (i < 0)
		return;
	/* empty the owner line before the lock goes */
	if (g->own[i].fd >= 0 && ftruncate(g->own[i].fd, 0) < 0) {
		/* only cosmetic: mq-lag checks the lock, not the text */
	}
	if (g->own[i].fd >= 0)
		close(g->own[i].fd);
	g->own[i] = g->own[--g->nown];
}

int mq_group_rebalance(struct mq_group *g, int force,
		       int (*revoke)(void *arg, const struct mq_tp *tp),
		       int (*assign)(void *arg, const struct mq_tp *tp), void *arg)
{
	char **members;
	size_t nm;
	int64_t now = mq_now_ms();
	int changed = 0, rc = -1;

	if (!force && now - g->last_poll < MQ_GROUP_POLL_MS)
		return 0;
	g->last_poll = now;
	if (g->addr)
		return remote_rebalance(g, revoke, assign, arg);
	if (live_members(g->dir, &members, &nm, 1) < 0)
		return -1;
	for (size_t i = 0; i < g->nown;) {
		struct mq_tp tp = g->own[i].tp;
		size_t k = 0;
		while (k < g->nsubs && tp_cmp(&g->subs[k], &tp))
			k++;
		if (k < g->nsubs && mine(g, members, nm, &tp)) {
			i++;
			continue;
		}
		if (revoke && revoke(arg, &tp) < 0)
			goto out;
		mq_group_release(g, &tp);
		changed = 1;
	}
	for (size_t k = 0; k < g->nsubs; k++) {
		if (!mine(g, members, nm, &g->subs[k]) || owns(g, &g->subs[k]) >= 0)
			continue;
		int r = try_acquire(g, &g->subs[k]);
		if (r < 0)
			goto out;
		if (r > 0) {
			changed = 1;
			if (assign && assign(arg, &g->subs[k]) < 0)
				goto out;
		}
	}
	rc = changed;
out:
	mq_strv_free(members, nm);
	return rc;
}

int mq_group_due(const struct mq_group *g)
{
	return mq_now_ms() - g->last_poll >= MQ_GROUP_POLL_MS;
}

size_t mq_group_owned(const struct mq_group *g, struct mq_tp *out, size_t max)
{
	size_t n = g->nown < max ? g->nown : max;

	for (size_t i = 0; i < n; i++)
		out[i] = g->own[i].tp;
	return g->nown;
}

void mq_group_close(struct mq_group *g)
{
	char path[PATH_MAX];

	if (!g)
		return;
	while (g->nown)
		mq_group_release(g, &g->own[0].tp);
	if (g->addr) {
		/* leaving is a courtesy (the session times out anyway): its
		 * failure must not replace the error that brought us here */
		char saved[1024];
		int cls = mq_errclass();
		snprintf(saved, sizeof saved, "%s", mq_errmsg());
		if (mq_client_group_leave(g->addr, g->group, g->id) < 0)
			mq_error(cls, "%s", saved);
		free(g->addr);
		free(g->own);
		free(g->subs);
		free(g);
		return;
	}
	mq_pathf(path, sizeof path, "%s/members/%s", g->dir, g->id);
	unlink(path);
	if (g->memberfd >= 0)
		close(g->memberfd);
	free(g->own);
	free(g->subs);
	free(g);
}

/* ---- for mq-lag and reset ---- */

int mq_group_members(const char *datadir, const char *group, char ***ids, size_t *n)
{
	char gdir[PATH_MAX];

	if (group_dir(datadir, group, gdir, sizeof gdir) < 0 || live_members(gdir, ids, n, 0) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++)
		(*ids)[i][strcspn((*ids)[i], "\t")] = 0;
	return 0;
}

int mq_group_owner(const char *datadir, const char *group, const char *topic, int32_t p,
		   char *buf, size_t n)
{
	char path[PATH_MAX];
	int fd;

	buf[0] = 0;
	if (mq_pathf(path, sizeof path, "%s/groups/%s/topics/%s/%d.lock", datadir, group, topic, p) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	ssize_t r = pread(fd, buf, n - 1, 0);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 1;
}

int mq_group_list(const char *datadir, char ***names, size_t *n)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0;

	*names = NULL;
	*n = 0;
	mq_pathf(path, sizeof path, "%s/groups", datadir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : mq_syserr("cannot list groups in '%s'", datadir);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || mq_topic_name_check(e->d_name) < 0)
			continue;
		char **nv = realloc(v, (cnt + 1) * sizeof *v);
		if (!nv || !(nv[cnt] = strdup(e->d_name))) {
			v = nv ? nv : v;
			closedir(d);
			mq_strv_free(v, cnt);
			return mq_syserr("cannot list groups");
		}
		v = nv;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, str_cmp);
	*names = v;
	*n = cnt;
	return 0;
}
