/*
 * mq-topic: create, list, describe, alter, delete, verify, gc and dump
 * topics.  See mq-topic(1).
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq.h"

static const char usage_text[] =
	"usage: mq-topic [-d DIR] create TOPIC [-p N] [-c KEY=VALUE]... [--if-not-exists]\n"
	"       mq-topic [-d DIR] list [ADDRESS]\n"
	"       mq-topic [-d DIR] describe TOPIC... [-J]\n"
	"       mq-topic [-d DIR] alter TOPIC [-p N] [-c KEY=VALUE]...\n"
	"       mq-topic [-d DIR] delete TOPIC...\n"
	"       mq-topic [-d DIR] verify [--repair] [TOPIC...]\n"
	"       mq-topic [-d DIR] gc [TOPIC...]\n"
	"       mq-topic dump [--records] FILE|DIR...\n";

static void usage(FILE *f, int code)
{
	fputs(usage_text, f);
	exit(code);
}

struct opts {
	const char *dir;
	int64_t partitions;
	char **configs;
	int nconfigs;
	int json, repair, records, if_not_exists;
};

static char *datadir(const struct opts *o)
{
	char *d = mq_datadir(o->dir);

	if (!d)
		mq_die_err();
	return d;
}

static char *topic_dir(const struct opts *o, int argc, char **argv)
{
	char *d = mq_topic_args(o->dir, argv, argc);

	if (!d)
		mq_die_err();
	return d;
}

/* verify and gc read and rewrite files: they run where the data is */
static char *local_dir(const struct opts *o, const char *what)
{
	char *d = datadir(o);

	if (mq_remote_is(d))
		mq_usage_error("%s needs a local data directory, not '%s' (run it on that host)", what, d);
	return d;
}

static void apply_configs(const struct opts *o, struct mq_config *c)
{
	for (int i = 0; i < o->nconfigs; i++) {
		char *kv = o->configs[i], *eq = strchr(kv, '=');
		if (!eq)
			mq_usage_error("invalid config '%s': expected KEY=VALUE", kv);
		*eq = 0;
		int rc = mq_config_set(c, kv, eq + 1);
		*eq = '=';
		if (rc < 0)
			mq_die_err();
	}
}

static int cmd_create(const struct opts *o, int argc, char **argv)
{
	struct mq_config c;
	char *dir;

	if (argc != 1)
		mq_usage_error("create needs exactly one TOPIC");
	dir = topic_dir(o, argc, argv);
	if (mq_topic_defaults(dir, &c) < 0)
		mq_die_err();
	if (o->partitions > 0)
		c.partitions = (int32_t)o->partitions;
	apply_configs(o, &c);
	if (mq_topic_create(dir, argv[0], &c) < 0) {
		if (o->if_not_exists && mq_errclass() == MQ_ENEG)
			return 0;
		mq_die_err();
	}

	return 0;
}

static int cmd_list(const struct opts *o, int argc, char **argv)
{
	char *dir, **names;
	size_t n;

	if (argc > 1 || (argc == 1 && !mq_remote_is(argv[0])))
		mq_usage_error("list takes no arguments but an address");
	dir = argc == 1 ? mq_datadir(argv[0]) : datadir(o);
	if (!dir)
		mq_die_err();
	if (mq_topic_list(dir, &names, &n) < 0)
		mq_die_err();
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	mq_strv_free(names, n);

	return 0;
}

static void json_str(const char *s)
{
	struct mq_buf b = { 0 };

	if (mq_json_bytes(&b, (const uint8_t *)s, (int32_t)strlen(s)) < 0)
		mq_die_err();
	fwrite(b.p, 1, b.len, stdout);
	mq_buf_free(&b);
}

