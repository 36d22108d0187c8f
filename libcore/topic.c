/*
 * topic.c: topics in a data directory (DESIGN.md §2).
 *
 *   DATADIR/topics/NAME/topic.conf     key=value, Kafka's config names
 *   DATADIR/topics/NAME/0/ ... N-1/    one directory per partition
 *   DATADIR/defaults.conf              optional defaults for new topics
 *
 * A topic is created whole in a temporary directory under topics/ and
 * renamed into place, so it appears complete or not at all, and of two
 * processes creating the same topic exactly one wins (rename refuses a
 * non-empty target).  Delete renames the topic away first for the same
 * reason.  Names are checked before they touch a path.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

int mq_topic_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return mq_error(MQ_EUSAGE, "invalid topic name '': empty");
	if (n > 249)
		return mq_error(MQ_EUSAGE, "invalid topic name '%.20s...': longer than 249 characters", name);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return mq_error(MQ_EUSAGE, "invalid topic name '%s'", name);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return mq_error(MQ_EUSAGE,
					"invalid topic name '%s': only letters, digits, '.', '_' and '-' are allowed",
					name);
	return 0;
}

static int topics_dir(const char *datadir, char *buf, size_t n)
{
	snprintf(buf, n, "%s/topics", datadir);
	if (mq_mkdir_p(buf, 0777) < 0)
		return mq_syserr("cannot create '%s'", buf);
	return 0;
}

int mq_topic_defaults(const char *datadir, struct mq_config *c)
{
	if (mq_remote_is(datadir)) {
		mq_config_default(c);
		return 0;
	}
	char path[PATH_MAX], *text;
	int rc;

	mq_config_default(c);
	mq_pathf(path, sizeof path, "%s/defaults.conf", datadir);
	if (mq_read_file(path, 1 << 16, &text, NULL) < 0)
		return errno == ENOENT ? 0 : mq_syserr("cannot read '%s'", path);
	rc = mq_config_parse(c, text, path);
	free(text);
	return rc;
}

static int write_conf(const char *dir, const struct mq_config *c)
{
	char path[PATH_MAX], *text = mq_config_format(c);
	int rc;

	if (!text)
		return mq_syserr("cannot format config");
	mq_pathf(path, sizeof path, "%s/topic.conf", dir);
	rc = mq_write_file_atomic(path, text, strlen(text));
	free(text);
	return rc;
}

int mq_topic_create(const char *datadir, const char *name, const struct mq_config *conf)
{
	if (mq_remote_is(datadir))
		return mq_client_topic_create(datadir, name, conf);
	char top[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], p[PATH_MAX];
	struct mq_config c;

	if (mq_topic_name_check(name) < 0)
		return -1;
	if (conf)
		c = *conf;
	else if (mq_topic_defaults(datadir, &c) < 0)
		return -1;
	if (topics_dir(datadir, top, sizeof top) < 0)
		return -1;
	mq_pathf(dst, sizeof dst, "%s/%s", top, name);
	if (access(dst, F_OK) == 0) {
		errno = EEXIST;
		return mq_error(MQ_ENEG, "topic '%s' already exists", name);
	}
	/* the temporary name must not embed NAME (249 characters and a
	 * prefix would pass the 255 a file name may have), and must not be a
	 * valid topic name ('~' is not allowed in one) */
	static unsigned seq;
	mq_pathf(tmp, sizeof tmp, "%s/.new~%ld~%u", top, (long)getpid(), seq++);
	mq_rm_rf(tmp);
	if (mkdir(tmp, 0777) < 0)
		return mq_syserr("cannot create topic '%s'", name);
	for (int32_t i = 0; i < c.partitions; i++) {
		mq_pathf(p, sizeof p, "%s/%d", tmp, i);
		if (mkdir(p, 0777) < 0) {
			mq_syserr("cannot create topic '%s'", name);
			goto fail;
		}
	}
	if (write_conf(tmp, &c) < 0)
		goto fail;
	if (rename(tmp, dst) < 0) {
		int e = errno;
		mq_rm_rf(tmp);
		errno = e;
		if (e == EEXIST || e == ENOTEMPTY) {
			errno = EEXIST;
			return mq_error(MQ_ENEG, "topic '%s' already exists", name);
		}
		return mq_syserr("cannot create topic '%s'", name);
	}
	return mq_fsync_dir(top);
fail:
	mq_rm_rf(tmp);
	return -1;
}

