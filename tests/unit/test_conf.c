/*
 * test_conf.c: topic configuration (conf.c): Kafka's defaults, setting
 * and reading back every key, the refusals (unknown keys, bad values,
 * values out of Kafka's ranges), parsing topic.conf text with comments,
 * whitespace and bad lines, and format -> parse round trips.
 */
#include <stdlib.h>

#include "mq.h"
#include "unit.h"

static void check_get(const struct mq_config *c, const char *key, const char *want)
{
	char buf[64] = "";
	int r = mq_config_get(c, key, buf, sizeof buf);

	CHECK(r == 0 && strcmp(buf, want) == 0, "%s reads '%s' (got '%s')", key, want, buf);
}

/* Sets key=value on a default config, then reads it back as want. */
static void check_set(const char *key, const char *value, const char *want)
{
	struct mq_config c;
	char buf[64] = "";

	mq_config_default(&c);
	CHECK(mq_config_set(&c, key, value) == 0 &&
	      mq_config_get(&c, key, buf, sizeof buf) == 0 && strcmp(buf, want) == 0,
	      "set %s=%s reads '%s' (got '%s')", key, value, want, buf);
}

static void check_set_bad(const char *key, const char *value, const char *msg)
{
	struct mq_config c, d;
	int r;

	mq_config_default(&c);
	d = c;
	r = mq_config_set(&c, key, value);
	CHECK(r == -1 && mq_errclass() == MQ_EUSAGE && strcmp(mq_errmsg(), msg) == 0 &&
	      memcmp(&c, &d, sizeof c) == 0,
	      "set %s=%s refused: %s (got %s)", key, value, msg, mq_errmsg());
}

static void test_defaults(void)
{
	struct mq_config c;

	memset(&c, 0x55, sizeof c);
	mq_config_default(&c);
	CHECK_EQ_INT(c.partitions, 1, "default partitions");
	CHECK_EQ_INT(c.retention_ms, 604800000, "default retention.ms (7 days)");
	CHECK_EQ_INT(c.retention_bytes, -1, "default retention.bytes");
	CHECK_EQ_INT(c.segment_bytes, 1073741824, "default segment.bytes");
	CHECK_EQ_INT(c.segment_ms, 604800000, "default segment.ms");
	CHECK_EQ_INT(c.compression, -1, "default compression.type producer");
	CHECK_EQ_INT(c.max_message_bytes, 1048588, "default max.message.bytes");
	CHECK_EQ_INT(c.compact, 0, "default cleanup.policy delete");
	CHECK_EQ_INT(c.min_insync_replicas, 0, "default min.insync.replicas (followers)");
	CHECK_EQ_INT(c.index_interval_bytes, 4096, "default index.interval.bytes");
	check_get(&c, "compression.type", "producer");
	check_get(&c, "cleanup.policy", "delete");
	check_get(&c, "retention.bytes", "-1");
}

