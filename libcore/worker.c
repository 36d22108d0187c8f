/*
 * worker.c: mq-consume --exec.  Runs a shell command for a record, or for
 * a group of records with --batch, and says whether they were handled:
 *
 *   stdin          the values, each followed by a newline
 *   MQ_TOPIC       the topic
 *   MQ_PARTITION   the partition
 *   MQ_OFFSET      the (first) record's offset
 *   MQ_KEY         the (first) record's key, unset when null
 *   MQ_COUNT       how many records
 *
 * Exit 0 means handled.  Otherwise the command is run again up to
 * `retries` times, waiting 100 ms, 200 ms, 400 ms ... (at most 10 s)
 * between tries.  Then, with a dead-letter topic, each record is appended
 * there unchanged (key, value, timestamp, headers) plus headers saying
 * where it came from and why, and counts as handled; without one the
 * worker reports failure and the caller stops without committing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

struct mq_worker {
	struct mq_worker_opts o;
	struct mq_topic dlq;
	struct mq_producer *prod;
	volatile sig_atomic_t *stop;
};

int mq_worker_open(struct mq_worker **wp, const struct mq_worker_opts *o)
{
	struct mq_worker *w = calloc(1, sizeof *w);

	if (!w)
		return mq_syserr("cannot start worker");
	w->o = *o;
	if (o->dlq) {
		struct mq_producer_opts po = { .codec = MQ_CODEC_NONE, .partition = -1, .fsync = o->fsync };
		if (mq_topic_open(o->datadir, o->dlq, &w->dlq) < 0) {
			if (mq_errclass() != MQ_ENOTFOUND ||
			    (mq_topic_create(o->datadir, o->dlq, NULL) < 0 && mq_errclass() != MQ_ENEG) ||
			    mq_topic_open(o->datadir, o->dlq, &w->dlq) < 0)
				goto fail;
		}
		if (mq_producer_open(&w->prod, &w->dlq, &po) < 0)
			goto fail;
	}
	*wp = w;
	return 0;
fail:
	mq_topic_close(&w->dlq);
	free(w);
	return -1;
}

void mq_worker_close(struct mq_worker *w)
{
	if (!w)
		return;
	mq_producer_close(w->prod);
	mq_topic_close(&w->dlq);
	free(w);
}

/* Runs the command once; returns its wait status, or -1. */
static int run(struct mq_worker *w, const char *topic, int32_t part,
	       const struct mq_record *recs, size_t n)
{
	int fds[2], status;
	pid_t pid;
	char num[32];

	if (pipe(fds) < 0)
		return mq_syserr("cannot run '%s'", w->o.cmd);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return mq_syserr("cannot run '%s'", w->o.cmd);
	}
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		signal(SIGPIPE, SIG_DFL);
		setenv("MQ_TOPIC", topic, 1);
		snprintf(num, sizeof num, "%d", part);
		setenv("MQ_PARTITION", num, 1);
		snprintf(num, sizeof num, "%lld", (long long)recs[0].offset);
		setenv("MQ_OFFSET", num, 1);
		snprintf(num, sizeof num, "%zu", n);
		setenv("MQ_COUNT", num, 1);
		if (recs[0].key_len >= 0) {
			char *k = strndup((const char *)recs[0].key, (size_t)recs[0].key_len);
			if (k)
				setenv("MQ_KEY", k, 1);
		} else {
			unsetenv("MQ_KEY");
		}
		execl("/bin/sh", "sh", "-c", w->o.cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	for (size_t i = 0; i < n; i++) {
		/* a command that does not read its input is fine */
		if (recs[i].value_len > 0 &&
		    mq_write_all(fds[1], recs[i].value, (size_t)recs[i].value_len) < 0)
			break;
		if (mq_write_all(fds[1], "\n", 1) < 0)
			break;
	}
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return mq_syserr("cannot wait for '%s'", w->o.cmd);
	return status;
}

static void describe(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, n, "status %d", status);
}

static int dead_letter(struct mq_worker *w, const char *topic, int32_t part,
		       const struct mq_record *r, const char *why, int attempts)
{
	struct mq_header hs[72];
	int32_t nh = 0;
	size_t pos = 0;
	char ps[16], os[32], as[16];

	while (nh < 64 && mq_header_next(r, &pos, &hs[nh]) > 0)
		nh++;
	snprintf(ps, sizeof ps, "%d", part);
	snprintf(os, sizeof os, "%lld", (long long)r->offset);
	snprintf(as, sizeof as, "%d", attempts);
#define H(k, v) hs[nh++] = (struct mq_header){ (const uint8_t *)(k), (int32_t)strlen(k), \
					       (const uint8_t *)(v), (int32_t)strlen(v) }
	H("mq.dlq.topic", topic);
	H("mq.dlq.partition", ps);
	H("mq.dlq.offset", os);
	H("mq.dlq.reason", why);
	H("mq.dlq.attempts", as);
#undef H
	return mq_producer_add(w->prod, -1, r->timestamp, r->key, r->key_len, r->value,
			       r->value_len, hs, nh) < 0 ? -1 : 0;
}

int mq_worker_run(struct mq_worker *w, const char *topic, int32_t part,
		  const struct mq_record *recs, size_t n, char *why, size_t whylen)
{
	int status = 0;
	int64_t backoff = 100;

	for (int attempt = 0; attempt <= w->o.retries; attempt++) {
		if (attempt > 0) {
			struct timespec ts = { backoff / 1000, (backoff % 1000) * 1000000 };
			nanosleep(&ts, NULL);
			backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
		}
		if ((status = run(w, topic, part, recs, n)) < 0)
			return -1;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return 0;
		/* interrupted (Ctrl-C reaches the command too): the records
		 * are neither handled nor failed, and stay uncommitted */
		if ((w->o.stop && *w->o.stop) ||
		    (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM)))
			return 3;
	}
	describe(status, why, whylen);
	if (!w->prod)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (dead_letter(w, topic, part, &recs[i], why, w->o.retries + 1) < 0)
			return -1;
	return mq_producer_flush(w->prod) < 0 ? -1 : 2;
}
