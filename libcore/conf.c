/*
 * conf.c: topic configuration, as topic.conf and `mq-topic -c KEY=VALUE`
 * spell it: Kafka's key names and meanings, one "key=value" a line.
 *
 *   partitions=3
 *   retention.ms=604800000
 *   segment.bytes=1073741824
 *   compression.type=producer
 *   cleanup.policy=delete
 *
 * Values are plain integers as Kafka writes them; sizes and durations may
 * also use the mq suffixes (segment.bytes=16M, retention.ms=7d).  The
 * ranges are Kafka's, with two differences: partitions (a topic property
 * in Kafka, a key here) is 1..100000, and min.insync.replicas counts
 * followers only (default 0), where Kafka counts the leader too (default
 * 1): min.insync.replicas=1 in mq asks what 2 asks in Kafka.
 *
 * compression.type takes Kafka's values: producer (keep what the
 * producer sent: -1 in struct mq_config), uncompressed (also spelt none),
 * gzip, snappy, lz4, zstd.  The config may name any of them; the producer
 * decides what it can write.  cleanup.policy is delete or compact (not
 * Kafka's combined "compact,delete").  Unknown keys are an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

enum { K_INT, K_SIZE, K_DURATION, K_CODEC, K_POLICY };

struct key {
	const char *name;
	int kind;
	int64_t min, max;
	size_t off;               /* of the field in struct mq_config */
	size_t width;             /* 4 (int32_t, int) or 8 (int64_t) */
};

#define F(field) offsetof(struct mq_config, field), sizeof(((struct mq_config *)0)->field)

/* In the order of mq_config_keys and of mq_config_format's output. */
static const struct key keys[] = {
	{ "partitions", K_INT, 1, 100000, F(partitions) },
	{ "retention.ms", K_DURATION, -1, INT64_MAX, F(retention_ms) },
	{ "retention.bytes", K_SIZE, -1, INT64_MAX, F(retention_bytes) },
	{ "segment.bytes", K_SIZE, 14, INT32_MAX, F(segment_bytes) },
	{ "segment.ms", K_DURATION, 1, INT64_MAX, F(segment_ms) },
	{ "compression.type", K_CODEC, 0, 0, F(compression) },
	{ "max.message.bytes", K_SIZE, 0, INT32_MAX, F(max_message_bytes) },
	{ "cleanup.policy", K_POLICY, 0, 0, F(compact) },
	{ "min.insync.replicas", K_INT, 0, INT32_MAX, F(min_insync_replicas) },
	{ "index.interval.bytes", K_SIZE, 0, INT32_MAX, F(index_interval_bytes) },
	{ "replica.lag.time.max.ms", K_DURATION, 1, INT64_MAX, F(replica_lag_max_ms) },
};
#define NKEYS (sizeof keys / sizeof keys[0])

const char *const mq_config_keys[] = {
	"partitions", "retention.ms", "retention.bytes", "segment.bytes",
	"segment.ms", "compression.type", "max.message.bytes",
	"cleanup.policy", "min.insync.replicas", "index.interval.bytes",
	"replica.lag.time.max.ms", NULL,
};

/* compression.type values; the first name of a codec is the one written.
 * Kept here rather than borrowed from codec.c: these are the config's
 * words ("producer", "uncompressed"), not the codec's. */
