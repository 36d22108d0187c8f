/*
 * replicate.c: a follower, as Kafka's replica fetcher, for mq-replicate.
 *
 * For each partition the follower fetches from its own log end offset,
 * checks every batch (whole, CRC, contiguous offsets) and appends the
 * bytes unchanged, offsets included (mq_log_append_raw).  It rolls a
 * segment exactly where the leader did (each fetch names the segment
 * its bytes come from), so every .log file ends up identical to the
 * leader's.  The log itself is the checkpoint: after a crash, recovery
 * leaves a prefix of whole batches and the next run fetches from its
 * end.  A batch that fails its check is fetched again, a few times,
 * and never written.
 *
 * Before the first append the follower checks that its history is the
 * leader's (replicate_diverge.c).
 *
 * The source is a data directory (read directly; positions are written
 * to it as a server would) or an address (remote.c; every fetch carries
 * the follower's id and position).  Following, an idle follower waits on
 * the source for any partition to grow, and reports its position at
 * least every ten seconds, so that it stays in the in-sync set.
 *
 * Catching up, the next chunk is fetched by a second thread while this
 * one is written, so that the link and the disk work at the same time.
 * Such a fetch is ahead of what is written: it names the follower's log
 * end as its position, so that no producer waiting for acks=all is told
 * of records this follower does not have yet.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "log_priv.h"

#define FETCH_BYTES (32 << 20)
#define WRITE_BYTES (512 << 10)
#define ROUND_BYTES (256 << 20)   /* at most from one partition before the next */
#define REFETCHES 5
#define IDLE_WAIT_MS 10000

#include "replicate_priv.h"

/* Whole batches at offset from the source into c; position is how far
 * this follower's log goes (-1: to offset). */
int mq_rep_fetch(struct rep *r, struct part *pt, int64_t offset, int64_t position, int64_t max,
		 int64_t wait, struct chunk *c)
{
	c->len = 0;
	if (r->remote) {
		if (mq_client_fetch(pt->src, pt->p, offset, max, wait, r->o->id, position, &c->resp) < 0)
			return -1;
		c->seg = c->resp.seg_base;
		c->start = c->resp.log_start;
		c->end = c->resp.log_end;
		c->hw = c->resp.high_watermark;
		c->data = c->resp.body.p;
		c->len = c->resp.body.len;
		return 0;
	}
	struct mq_fetch f;
	/* a source this follower may not write to just has no high watermark */
	mq_replica_report(pt->sdir, &pt->src->conf, r->o->id, position < 0 ? offset : position);
	if (mq_fetch_range(pt->sdir, offset, max, -1, &f) < 0)
		return -1;
	c->seg = f.seg_base;
	c->start = f.pi.log_start;
	c->end = f.pi.log_end;
	if (mq_partition_hw(pt->sdir, &pt->src->conf, &c->hw) < 0)
		c->hw = -1;
	if (f.fd < 0)
		return 0;
	int rc = mq_buf_reserve(&c->buf, (size_t)f.len) < 0 ? -1 :
		 mq_pread_full(f.fd, c->buf.p, (size_t)f.len, f.pos) != f.len ? -1 : 0;
	close(f.fd);
	if (rc < 0)
		return mq_syserr("cannot read from '%s'", pt->sdir);
	c->data = c->buf.p;
	c->len = (size_t)f.len;
	return 0;
}

/* Checks the batches in c: whole, contiguous from offset, and their
 * CRCs when crc; sets c->next. */
static int check(struct chunk *c, int64_t offset, int crc)
{
	struct mq_batch b;
	size_t off;

	for (off = 0; off < c->len; off += b.size) {
		int rc = mq_batch_parse(c->data + off, c->len - off, &b);
		if (rc != MQ_BATCH_OK)
			return mq_error(MQ_ECORRUPT, "%s batch at offset %lld", rc == MQ_BATCH_SHORT ?
					"truncated" : "invalid", (long long)offset);
		if (crc && !mq_batch_crc_ok(&b))
			return mq_error(MQ_ECORRUPT, "CRC mismatch in the batch at offset %lld",
					(long long)b.base_offset);
		if (b.base_offset != offset)
			return mq_error(MQ_ECORRUPT, "batch at offset %lld where %lld was expected",
					(long long)b.base_offset, (long long)offset);
		offset = mq_batch_last_offset(&b) + 1;
	}
	c->next = offset;
	return 0;
}

/* Appends what a fetch brought in writes of whole batches of about
 * WRITE_BYTES: the page cache takes pieces of that size much faster
 * than one write of a whole fetch. */