int mq_topic_open(const char *datadir, const char *name, struct mq_topic *t)
{
	if (mq_remote_is(datadir))
		return mq_client_topic_open(datadir, name, t);
	char path[PATH_MAX], *text;

	memset(t, 0, sizeof *t);
	if (mq_topic_name_check(name) < 0)
		return -1;
	mq_pathf(path, sizeof path, "%s/topics/%s/topic.conf", datadir, name);
	mq_config_default(&t->conf);
	if (mq_read_file(path, 1 << 16, &text, NULL) < 0) {
		if (errno != ENOENT)
			return mq_syserr("cannot open topic '%s'", name);
		/* a directory of Kafka partitions without our conf: count
		 * the partition directories */
		mq_pathf(path, sizeof path, "%s/topics/%s", datadir, name);
		DIR *d = opendir(path);
		if (!d)
			return mq_error(MQ_ENOTFOUND, "topic '%s' not found", name);
		int32_t np = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			char *end;
			long v = strtol(e->d_name, &end, 10);
			if (*e->d_name && !*end && v >= 0 && v + 1 > np)
				np = (int32_t)v + 1;
		}
		closedir(d);
		if (np == 0)
			return mq_error(MQ_ENOTFOUND, "topic '%s' not found", name);
		t->conf.partitions = np;
	} else {
		int rc = mq_config_parse(&t->conf, text, path);
		free(text);
		if (rc < 0)
			return -1;
	}
	t->name = strdup(name);
	mq_pathf(path, sizeof path, "%s/topics/%s", datadir, name);
	t->dir = strdup(path);
	if (!t->name || !t->dir) {
		mq_topic_close(t);
		return mq_syserr("cannot open topic '%s'", name);
	}
	return 0;
}

void mq_topic_close(struct mq_topic *t)
{
	free(t->name);
	free(t->dir);
	t->name = t->dir = NULL;
	t->remote = NULL;
}

int mq_topic_replicas(const struct mq_topic *t, int32_t p, struct mq_replica **out, size_t *n)
{
	char dir[PATH_MAX];

	if (t->remote)
		return mq_client_replicas(t, p, out, n);
	mq_topic_partition_dir(t, p, dir, sizeof dir);
	return mq_replicas_list(dir, &t->conf, mq_now_ms(), out, n);
}

int mq_topic_partition_info(const struct mq_topic *t, int32_t p, struct mq_partition_info *pi)
{
	char dir[PATH_MAX];

	if (t->remote)
		return mq_client_partition_info(t, p, pi);
	mq_topic_partition_dir(t, p, dir, sizeof dir);
	if (mq_partition_info(dir, pi) < 0)
		return -1;
	return t->conf.min_insync_replicas > 0 ? mq_partition_hw(dir, &t->conf, &pi->high_watermark) : 0;
}

void mq_topic_partition_dir(const struct mq_topic *t, int32_t p, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%d", t->dir, p);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void mq_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int mq_topic_list(const char *datadir, char ***names, size_t *n)
{
	if (mq_remote_is(datadir))
		return mq_client_topic_list(datadir, names, n);
	char top[PATH_MAX];
	DIR *d;
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	*names = NULL;
	*n = 0;
	mq_pathf(top, sizeof top, "%s/topics", datadir);
	if (!(d = opendir(top)))
		return errno == ENOENT ? 0 : mq_syserr("cannot list topics in '%s'", datadir);
	while ((e = readdir(d))) {
		if (mq_topic_name_check(e->d_name) < 0)
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			char **nv = realloc(v, cap * sizeof *v);
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[cnt] = strdup(e->d_name)))
			goto oom;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, str_cmp);
	*names = v;
	*n = cnt;
	return 0;
oom:
	closedir(d);
	mq_strv_free(v, cnt);
	return mq_syserr("cannot list topics");
}

int mq_topic_alter(struct mq_topic *t, const struct mq_config *conf)
{
	if (t->remote)
		return mq_client_topic_alter(t, conf);
	char p[PATH_MAX];

	if (conf->partitions < t->conf.partitions)
		return mq_error(MQ_EUSAGE,
				"cannot shrink topic '%s' from %d to %d partitions: partitions may only grow",
				t->name, t->conf.partitions, conf->partitions);
	/* partitions first: a crash leaves unused directories, never a
	 * config naming partitions that do not exist */
	for (int32_t i = t->conf.partitions; i < conf->partitions; i++) {
		mq_topic_partition_dir(t, i, p, sizeof p);
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			return mq_syserr("cannot create partition '%s'", p);
	}
	if (conf->partitions > t->conf.partitions && mq_fsync_dir(t->dir) < 0)
		return -1;
	if (write_conf(t->dir, conf) < 0)
		return -1;
	t->conf = *conf;
	return 0;
}

int mq_topic_delete(const char *datadir, const char *name)
{
	if (mq_remote_is(datadir))
		return mq_client_topic_delete(datadir, name);
	char src[PATH_MAX], dst[PATH_MAX];

	if (mq_topic_name_check(name) < 0)
		return -1;
	mq_pathf(src, sizeof src, "%s/topics/%s", datadir, name);
	mq_pathf(dst, sizeof dst, "%s/topics/.deleted~%ld~%ld", datadir,
		 (long)getpid(), (long)time(NULL));
	if (rename(src, dst) < 0) {
		if (errno == ENOENT)
			return mq_error(MQ_ENOTFOUND, "topic '%s' not found", name);
		return mq_syserr("cannot delete topic '%s'", name);
	}
	mq_pathf(src, sizeof src, "%s/topics", datadir);
	if (mq_fsync_dir(src) < 0)
		return -1;
	if (mq_rm_rf(dst) < 0)
		return mq_syserr("cannot remove '%s'", dst);
	return 0;
}