static const struct { const char *name; int codec; } codecs[] = {
	{ "producer", -1 },
	{ "uncompressed", MQ_CODEC_NONE },
	{ "none", MQ_CODEC_NONE },
	{ "gzip", MQ_CODEC_GZIP },
	{ "snappy", MQ_CODEC_SNAPPY },
	{ "lz4", MQ_CODEC_LZ4 },
	{ "zstd", MQ_CODEC_ZSTD },
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static const struct key *lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int64_t load(const struct mq_config *c, const struct key *k)
{
	const char *p = (const char *)c + k->off;
	int32_t v32;
	int64_t v64;

	if (k->width == sizeof v64) {
		memcpy(&v64, p, sizeof v64);
		return v64;
	}
	memcpy(&v32, p, sizeof v32);
	return v32;
}

static void store(struct mq_config *c, const struct key *k, int64_t v)
{
	char *p = (char *)c + k->off;
	int32_t v32 = (int32_t)v;

	if (k->width == sizeof v)
		memcpy(p, &v, sizeof v);
	else
		memcpy(p, &v32, sizeof v32);
}

void mq_config_default(struct mq_config *c)
{
	memset(c, 0, sizeof *c);
	c->partitions = 1;
	c->retention_ms = 604800000;          /* 7 days */
	c->retention_bytes = -1;
	c->segment_bytes = 1073741824;        /* 1 GiB */
	c->segment_ms = 604800000;
	c->compression = -1;                  /* producer */
	c->max_message_bytes = 1048588;       /* 1 MiB + batch overhead */
	c->compact = 0;
	c->min_insync_replicas = 0;
	c->index_interval_bytes = 4096;
	c->replica_lag_max_ms = 30000;
}

/* The value text of key k as a number, in the key's range. */
static int number(const struct key *k, const char *value, int64_t *v)
{
	const char *want = "an integer";
	int r = -1;

	if (mq_parse_int(value, INT64_MIN, INT64_MAX, v) == 0)
		r = 0;
	else if (k->kind == K_SIZE) {
		want = "a size like 16M";
		r = mq_parse_size(value, v);
	} else if (k->kind == K_DURATION) {
		want = "a duration like 7d";
		r = mq_parse_duration(value, v);
	}
	if (r < 0)
		return mq_error(MQ_EUSAGE, "invalid value '%s' for '%s': expected %s",
				value, k->name, want);
	if (*v < k->min || *v > k->max) {
		if (k->max == INT64_MAX)
			return mq_error(MQ_EUSAGE, "invalid value '%s' for '%s': "
					"must be at least %lld", value, k->name,
					(long long)k->min);
		return mq_error(MQ_EUSAGE, "invalid value '%s' for '%s': must be "
				"between %lld and %lld", value, k->name,
				(long long)k->min, (long long)k->max);
	}
	return 0;
}

int mq_config_set(struct mq_config *c, const char *key, const char *value)
{
	const struct key *k = lookup(key);
	int64_t v;
	size_t i;

	if (!k)
		return mq_error(MQ_EUSAGE, "unknown config '%s'", key);
	switch (k->kind) {
	case K_CODEC:
		for (i = 0; i < NCODECS; i++)
			if (strcmp(codecs[i].name, value) == 0)
				break;
		if (i == NCODECS)
			return mq_error(MQ_EUSAGE, "invalid value '%s' for '%s': "
					"expected producer, uncompressed, gzip, "
					"snappy, lz4 or zstd", value, key);
		c->compression = codecs[i].codec;
		return 0;
	case K_POLICY:
		if (strcmp(value, "delete") == 0)
			c->compact = 0;
		else if (strcmp(value, "compact") == 0)
			c->compact = 1;
		else
			return mq_error(MQ_EUSAGE, "invalid value '%s' for '%s': "
					"expected delete or compact", value, key);
		return 0;
	default:
		if (number(k, value, &v) < 0)
			return -1;
		store(c, k, v);
		return 0;
	}
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*end = '\0';
	return s;
}

/* Keys the text does not name keep their values in c, so defaults can be
 * layered under a file.  On error c is left as it was. */
int mq_config_parse(struct mq_config *c, const char *text, const char *file)
{
	struct mq_config tmp = *c;
	char *copy, *line, *next, *eq, *key, *value, why[1024];
	int lineno = 0, cls = file ? MQ_ECORRUPT : MQ_EUSAGE;

	if (!(copy = strdup(text)))
		return mq_syserr("cannot parse config");
	for (line = copy; line; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		key = trim(line, line + strlen(line));
		if (!*key || *key == '#')
			continue;
		if (!(eq = strchr(key, '='))) {
			mq_error(MQ_EUSAGE, "expected key=value, not '%s'", key);
			goto bad;
		}
		value = trim(eq + 1, eq + 1 + strlen(eq + 1));
		key = trim(key, eq);
		if (mq_config_set(&tmp, key, value) < 0)
			goto bad;
	}
	free(copy);
	*c = tmp;
	return 0;
bad:
	free(copy);
	/* mq_error formats into the buffer mq_errmsg() returns: copy first. */
	snprintf(why, sizeof why, "%s", mq_errmsg());
	if (file)
		return mq_error(cls, "invalid config in '%s' line %d: %s", file,
				lineno, why);
	return mq_error(cls, "invalid config line %d: %s", lineno, why);
}

/* -1 (MQ_EUSAGE) when the value does not fit in n bytes with its NUL. */
int mq_config_get(const struct mq_config *c, const char *key, char *buf, size_t n)
{
	const struct key *k = lookup(key);
	const char *name = NULL;
	size_t i;
	int len;

	if (!k)
		return mq_error(MQ_EUSAGE, "unknown config '%s'", key);
	switch (k->kind) {
	case K_CODEC:
		name = "unknown";
		for (i = 0; i < NCODECS; i++)
			if (codecs[i].codec == c->compression) {
				name = codecs[i].name;
				break;
			}
		len = snprintf(buf, n, "%s", name);
		break;
	case K_POLICY:
		len = snprintf(buf, n, "%s", c->compact ? "compact" : "delete");
		break;
	default:
		len = snprintf(buf, n, "%lld", (long long)load(c, k));
		break;
	}
	if (len < 0 || (size_t)len >= n)
		return mq_error(MQ_EUSAGE, "value of '%s' too long for its buffer", key);
	return 0;
}

char *mq_config_format(const struct mq_config *c)
{
	char *out, val[32];
	size_t i, len = 0, cap = 1;

	for (i = 0; i < NKEYS; i++)
		cap += strlen(keys[i].name) + 1 + sizeof val + 1;
	if (!(out = malloc(cap))) {
		mq_syserr("cannot format config");
		return NULL;
	}
	for (i = 0; i < NKEYS; i++) {
		if (mq_config_get(c, keys[i].name, val, sizeof val) < 0) {
			free(out);
			return NULL;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s=%s\n",
					keys[i].name, val);
	}
	out[len] = '\0';
	return out;
}
