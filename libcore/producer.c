/*
 * producer.c: turning a stream of records into batches appended to a
 * topic's partitions, as Kafka's producer accumulator does.
 *
 * Records are batched per partition up to batch_bytes (never past
 * max.message.bytes).  Keyed records go where Kafka's default
 * partitioner puts them (murmur2); unkeyed ones stick to one partition
 * until its batch is flushed, then move to the next (Kafka's sticky
 * partitioner), so they spread batch by batch.  All pending batches
 * together stay under MQ_PRODUCER_MEMORY: past it the largest is flushed.
 * A batch is acknowledged (on_ack) once mq_log_append returned, that is
 * after write(), or after fdatasync with MQ_LOG_FSYNC.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

#define MQ_PRODUCER_MEMORY (16 << 20)

struct pending {
	struct mq_batch_builder bb;
	struct mq_log *log;
	int64_t since;            /* time of the first pending record */
};

struct mq_producer {
	struct mq_topic *topic;
	struct mq_producer_opts o;
	struct pending *parts;
	int32_t nparts;
	int32_t sticky;
	size_t pending_bytes;
};

int mq_producer_open(struct mq_producer **pp, struct mq_topic *t,
		     const struct mq_producer_opts *o)
{
	struct mq_producer *p = calloc(1, sizeof *p);

	if (!p)
		return mq_syserr("cannot open producer");
	p->topic = t;
	p->o = *o;
	if (p->o.acks_timeout_ms <= 0)
		p->o.acks_timeout_ms = 30000;
	if (p->o.batch_bytes <= 0 || p->o.batch_bytes > t->conf.max_message_bytes)
		p->o.batch_bytes = t->conf.max_message_bytes;
	if (p->o.batch_bytes < MQ_BATCH_HEADER + 64)
		p->o.batch_bytes = MQ_BATCH_HEADER + 64;
	p->nparts = t->conf.partitions;
	p->parts = calloc((size_t)p->nparts, sizeof *p->parts);
	if (!p->parts) {
		free(p);
		return mq_syserr("cannot open producer");
	}
	for (int32_t i = 0; i < p->nparts; i++)
		mq_batch_builder_init(&p->parts[i].bb, o->codec);
	p->sticky = (int32_t)((unsigned)mq_now_ms() % (unsigned)p->nparts);
	*pp = p;
	return 0;
}

/* Appends encoded batches to partition i: to its log, or to the server
 * (which assigns the offsets; they are written back into buf here as
 * the log would have). */
static int append(struct mq_producer *p, int32_t i, uint8_t *buf, size_t len, int64_t *first)
{
	struct pending *pd = &p->parts[i];

	if (p->topic->remote) {
		struct mq_batch b;
		int64_t at;
		int flags = (p->o.fsync ? MQ_PRODUCE_FSYNC : 0) | (p->o.acks_all ? MQ_PRODUCE_ACKS_ALL : 0);
		if (mq_client_produce(p->topic, i, buf, len, flags, p->o.acks_timeout_ms, first) < 0)
			return -1;
		at = *first;
		for (size_t off = 0; off < len && mq_batch_parse(buf + off, len - off, &b) > 0; off += b.size) {
			mq_batch_set_offset(buf + off, at, b.leader_epoch);
			at += b.last_offset_delta + 1;
		}
		return 0;
	}
	char dir[PATH_MAX];
	mq_topic_partition_dir(p->topic, i, dir, sizeof dir);
	if (!pd->log && mq_log_open(&pd->log, dir, &p->topic->conf, p->o.fsync ? MQ_LOG_FSYNC : 0) < 0)
		return -1;
	if (mq_log_append(pd->log, buf, len, first) < 0)
		return -1;
	if (!p->o.acks_all)
		return 0;
	/* acks=all: in the log is not enough, the followers must have it */
	struct mq_batch b;
	int64_t end = *first;
	for (size_t off = 0; off < len && mq_batch_parse(buf + off, len - off, &b) > 0; off += b.size)
		end += b.last_offset_delta + 1;
	return mq_partition_wait_hw(dir, &p->topic->conf, end, p->o.acks_timeout_ms);
}

static int flush_one(struct mq_producer *p, int32_t i)
{
	struct pending *pd = &p->parts[i];
	int64_t first;
	size_t sz = mq_batch_builder_size(&pd->bb);

	if (pd->bb.count == 0)
		return 0;
	if (mq_batch_builder_finish(&pd->bb, (size_t)p->topic->conf.max_message_bytes) < 0)
		return -1;
	if (append(p, i, pd->bb.out.p, pd->bb.out.len, &first) < 0)
		return -1;
	if (p->o.on_ack) {
		struct mq_batch b;
		mq_batch_parse(pd->bb.out.p, pd->bb.out.len, &b);
		if (p->o.on_ack(p->o.arg, i, &b) < 0)
			return -1;
	}
	p->pending_bytes -= sz;
	mq_batch_builder_reset(&pd->bb);
	if (i == p->sticky)
		p->sticky = (p->sticky + 1) % p->nparts;
	return 0;
}