static void test_set(void)
{
	struct mq_config c;

	check_set("partitions", "12", "12");
	check_set("partitions", "100000", "100000");
	check_set("retention.ms", "86400000", "86400000");
	check_set("retention.ms", "-1", "-1");
	check_set("retention.ms", "0", "0");
	check_set("retention.ms", "7d", "604800000");
	check_set("retention.ms", "90m", "5400000");
	check_set("retention.bytes", "-1", "-1");
	check_set("retention.bytes", "1G", "1073741824");
	check_set("retention.bytes", "10000000000", "10000000000");
	check_set("segment.bytes", "16M", "16777216");
	check_set("segment.bytes", "14", "14");
	check_set("segment.bytes", "2147483647", "2147483647");
	check_set("segment.ms", "1h", "3600000");
	check_set("segment.ms", "1", "1");
	check_set("compression.type", "producer", "producer");
	check_set("compression.type", "uncompressed", "uncompressed");
	check_set("compression.type", "none", "uncompressed");
	check_set("compression.type", "gzip", "gzip");
	check_set("compression.type", "snappy", "snappy");
	check_set("compression.type", "lz4", "lz4");
	check_set("compression.type", "zstd", "zstd");
	check_set("max.message.bytes", "2M", "2097152");
	check_set("max.message.bytes", "0", "0");
	check_set("cleanup.policy", "compact", "compact");
	check_set("cleanup.policy", "delete", "delete");
	check_set("min.insync.replicas", "2", "2");
	check_set("min.insync.replicas", "0", "0");
	check_set("index.interval.bytes", "8K", "8192");
	check_set("index.interval.bytes", "0", "0");

	mq_config_default(&c);
	mq_config_set(&c, "compression.type", "lz4");
	CHECK_EQ_INT(c.compression, MQ_CODEC_LZ4, "lz4 is MQ_CODEC_LZ4");
	mq_config_set(&c, "compression.type", "uncompressed");
	CHECK_EQ_INT(c.compression, MQ_CODEC_NONE, "uncompressed is MQ_CODEC_NONE");
	mq_config_set(&c, "compression.type", "zstd");
	CHECK_EQ_INT(c.compression, MQ_CODEC_ZSTD, "zstd is MQ_CODEC_ZSTD");
	mq_config_set(&c, "cleanup.policy", "compact");
	CHECK_EQ_INT(c.compact, 1, "compact sets compact");
	mq_config_set(&c, "partitions", "7");
	CHECK_EQ_INT(c.partitions, 7, "partitions lands in its field");
	mq_config_set(&c, "max.message.bytes", "1000");
	CHECK_EQ_INT(c.max_message_bytes, 1000, "max.message.bytes lands in its field");
	mq_config_set(&c, "segment.bytes", "2G");
	CHECK_EQ_INT(c.segment_bytes, 1073741824, "segment.bytes=2G refused, unchanged");
}

static void test_set_bad(void)
{
	char buf[64];
	struct mq_config c;

	check_set_bad("partition", "3", "unknown config 'partition'");
	check_set_bad("", "3", "unknown config ''");
	check_set_bad("Partitions", "3", "unknown config 'Partitions'");
	check_set_bad("partitions", "0",
		      "invalid value '0' for 'partitions': must be between 1 and 100000");
	check_set_bad("partitions", "100001",
		      "invalid value '100001' for 'partitions': must be between 1 and 100000");
	check_set_bad("partitions", "abc",
		      "invalid value 'abc' for 'partitions': expected an integer");
	check_set_bad("partitions", "", "invalid value '' for 'partitions': expected an integer");
	check_set_bad("partitions", "4K",
		      "invalid value '4K' for 'partitions': expected an integer");
	check_set_bad("partitions", "99999999999999999999",
		      "invalid value '99999999999999999999' for 'partitions': expected an integer");
	check_set_bad("segment.bytes", "-5",
		      "invalid value '-5' for 'segment.bytes': must be between 14 and 2147483647");
	check_set_bad("segment.bytes", "13",
		      "invalid value '13' for 'segment.bytes': must be between 14 and 2147483647");
	check_set_bad("segment.bytes", "2G",
		      "invalid value '2G' for 'segment.bytes': must be between 14 and 2147483647");
	check_set_bad("segment.bytes", "lots",
		      "invalid value 'lots' for 'segment.bytes': expected a size like 16M");
	check_set_bad("segment.ms", "0", "invalid value '0' for 'segment.ms': must be at least 1");
	check_set_bad("segment.ms", "1w",
		      "invalid value '1w' for 'segment.ms': expected a duration like 7d");
	check_set_bad("retention.ms", "-2", "invalid value '-2' for 'retention.ms': must be at least -1");
	check_set_bad("retention.ms", "-1d",
		      "invalid value '-1d' for 'retention.ms': expected a duration like 7d");
	check_set_bad("retention.bytes", "-2",
		      "invalid value '-2' for 'retention.bytes': must be at least -1");
	check_set_bad("max.message.bytes", "-1",
		      "invalid value '-1' for 'max.message.bytes': must be between 0 and 2147483647");
	check_set_bad("min.insync.replicas", "-1",
		      "invalid value '-1' for 'min.insync.replicas': must be between 0 and 2147483647");
	check_set_bad("index.interval.bytes", "4G",
		      "invalid value '4G' for 'index.interval.bytes': must be between 0 and 2147483647");
	check_set_bad("compression.type", "brotli",
		      "invalid value 'brotli' for 'compression.type': expected producer, "
		      "uncompressed, gzip, snappy, lz4 or zstd");
	check_set_bad("compression.type", "GZIP",
		      "invalid value 'GZIP' for 'compression.type': expected producer, "
		      "uncompressed, gzip, snappy, lz4 or zstd");
	check_set_bad("cleanup.policy", "foo",
		      "invalid value 'foo' for 'cleanup.policy': expected delete or compact");
	check_set_bad("cleanup.policy", "compact,delete",
		      "invalid value 'compact,delete' for 'cleanup.policy': expected delete or compact");

	mq_config_default(&c);
	CHECK(mq_config_get(&c, "nope", buf, sizeof buf) == -1 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), "unknown config 'nope'") == 0, "get of an unknown key");
	CHECK(mq_config_get(&c, "segment.bytes", buf, 5) == -1 && mq_errclass() == MQ_EUSAGE,
	      "get into a too small buffer");
	CHECK(mq_config_get(&c, "segment.bytes", buf, 11) == 0 && strcmp(buf, "1073741824") == 0,
	      "get into an exact buffer");
}