/* The followers each partition has seen, and which are in sync. */
static void describe_replicas(const struct mq_topic *t, int json)
{
	char when[32];
	int any = 0;

	if (json)
		printf("],\"replicas\":[");
	for (int32_t i = 0; i < t->conf.partitions; i++) {
		struct mq_replica *v;
		size_t n;
		if (mq_topic_replicas(t, i, &v, &n) < 0)
			mq_die_err();
		for (size_t k = 0; k < n; k++, any++) {
			if (json) {
				printf("%s{\"partition\":%d,\"id\":", any ? "," : "", i);
				json_str(v[k].id);
				printf(",\"position\":%" PRId64 ",\"time\":%" PRId64 ",\"in_sync\":%s}",
				       v[k].position, v[k].time, v[k].in_sync ? "true" : "false");
				continue;
			}
			if (!any)
				printf("\n%-9s %-24s %12s  %-24s  %s\n", "PARTITION", "REPLICA", "POSITION",
				       "LAST-FETCH", "IN-SYNC");
			printf("%-9d %-24s %12" PRId64 "  %-24s  %s\n", i, v[k].id, v[k].position,
			       mq_format_time(v[k].time, when, sizeof when), v[k].in_sync ? "yes" : "no");
		}
		free(v);
	}
}

static void describe_one(const char *dir, const char *name, int json)
{
	struct mq_topic t;
	char t1[32], t2[32], val[64];

	if (mq_topic_open(dir, name, &t) < 0)
		mq_die_err();
	if (json) {
		printf("{\"topic\":");
		json_str(name);
		printf(",\"partitions\":[");
	} else {
		printf("Topic: %s\tPartitions: %d\n", name, t.conf.partitions);
		printf("Config:");
		for (int i = 0; mq_config_keys[i]; i++) {
			mq_config_get(&t.conf, mq_config_keys[i], val, sizeof val);
			printf(" %s=%s", mq_config_keys[i], val);
		}
		printf("\n%-9s %12s %12s %12s %8s %12s  %-24s  %-24s\n", "PARTITION", "START", "END",
		       "HW", "SEGMENTS", "BYTES", "FIRST-TIME", "LAST-TIME");
	}
	for (int32_t i = 0; i < t.conf.partitions; i++) {
		struct mq_partition_info pi;
		if (mq_topic_partition_info(&t, i, &pi) < 0) {
			if (mq_errclass() != MQ_ENOTFOUND)
				mq_die_err();
			memset(&pi, 0, sizeof pi);
			pi.first_timestamp = pi.last_timestamp = -1;
		}
		if (json)
			printf("%s{\"partition\":%d,\"log_start_offset\":%" PRId64 ",\"log_end_offset\":%" PRId64
			       ",\"high_watermark\":%" PRId64 ",\"segments\":%zu,\"bytes\":%" PRId64
			       ",\"first_timestamp\":%" PRId64 ",\"last_timestamp\":%" PRId64 "}",
			       i ? "," : "", i, pi.log_start, pi.log_end, pi.high_watermark, pi.nsegments,
			       pi.bytes, pi.first_timestamp, pi.last_timestamp);
		else
			printf("%-9d %12" PRId64 " %12" PRId64 " %12" PRId64 " %8zu %12" PRId64 "  %-24s  %-24s\n",
			       i, pi.log_start, pi.log_end, pi.high_watermark, pi.nsegments, pi.bytes,
			       mq_format_time(pi.first_timestamp, t1, sizeof t1),
			       mq_format_time(pi.last_timestamp, t2, sizeof t2));
	}
	describe_replicas(&t, json);
	if (json) {
		printf("],\"config\":{");
		for (int i = 0; mq_config_keys[i]; i++) {
			mq_config_get(&t.conf, mq_config_keys[i], val, sizeof val);
			printf("%s", i ? "," : "");
			json_str(mq_config_keys[i]);
			putchar(':');
			char *end;
			strtoll(val, &end, 10);
			if (*val && !*end)
				printf("%s", val);
			else
				json_str(val);
		}
		printf("}}\n");
	}
	mq_topic_close(&t);
}

static int cmd_describe(const struct opts *o, int argc, char **argv)
{
	char *dir;

	if (argc < 1)
		mq_usage_error("describe needs a TOPIC");
	dir = topic_dir(o, argc, argv);
	for (int i = 0; i < argc; i++) {
		if (i && !o->json)
			putchar('\n');
		describe_one(dir, argv[i], o->json);
	}

	return 0;
}