static int append(struct part *pt, const uint8_t *p, size_t len)
{
	struct mq_batch b;

	while (len > 0) {
		size_t n = 0;
		while (n < len && (n == 0 || n < WRITE_BYTES) &&
		       mq_batch_parse(p + n, len - n, &b) == MQ_BATCH_OK && n + b.size <= len) {
			if (n > 0 && n + b.size > WRITE_BYTES)
				break;
			n += b.size;
		}
		if (n == 0)
			n = len;   /* cannot happen: check() passed every batch */
		if (mq_log_append_raw(pt->log, p, n) < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* A follower's consumers see what the leader's do: its high watermark
 * follows the leader's, as far as this log goes. */
static int follow_hw(struct part *pt)
{
	char path[PATH_MAX];
	int64_t old, hw = pt->hw < pt->end ? pt->hw : pt->end;

	if (pt->dst->conf.min_insync_replicas == 0 || hw < 0)
		return 0;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, pt->dir);
	if (mq_checkpoint_read(path, &old) == 0 && old >= hw)
		return 0;
	return mq_checkpoint_write(path, hw, 0);
}

/* A fetch at the log end, checked; fetched again when a batch fails its
 * check.  With have, c already holds one, not yet checked. */
static int get(struct rep *r, struct part *pt, struct chunk *c, int have)
{
	for (int tries = 1;; tries++, have = 0) {
		if (!have && mq_rep_fetch(r, pt, pt->end, -1, FETCH_BYTES, 0, c) < 0) {
			struct mq_partition_info si;
			char why[1024];
			int cls = mq_errclass();
			/* out of range: did retention pass us? */
			snprintf(why, sizeof why, "%s", mq_errmsg());
			if (cls == MQ_ENOTFOUND &&
			    (r->remote ? mq_client_partition_info(pt->src, pt->p, &si) :
					 mq_partition_info(pt->sdir, &si)) == 0 && pt->end < si.log_start)
				return mq_error(MQ_ENOTFOUND,
						"'%s' partition %d: the leader's log now starts at %lld, past this "
						"follower's end %lld (retention); --reset starts over from there",
						pt->src->name, pt->p, (long long)si.log_start, (long long)pt->end);
			return mq_error(cls, "%s", why);
		}
		if (check(c, pt->end, 1) == 0)
			return 0;
		if (tries == REFETCHES)
			return mq_error(MQ_ECORRUPT, "'%s' partition %d: %s, %d times in a row", pt->src->name,
					pt->p, mq_errmsg(), tries);
		if (r->o->note) {
			char msg[512];
			snprintf(msg, sizeof msg, "'%s' partition %d: %s; fetching again", pt->src->name,
				 pt->p, mq_errmsg());
			r->o->note(r->o->arg, msg);
		}
	}
}

/* Writes what c brought at the log end, where the leader's segments
 * begin; the high watermark follows. */
static int put(struct rep *r, struct part *pt, const struct chunk *c)
{
	if (!pt->log && mq_log_open(&pt->log, pt->dir, &pt->dst->conf,
				    MQ_LOG_FOLLOWER | (r->o->fsync ? MQ_LOG_FSYNC : 0)) < 0)
		return -1;
	/* the leader's segments, where it has them */
	if (c->seg >= 0 && c->seg == pt->end && mq_log_roll_at(pt->log, c->seg) < 0)
		return -1;
	if (c->len > 0) {
		if (append(pt, c->data, c->len) < 0)
			return -1;
		pt->end = c->next;
	}
	pt->hw = c->hw;
	if (follow_hw(pt) < 0)
		return -1;
	if (c->len > 0 && r->o->progress)
		r->o->progress(r->o->arg, pt->src->name, pt->p, c->next, c->end);
	return 0;
}

/* A fetch of the next chunk while this one is written.  Its CRCs are
 * checked later, by the main thread, which has time for it; errors are
 * left to the fetch in the main thread that follows a failed one. */
struct ahead {
	pthread_t th;
	struct rep *r;
	struct part *pt;
	struct chunk *c;
	int64_t offset, position;
	int rc;
};

static void *fetch_ahead(void *arg)
{
	struct ahead *a = arg;

	a->rc = mq_rep_fetch(a->r, a->pt, a->offset, a->position, FETCH_BYTES, 0, a->c) < 0 ? -1 :
		check(a->c, a->offset, 0);
	return NULL;
}

/* Starts one; signals stay with the main thread. */
static int start_ahead(struct ahead *a)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&a->th, NULL, fetch_ahead, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 0 : -1;
}

/* Once every partition is caught up, the memory of the catch-up goes
 * back: a following follower keeps only what small fetches need. */
static void shrink(struct rep *r)
{
	for (size_t i = 0; i < 2; i++) {
		struct chunk *c = &r->ck[i];
		if (c->resp.body.cap > (1 << 20))
			mq_response_free(&c->resp);
		if (c->buf.cap > (1 << 20))
			mq_buf_free(&c->buf);
	}
}

/* Fetches and appends for a partition, up to ROUND_BYTES: 1 when
 * something was appended. */
static int step(struct rep *r, struct part *pt)
{
	struct chunk *c = &r->ck[0];
	int64_t round = 0;
	int have = 0;   /* c: 0 nothing, 1 fetched ahead (CRCs not checked), 2 checked */

	if (!pt->checked) {
		if (mq_rep_reconcile(r, pt) < 0)
			return -1;
		pt->checked = 1;
	}
	for (;;) {
		if (have == 0 && get(r, pt, c, 0) < 0)
			return -1;
		pt->idle = c->len == 0;
		round += (int64_t)c->len;
		/* catching up: the next chunk comes while this one is checked
		 * and written */
		struct ahead a = { .r = r, .pt = pt, .c = c == r->ck ? &r->ck[1] : &r->ck[0],
				   .offset = c->next, .position = pt->end };
		int more = !pt->idle && c->end > c->next && round < ROUND_BYTES && !*r->o->stop &&
			   start_ahead(&a) == 0;
		if (have == 1 && check(c, pt->end, 1) < 0) {
			/* what came after a bad batch goes too */
			if (more)
				pthread_join(a.th, NULL);
			if (get(r, pt, c, 1) < 0)   /* says so, and fetches again */
				return -1;
			have = 2;
			continue;
		}
		int rc = put(r, pt, c);
		if (more)
			pthread_join(a.th, NULL);
		if (rc < 0)
			return -1;
		if (pt->idle)
			return 0;
		if (!more || *r->o->stop)
			return 1;
		c = a.c;
		have = a.rc == 0;   /* else fetched again here, to say why */
	}
}

/* The topics to follow: opened at the source, created or grown here. */
static int open_topics(struct rep *r)
{
	const struct mq_replicate_opts *o = r->o;
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (o->ntopics == 0) {
		if (mq_topic_list(o->source, &names, &n) < 0)
			return -1;
	} else {
		if (!(names = calloc(o->ntopics, sizeof *names)))
			return mq_syserr("cannot replicate");
		for (size_t i = 0; i < o->ntopics; i++)
			if (!(names[n++] = strdup(o->topics[i])))
				goto out;
	}
	/* keep what is open; add what is new */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < r->ntopics && strcmp(r->src[k].name, names[i]))
			k++;
		if (k == r->ntopics) {
			struct mq_topic *ns = realloc(r->src, (k + 1) * sizeof *ns);
			struct mq_topic *nd = ns ? realloc(r->dst, (k + 1) * sizeof *nd) : NULL;
			if (ns)
				r->src = ns;
			if (!nd) {
				mq_syserr("cannot replicate");
				goto out;
			}
			r->dst = nd;
			if (mq_topic_open(o->source, names[i], &r->src[k]) < 0)
				goto out;
			if (mq_topic_open(o->datadir, names[i], &r->dst[k]) < 0) {
				if (mq_errclass() != MQ_ENOTFOUND ||
				    (mq_topic_create(o->datadir, names[i], &r->src[k].conf) < 0 &&
				     mq_errclass() != MQ_ENEG) ||
				    mq_topic_open(o->datadir, names[i], &r->dst[k]) < 0) {
					mq_topic_close(&r->src[k]);
					goto out;
				}
			}
			r->ntopics++;
		} else {
			/* the leader may have grown the topic */
			mq_topic_close(&r->src[k]);
			if (mq_topic_open(o->source, names[i], &r->src[k]) < 0)
				goto out;
		}
		struct mq_topic *s = &r->src[k], *d = &r->dst[k];
		if (s->conf.partitions > d->conf.partitions) {
			struct mq_config c = d->conf;
			c.partitions = s->conf.partitions;
			if (mq_topic_alter(d, &c) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	mq_strv_free(names, n);
	return rc;
}

/* Partitions of every open topic (after open_topics, which may have
 * added topics or partitions, and moved the topic arrays). */
static int list_parts(struct rep *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->ntopics; i++)
		n += (size_t)r->src[i].conf.partitions;
	if (n > r->nparts) {
		struct part *np = realloc(r->parts, n * sizeof *np);
		if (!np)
			return mq_syserr("cannot replicate");
		r->parts = np;
	}
	/* existing ones keep their place: topics and partitions only grow,
	 * and are laid out topic by topic, so new ones go at the end */
	for (size_t k = 0; k < r->nparts; k++) {
		r->parts[k].src = &r->src[r->parts[k].ti];
		r->parts[k].dst = &r->dst[r->parts[k].ti];
	}
	size_t k = r->nparts;
	for (size_t i = 0; i < r->ntopics; i++)
		for (int32_t p = 0; p < r->src[i].conf.partitions; p++) {
			int known = 0;
			for (size_t j = 0; j < r->nparts && !known; j++)
				known = r->parts[j].ti == i && r->parts[j].p == p;
			if (known)
				continue;
			struct part *pt = &r->parts[k++];
			memset(pt, 0, sizeof *pt);
			pt->ti = i;
			pt->src = &r->src[i];
			pt->dst = &r->dst[i];
			pt->p = p;
			mq_topic_partition_dir(pt->dst, p, pt->dir, sizeof pt->dir);
			if (!r->remote) {
				mq_topic_partition_dir(pt->src, p, pt->sdir, sizeof pt->sdir);
				if (r->ino >= 0)
					inotify_add_watch(r->ino, pt->sdir, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
			}
		}
	r->nparts = n;
	return 0;
}

/* Waits (following) until a source partition may have more. */
static int wait_source(struct rep *r, int64_t ms)
{
	if (r->remote) {
		struct mq_tp *tps = calloc(r->nparts + 1, sizeof *tps);
		int64_t *offs = calloc(r->nparts + 1, sizeof *offs);
		int rc = -1;
		if (tps && offs) {
			for (size_t i = 0; i < r->nparts; i++) {
				tps[i] = (struct mq_tp){ r->parts[i].src->name, r->parts[i].p };
				offs[i] = r->parts[i].end;
			}
			rc = mq_client_wait(r->src[0].remote, tps, offs, r->nparts, ms, r->o->id);
		}
		free(tps);
		free(offs);
		return rc;
	}
	struct pollfd pf = { .fd = r->ino, .events = POLLIN };
	char buf[4096];
	poll(&pf, r->ino >= 0 ? 1 : 0, (int)(r->ino >= 0 ? ms : 100));
	while (r->ino >= 0 && read(r->ino, buf, sizeof buf) > 0)
		;
	return 0;
}

/* A link that dropped is worth waiting for; a refused token is not. */
static int transient(void)
{
	long st = mq_remote_last_status();

	return mq_errclass() == MQ_EREMOTE && st != 401 && st != 403;
}

int mq_replicate_lock(const char *datadir)
{
	char path[PATH_MAX];
	int fd;

	mq_pathf(path, sizeof path, "%s/replicate.lock", datadir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0)
		return mq_syserr("cannot lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return mq_error(MQ_ENEG, "another mq-replicate is copying into '%s'", datadir);
		errno = e;
		return mq_syserr("cannot lock '%s'", path);
	}
	return fd;   /* held until exit */
}

int mq_replicate_run(const struct mq_replicate_opts *o)
{
	struct rep r = { .o = o, .remote = mq_remote_is(o->source), .ino = -1 };
	int64_t backoff = 100, last_list = 0;
	int rc = -1;

	if (!r.remote && (r.ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
		r.ino = -1;
	while (!*o->stop) {
		int moved = 0, err = 0;
		if (mq_now_ms() - last_list > IDLE_WAIT_MS || r.ntopics == 0) {
			if (open_topics(&r) < 0 || list_parts(&r) < 0)
				err = 1;
			last_list = mq_now_ms();
		}
		for (size_t i = 0; !err && i < r.nparts && !*o->stop; i++) {
			int s = step(&r, &r.parts[i]);
			if (s < 0)
				err = 1;
			else
				moved |= s;
		}
		if (err) {
			if (*o->stop)
				break;   /* interrupted: what was appended stays */
			/* a dropped link is waited out when following */
			if (!o->follow || !transient())
				goto out;
			if (o->note)
				o->note(o->arg, mq_errmsg());
			struct timespec ts = { backoff / 1000, (backoff % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
			for (size_t i = 0; i < r.nparts; i++)
				r.parts[i].checked = 0;
			continue;
		}
		backoff = 100;
		if (moved)
			continue;
		shrink(&r);
		if (!o->follow)
			break;
		if (wait_source(&r, IDLE_WAIT_MS) < 0 && !transient() && !*o->stop)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < r.nparts; i++)
		if (mq_log_close(r.parts[i].log) < 0 && rc == 0)
			rc = -1;
	for (size_t i = 0; i < r.ntopics; i++) {
		mq_topic_close(&r.src[i]);
		mq_topic_close(&r.dst[i]);
	}
	free(r.src);
	free(r.dst);
	free(r.parts);
	for (size_t i = 0; i < 2; i++) {
		mq_response_free(&r.ck[i].resp);
		mq_buf_free(&r.ck[i].buf);
	}
	if (r.ino >= 0)
		close(r.ino);
	return rc;
}
