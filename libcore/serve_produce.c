/*
 * serve_produce.c: mq-serve's produce requests (serve_api.c has the
 * list of requests, mq-serve(1) the reference).
 *
 * A request is taken whole or refused whole: encoded batches are checked
 * (whole, CRC) and appended in one write; lines and JSON lines are all
 * parsed first, then batched by the producer as mq-produce would.  The
 * answer comes only once the batches are in the log (after fdatasync
 * with fsync=1, and once enough followers have them with acks=all).
 * Appenders stay open between requests, one per partition and
 * durability, each behind a mutex; the partition's flock still orders
 * them against other processes.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_priv.h"

typedef enum MHD_Result result;

/* ---- produce ---- */

void mq_srv_close_logs(struct srv *s, const char *prefix)
{
	struct srv_log **pp = &s->logs;

	pthread_mutex_lock(&s->logs_lock);
	while (*pp) {
		struct srv_log *l = *pp;
		if (prefix && strncmp(l->dir, prefix, strlen(prefix))) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		pthread_mutex_lock(&l->lock);
		mq_log_close(l->log);
		pthread_mutex_unlock(&l->lock);
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
	pthread_mutex_unlock(&s->logs_lock);
}

/* The open appender of a partition, locked; NULL on error. */
static struct srv_log *get_log(struct srv *s, const char *dir, const struct mq_config *conf, int fsync)
{
	struct srv_log *l;

	pthread_mutex_lock(&s->logs_lock);
	for (l = s->logs; l; l = l->next)
		if (l->fsync == fsync && !strcmp(l->dir, dir))
			break;
	if (l && memcmp(&l->conf, conf, sizeof *conf)) {
		/* the topic was altered: reopen with its new config */
		pthread_mutex_lock(&l->lock);
		mq_log_close(l->log);
		l->log = NULL;
		pthread_mutex_unlock(&l->lock);
	}
	if (!l) {
		if (!(l = calloc(1, sizeof *l))) {
			pthread_mutex_unlock(&s->logs_lock);
			mq_syserr("cannot open partition '%s'", dir);
			return NULL;
		}
		snprintf(l->dir, sizeof l->dir, "%s", dir);
		l->fsync = fsync;
		pthread_mutex_init(&l->lock, NULL);
		l->next = s->logs;
		s->logs = l;
	}
	pthread_mutex_lock(&l->lock);
	pthread_mutex_unlock(&s->logs_lock);
	if (!l->log) {
		l->conf = *conf;
		if (mq_log_open(&l->log, dir, conf, fsync ? MQ_LOG_FSYNC : 0) < 0) {
			l->log = NULL;
			pthread_mutex_unlock(&l->lock);
			return NULL;
		}
	}
	return l;
}

struct acks {
	json_t *results;
};

static int on_ack(void *arg, int32_t part, const struct mq_batch *b)
{
	struct acks *a = arg;

	json_array_append_new(a->results, json_pack("{s:i,s:I,s:i}", "partition", part, "offset",
						    (json_int_t)b->base_offset, "count",
						    b->last_offset_delta + 1));
	return 0;
}

/* Encoded batches: checked whole, then appended in one write. */
static int produce_batches(struct srv_req *q, struct mq_topic *t, int32_t part, int fsync,
			   struct acks *a)
{
	struct srv *s = q->s;
	struct mq_batch b;
	char dir[PATH_MAX];
	int64_t first, count = 0;
	size_t off;

	if (q->body.len == 0)
		return mq_error(MQ_EUSAGE, "no batches in the request body");
	for (off = 0; off < q->body.len; off += b.size) {
		int rc = mq_batch_parse(q->body.p + off, q->body.len - off, &b);
		if (rc == MQ_BATCH_SHORT)
			return mq_error(MQ_ECORRUPT, "truncated batch at byte %zu of the request", off);
		if (rc == MQ_BATCH_BAD || !mq_batch_crc_ok(&b))
			return mq_error(MQ_ECORRUPT, "corrupt batch at byte %zu of the request%s%s", off,
					rc == MQ_BATCH_BAD ? ": " : ": CRC mismatch",
					rc == MQ_BATCH_BAD ? mq_errmsg() : "");
		if (b.size > (size_t)t->conf.max_message_bytes)
			return mq_error(MQ_ENEG, "batch of %zu bytes is larger than max.message.bytes (%d)",
					b.size, t->conf.max_message_bytes);
		count += b.last_offset_delta + 1;
	}
	if (part < 0) {
		pthread_mutex_lock(&s->lock);
		part = (int32_t)(s->rr++ % t->conf.partitions);
		pthread_mutex_unlock(&s->lock);
	}
	mq_topic_partition_dir(t, part, dir, sizeof dir);
	struct srv_log *l = get_log(s, dir, &t->conf, fsync);
	if (!l)
		return -1;
	int rc = mq_log_append(l->log, q->body.p, q->body.len, &first);
	if (rc < 0) {
		/* after a failed write or sync the appender is not to be reused;
		 * one whose partition was deleted and made anew behind this
		 * server's back is opened again, once */
		int again = mq_errclass() == MQ_ENOTFOUND;
		mq_log_close(l->log);
		l->log = NULL;
		if (again && mq_log_open(&l->log, dir, &t->conf, fsync ? MQ_LOG_FSYNC : 0) == 0 &&
		    (rc = mq_log_append(l->log, q->body.p, q->body.len, &first)) < 0) {
			mq_log_close(l->log);
			l->log = NULL;
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (rc < 0)
		return -1;
	json_array_append_new(a->results, json_pack("{s:i,s:I,s:I}", "partition", part, "offset",
						    (json_int_t)first, "count", (json_int_t)count));
	return 0;
}

/* Lines or JSON lines, batched by the producer as mq-produce would. */
static int produce_records(struct srv_req *q, struct MHD_Connection *c, struct mq_topic *t,
			   int32_t part, int fsync, int json, struct acks *a)
{
	struct mq_producer *p;
	struct mq_producer_opts po = { .fsync = fsync, .partition = part, .on_ack = on_ack, .arg = a,
				       .codec = t->conf.compression >= 0 &&
						mq_codec_can_write(t->conf.compression) ?
						t->conf.compression : MQ_CODEC_NONE };
	const char *key = mq_srv_arg(c, "key");
	const char *text = (const char *)q->body.p, *end = text + q->body.len;
	int64_t now = mq_now_ms();
	int rc = 0;

	/* every line is checked before any is appended: a request is taken
	 * whole or refused whole (batches already written are not undone) */
	for (const char *at = text; at < end;) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		size_t n = (size_t)((nl ? nl : end) - at);
		if (n + (key ? strlen(key) : 0) + MQ_BATCH_HEADER + 32 > (size_t)t->conf.max_message_bytes)
			return mq_error(MQ_ENEG, "a record of %zu bytes is larger than max.message.bytes (%d)",
					n, t->conf.max_message_bytes);
		if (json && n > 0) {
			struct mq_json_record r = { 0 };
			int bad = mq_json_record_parse(at, n, &r) < 0;
			if (!bad && r.partition >= t->conf.partitions)
				bad = mq_error(MQ_EUSAGE, "partition %d out of range: topic '%s' has %d",
					       r.partition, t->name, t->conf.partitions) < 0;
			mq_json_record_free(&r);
			if (bad)
				return -1;
		}
		at += n + 1;
	}
	if (mq_producer_open(&p, t, &po) < 0)
		return -1;
	while (rc >= 0 && text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t n = (size_t)((nl ? nl : end) - text);
		if (!json) {
			rc = mq_producer_add(p, -1, now, key, key ? (int32_t)strlen(key) : -1, text,
					     (int32_t)n, NULL, 0);
		} else if (n > 0) {
			struct mq_json_record r = { 0 };
			if ((rc = mq_json_record_parse(text, n, &r)) == 0) {
				if (r.partition >= t->conf.partitions)
					rc = mq_error(MQ_EUSAGE, "partition %d out of range: topic '%s' has %d",
						      r.partition, t->name, t->conf.partitions);
				else
					rc = mq_producer_add(p, part >= 0 ? part : r.partition,
							     r.timestamp >= 0 ? r.timestamp : now,
							     r.key.p, r.key_null ? -1 : (int32_t)r.key.len,
							     r.value.p, r.value_null ? -1 : (int32_t)r.value.len,
							     r.headers, r.nheaders);
			}
			mq_json_record_free(&r);
		}
		text += n + 1;
	}
	if (rc >= 0)
		rc = mq_producer_flush(p);
	if (mq_producer_close(p) < 0)
		rc = -1;
	return rc < 0 ? -1 : 0;
}

result mq_srv_produce(struct srv_req *q, struct MHD_Connection *c, const char *name, const char *ps)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *fs = mq_srv_arg(c, "fsync"), *acks = mq_srv_arg(c, "acks");
	struct mq_topic t;
	struct acks a;
	int32_t part = -1;
	int rc, fsync = fs && strcmp(fs, "0");
	result res;

	if (mq_srv_open_topic(q, c, name, 1, &t, &res) < 0)
		return res;
	if (ps && (part = mq_srv_partition_of(c, &t, ps)) < 0) {
		mq_topic_close(&t);
		return mq_srv_fail(q, c);
	}
	a.results = json_array();
	if (!ct || !strncmp(ct, "application/vnd.kafka.batch", 27) || !strncmp(ct, "application/octet-stream", 24))
		rc = produce_batches(q, &t, part, fsync, &a);
	else if (!strncmp(ct, "text/plain", 10))
		rc = produce_records(q, c, &t, part, fsync, 0, &a);
	else if (!strncmp(ct, "application/x-ndjson", 20) || !strncmp(ct, "application/json", 16))
		rc = produce_records(q, c, &t, part, fsync, 1, &a);
	else
		rc = mq_error(MQ_EUSAGE, "unsupported content type '%s'", ct);
	/* acks=all: answer once enough followers have every batch */
	for (size_t i = 0; rc == 0 && acks && !strcmp(acks, "all") && i < json_array_size(a.results); i++) {
		json_t *e = json_array_get(a.results, i);
		char dir[PATH_MAX];
		int32_t p = (int32_t)json_integer_value(json_object_get(e, "partition"));
		int64_t end = json_integer_value(json_object_get(e, "offset")) +
			      json_integer_value(json_object_get(e, "count"));
		mq_topic_partition_dir(&t, p, dir, sizeof dir);
		rc = mq_partition_wait_hw(dir, &t.conf, end, mq_srv_arg_int(c, "timeout_ms", 30000, 300000));
	}
	if (rc < 0) {
		int cls = mq_errclass();
		json_decref(a.results);
		mq_topic_close(&t);
		if (cls == MQ_ECORRUPT)
			return mq_srv_error(q, c, 422, cls, mq_errmsg());
		return mq_srv_fail(q, c);
	}
	json_t *j = json_pack("{s:s,s:o}", "topic", t.name, "results", a.results);
	mq_topic_close(&t);
	return mq_srv_json(q, c, 200, j);
}