static void test_parse(void)
{
	struct mq_config c, d;
	const char *text =
		"# topic.conf written by hand\n"
		"\n"
		"partitions=3\n"
		"  retention.ms =  7d  \n"
		"\tsegment.bytes\t=\t16M\r\n"
		"   # an indented comment\n"
		"compression.type=lz4\n"
		"cleanup.policy = compact\n"
		"min.insync.replicas=1\n"
		"partitions=4\n"
		"   \n"
		"index.interval.bytes=1024";

	mq_config_default(&c);
	CHECK(mq_config_parse(&c, text, "topic.conf") == 0, "parse a file with comments (%s)",
	      mq_errmsg());
	CHECK_EQ_INT(c.partitions, 4, "the last of repeated keys wins");
	CHECK_EQ_INT(c.retention_ms, 604800000, "spaces around key and value trimmed");
	CHECK_EQ_INT(c.segment_bytes, 16777216, "tabs and CR trimmed");
	CHECK_EQ_INT(c.compression, MQ_CODEC_LZ4, "compression.type parsed");
	CHECK_EQ_INT(c.compact, 1, "cleanup.policy parsed");
	CHECK_EQ_INT(c.min_insync_replicas, 1, "min.insync.replicas parsed");
	CHECK_EQ_INT(c.index_interval_bytes, 1024, "last line without a newline");
	CHECK_EQ_INT(c.max_message_bytes, 1048588, "keys not named keep their value");

	mq_config_default(&c);
	CHECK(mq_config_parse(&c, "", "empty.conf") == 0 && c.partitions == 1,
	      "empty text is the defaults");
	CHECK(mq_config_parse(&c, "# only\n#comments\n\n", NULL) == 0, "only comments");

	mq_config_default(&c);
	d = c;
	CHECK(mq_config_parse(&c, "partitions=3\n# fine\n\ncleanup.policy=foo\nsegment.ms=1\n",
			      "/data/topics/t/topic.conf") == -1 &&
	      mq_errclass() == MQ_ECORRUPT &&
	      strcmp(mq_errmsg(), "invalid config in '/data/topics/t/topic.conf' line 4: "
		     "invalid value 'foo' for 'cleanup.policy': expected delete or compact") == 0,
	      "a bad file line names file and line, MQ_ECORRUPT (got %s)", mq_errmsg());
	CHECK(memcmp(&c, &d, sizeof c) == 0, "a failed parse leaves the config as it was");

	CHECK(mq_config_parse(&c, "partitions=2\nretention=1d\n", NULL) == -1 &&
	      mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), "invalid config line 2: unknown config 'retention'") == 0,
	      "bad text from the command line is MQ_EUSAGE (got %s)", mq_errmsg());
	CHECK(mq_config_parse(&c, "partitions 3\n", "x.conf") == -1 &&
	      mq_errclass() == MQ_ECORRUPT &&
	      strcmp(mq_errmsg(), "invalid config in 'x.conf' line 1: "
		     "expected key=value, not 'partitions 3'") == 0,
	      "a line without '=' (got %s)", mq_errmsg());
	CHECK(mq_config_parse(&c, "\n\n=5\n", "x.conf") == -1 &&
	      strcmp(mq_errmsg(), "invalid config in 'x.conf' line 3: unknown config ''") == 0,
	      "an empty key (got %s)", mq_errmsg());
	CHECK(mq_config_parse(&c, "partitions=\n", "x.conf") == -1 &&
	      strcmp(mq_errmsg(), "invalid config in 'x.conf' line 1: "
		     "invalid value '' for 'partitions': expected an integer") == 0,
	      "an empty value (got %s)", mq_errmsg());
	CHECK(mq_config_parse(&c, "retention.ms=7d # a week\n", "x.conf") == -1,
	      "no comments after a value");
	CHECK(memcmp(&c, &d, sizeof c) == 0, "failed parses change nothing");
}