static int cmd_alter(const struct opts *o, int argc, char **argv)
{
	struct mq_topic t;
	struct mq_config c;
	char *dir;

	if (argc != 1)
		mq_usage_error("alter needs exactly one TOPIC");
	if (o->partitions <= 0 && o->nconfigs == 0)
		mq_usage_error("alter needs -p N or -c KEY=VALUE");
	dir = topic_dir(o, argc, argv);
	if (mq_topic_open(dir, argv[0], &t) < 0)
		mq_die_err();
	c = t.conf;
	if (o->partitions > 0)
		c.partitions = (int32_t)o->partitions;
	apply_configs(o, &c);
	if (mq_topic_alter(&t, &c) < 0)
		mq_die_err();
	mq_topic_close(&t);

	return 0;
}

static int cmd_delete(const struct opts *o, int argc, char **argv)
{
	char *dir;

	if (argc < 1)
		mq_usage_error("delete needs a TOPIC");
	dir = topic_dir(o, argc, argv);
	for (int i = 0; i < argc; i++)
		if (mq_topic_delete(dir, argv[i]) < 0)
			mq_die_err();

	return 0;
}

static void report_problem(const struct mq_verify_problem *p, void *arg)
{
	(void)arg;
	printf("%s: byte %" PRId64 ": %s\n", p->file, p->pos, p->what);
}

/* The topics named, or all of them. */
static char **topics_arg(const char *dir, int argc, char **argv, size_t *n)
{
	char **names;

	if (argc > 0) {
		names = calloc((size_t)argc, sizeof *names);
		if (!names)
			mq_die(MQ_EIO, "out of memory");
		for (int i = 0; i < argc; i++)
			if (!(names[i] = strdup(argv[i])))
				mq_die(MQ_EIO, "out of memory");
		*n = (size_t)argc;
		return names;
	}
	if (mq_topic_list(dir, &names, n) < 0)
		mq_die_err();
	return names;
}

static int cmd_verify(const struct opts *o, int argc, char **argv)
{
	char *dir = local_dir(o, "verify"), **names, p[PATH_MAX];
	size_t n;
	int bad = 0;
	int tty = isatty(2);

	names = topics_arg(dir, argc, argv, &n);
	for (size_t i = 0; i < n; i++) {
		struct mq_topic t;
		if (mq_topic_open(dir, names[i], &t) < 0)
			mq_die_err();
		for (int32_t j = 0; j < t.conf.partitions; j++) {
			struct mq_verify_result r;
			mq_topic_partition_dir(&t, j, p, sizeof p);
			if (access(p, F_OK) < 0)
				continue;
			if (tty)
				fprintf(stderr, "\rverifying %s/%d...", t.name, j);
			if (mq_verify_partition(p, o->repair, report_problem, NULL, &r) < 0)
				mq_die_err();
			if (tty)
				fprintf(stderr, "\r\033[K");
			printf("%s/%d: %" PRId64 " batch%s, %" PRId64 " record%s, %" PRId64 " byte%s: ",
			       t.name, j, r.batches, r.batches == 1 ? "" : "es", r.records,
			       r.records == 1 ? "" : "s", r.bytes, r.bytes == 1 ? "" : "s");
			if (r.nproblems == 0)
				printf("ok\n");
			else if (o->repair)
				printf("%zu problem%s, repaired (%" PRId64 " bytes removed)\n",
				       r.nproblems, r.nproblems == 1 ? "" : "s", r.truncated_bytes);
			else
				printf("%zu problem%s\n", r.nproblems, r.nproblems == 1 ? "" : "s");
			if (r.nproblems && !o->repair)
				bad = 1;
		}
		mq_topic_close(&t);
	}
	mq_strv_free(names, n);

	fflush(stdout);
	return bad ? MQ_ECORRUPT : 0;
}