int mq_producer_add(struct mq_producer *p, int32_t part, int64_t ts,
		    const void *key, int32_t klen, const void *value, int32_t vlen,
		    const struct mq_header *hs, int32_t nh)
{
	struct pending *pd;
	size_t before, rec = (size_t)(klen > 0 ? klen : 0) + (size_t)(vlen > 0 ? vlen : 0) + 32;

	for (int32_t i = 0; i < nh; i++)
		rec += (size_t)(hs[i].key_len > 0 ? hs[i].key_len : 0) +
		       (size_t)(hs[i].value_len > 0 ? hs[i].value_len : 0) + 10;
	if (rec + MQ_BATCH_HEADER > (size_t)p->topic->conf.max_message_bytes)
		return mq_error(MQ_ENEG, "record of %zu bytes is larger than max.message.bytes (%d)",
				rec, p->topic->conf.max_message_bytes);
	if (part < 0)
		part = p->o.partition >= 0 ? p->o.partition :
		       klen >= 0 ? mq_partition_for_key(key, (size_t)klen, p->nparts) : p->sticky;
	if (part >= p->nparts)
		return mq_error(MQ_EUSAGE, "partition %d out of range: topic '%s' has %d", part,
				p->topic->name, p->nparts);
	pd = &p->parts[part];
	if (pd->bb.count > 0 && mq_batch_builder_size(&pd->bb) + rec > (size_t)p->o.batch_bytes) {
		if (flush_one(p, part) < 0)
			return -1;
		/* an unkeyed record follows the sticky partition on */
		if (klen < 0 && p->o.partition < 0 && part != p->sticky)
			return mq_producer_add(p, -1, ts, key, klen, value, vlen, hs, nh);
	}
	if (pd->bb.count == 0)
		pd->since = mq_now_ms();
	before = mq_batch_builder_size(&pd->bb);
	if (mq_batch_builder_add(&pd->bb, ts, key, klen, value, vlen, hs, nh) < 0)
		return -1;
	p->pending_bytes += mq_batch_builder_size(&pd->bb) - before;
	if (p->pending_bytes > MQ_PRODUCER_MEMORY) {
		int32_t big = 0;
		for (int32_t i = 1; i < p->nparts; i++)
			if (mq_batch_builder_size(&p->parts[i].bb) > mq_batch_builder_size(&p->parts[big].bb))
				big = i;
		if (flush_one(p, big) < 0)
			return -1;
	}
	return part;
}

int mq_producer_append_batches(struct mq_producer *p, int32_t part, uint8_t *buf, size_t len,
			       int64_t *first)
{
	if (part < 0) {
		part = p->o.partition >= 0 ? p->o.partition : p->sticky;
		p->sticky = (p->sticky + 1) % p->nparts;
	}
	if (part >= p->nparts)
		return mq_error(MQ_EUSAGE, "partition %d out of range: topic '%s' has %d", part,
				p->topic->name, p->nparts);
	if (append(p, part, buf, len, first) < 0)
		return -1;
	if (p->o.on_ack) {
		struct mq_batch b;
		for (size_t off = 0; off < len; off += b.size) {
			mq_batch_parse(buf + off, len - off, &b);
			if (p->o.on_ack(p->o.arg, part, &b) < 0)
				return -1;
		}
	}
	return part;
}

int mq_producer_flush(struct mq_producer *p)
{
	for (int32_t i = 0; i < p->nparts; i++)
		if (flush_one(p, i) < 0)
			return -1;
	return 0;
}

int64_t mq_producer_deadline(const struct mq_producer *p)
{
	int64_t d = -1;

	for (int32_t i = 0; i < p->nparts; i++)
		if (p->parts[i].bb.count > 0 && (d < 0 || p->parts[i].since < d))
			d = p->parts[i].since;
	return d < 0 ? -1 : d + p->o.linger_ms;
}

int mq_producer_close(struct mq_producer *p)
{
	int rc = 0;

	if (!p)
		return 0;
	for (int32_t i = 0; i < p->nparts; i++) {
		if (mq_log_close(p->parts[i].log) < 0)
			rc = -1;
		mq_batch_builder_free(&p->parts[i].bb);
	}
	free(p->parts);
	free(p);
	return rc;
}