static void test_format(void)
{
	struct mq_config c, d;
	char *text, *p;
	int i, ok;

	mq_config_default(&c);
	text = mq_config_format(&c);
	CHECK(text && strcmp(text,
		"partitions=1\n"
		"retention.ms=604800000\n"
		"retention.bytes=-1\n"
		"segment.bytes=1073741824\n"
		"segment.ms=604800000\n"
		"compression.type=producer\n"
		"max.message.bytes=1048588\n"
		"cleanup.policy=delete\n"
		"min.insync.replicas=0\n"
		"index.interval.bytes=4096\n"
		"replica.lag.time.max.ms=30000\n") == 0, "format of the defaults");
	free(text);

	mq_config_default(&c);
	mq_config_parse(&c, "partitions=8\nretention.ms=-1\nretention.bytes=5G\n"
			"segment.bytes=1M\nsegment.ms=1d\ncompression.type=none\n"
			"max.message.bytes=64K\ncleanup.policy=compact\n"
			"min.insync.replicas=2\nindex.interval.bytes=0\n", NULL);
	text = mq_config_format(&c);
	mq_config_default(&d);
	CHECK(text && mq_config_parse(&d, text, "round.conf") == 0 &&
	      memcmp(&c, &d, sizeof c) == 0, "format -> parse gives the same config");
	CHECK(text && strstr(text, "compression.type=uncompressed\n") &&
	      strstr(text, "retention.bytes=5368709120\n") && strstr(text, "segment.ms=86400000\n"),
	      "format writes Kafka's plain values");

	ok = text != NULL;
	for (i = 0, p = text; ok && mq_config_keys[i]; i++) {
		size_t n = strlen(mq_config_keys[i]);

		ok = strncmp(p, mq_config_keys[i], n) == 0 && p[n] == '=' &&
		     (p = strchr(p, '\n')) != NULL;
		if (ok)
			p++;
	}
	CHECK(ok && i == 11 && p && *p == '\0', "format lists mq_config_keys in order, once each");
	free(text);

	for (i = 0; mq_config_keys[i]; i++) {
		char buf[64];

		mq_config_default(&c);
		ok = mq_config_get(&c, mq_config_keys[i], buf, sizeof buf) == 0 &&
		     mq_config_set(&c, mq_config_keys[i], buf) == 0;
		CHECK(ok, "key '%s' can be read and set back", mq_config_keys[i]);
	}
}

int main(void)
{
	test_defaults();
	test_set();
	test_set_bad();
	test_parse();
	test_format();
	return unit_done();
}