static int cmd_gc(const struct opts *o, int argc, char **argv)
{
	char *dir = local_dir(o, "gc"), **names, p[PATH_MAX];
	size_t n;

	names = topics_arg(dir, argc, argv, &n);
	for (size_t i = 0; i < n; i++) {
		struct mq_topic t;
		if (mq_topic_open(dir, names[i], &t) < 0)
			mq_die_err();
		for (int32_t j = 0; j < t.conf.partitions; j++) {
			size_t removed;
			mq_topic_partition_dir(&t, j, p, sizeof p);
			if (access(p, F_OK) < 0)
				continue;
			if (mq_partition_retention(p, &t.conf, mq_now_ms(), &removed) < 0)
				mq_die_err();
			if (removed)
				printf("%s/%d: removed %zu segments\n", t.name, j, removed);
		}
		mq_topic_close(&t);
	}
	mq_strv_free(names, n);

	return 0;
}

static int cmd_dump(const struct opts *o, int argc, char **argv)
{
	int flags = o->records ? MQ_DUMP_RECORDS : 0;

	if (argc < 1)
		mq_usage_error("dump needs a FILE or DIR");
	for (int i = 0; i < argc; i++) {
		struct mq_segment *segs;
		size_t n;
		char path[PATH_MAX];
		if (mq_segments_list(argv[i], &segs, &n) == 0) {
			for (size_t j = 0; j < n; j++) {
				mq_segment_path(path, sizeof path, argv[i], segs[j].base, "log");
				if (mq_dump_file(stdout, path, flags) < 0)
					mq_die_err();
			}
			free(segs);
		} else if (mq_dump_file(stdout, argv[i], flags) < 0) {
			mq_die_err();
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "if-not-exists", no_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'J' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "records", no_argument, NULL, 'R' },
		{ "repair", no_argument, NULL, 'r' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		int (*fn)(const struct opts *, int, char **);
		const char *allowed;       /* option letters it takes */
	} cmds[] = {
		{ "create", cmd_create, "pcI" },
		{ "list", cmd_list, "" },
		{ "describe", cmd_describe, "J" },
		{ "alter", cmd_alter, "pc" },
		{ "delete", cmd_delete, "" },
		{ "verify", cmd_verify, "r" },
		{ "gc", cmd_gc, "" },
		{ "dump", cmd_dump, "R" },
	};
	struct opts o = { 0 };
	char seen[16] = "";
	int c;

	mq_setprogname(argv[0]);
	static char *configs[256];
	o.configs = configs;
	while ((c = getopt_long(argc, argv, "c:d:hJp:V", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (o.nconfigs == 256)
				mq_usage_error("too many -c options");
			o.configs[o.nconfigs++] = optarg;
			break;
		case 'd': o.dir = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'I': o.if_not_exists = 1; break;
		case 'J': o.json = 1; break;
		case 'p':
			if (mq_parse_int(optarg, 1, 100000, &o.partitions) < 0)
				mq_usage_error("invalid partition count '%s': expected 1 to 100000", optarg);
			break;
		case 'R': o.records = 1; break;
		case 'r': o.repair = 1; break;
		case 'T':
			if (mq_remote_token_file(optarg) < 0)
				mq_die_err();
			break;
		case 'V': mq_print_version(); return 0;
		default: mq_usage_hint();
		}
		size_t ns = strlen(seen);
		if (c != 'd' && c != 'T' && !strchr(seen, c) && ns < sizeof seen - 1) {
			seen[ns] = (char)c;
			seen[ns + 1] = 0;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(stderr, MQ_EUSAGE);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[0], cmds[i].name))
			continue;
		for (const char *s = seen; *s; s++) {
			if (strchr(cmds[i].allowed, *s))
				continue;
			const struct option *lo = longopts;
			while (lo->name && lo->val != *s)
				lo++;
			mq_usage_error("option '--%s' does not apply to '%s'", lo->name, cmds[i].name);
		}
		int rc = cmds[i].fn(&o, argc - 1, argv + 1);
		if (fflush(stdout) != 0)
			mq_die(MQ_EIO, "cannot write output");
		return rc;
	}
	mq_usage_error("unknown command '%s'", argv[0]);
}
