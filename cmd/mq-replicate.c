/*
 * mq-replicate: keep a copy of topics from another data directory, an
 * mq-serve or, over ssh, another host.  See mq-replicate(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq.h"

static const char usage_text[] =
	"usage: mq-replicate [-fq] [-d DIR] [--id NAME] [--fsync] [--truncate-diverged] [--reset]\n"
	"                    [--token-file FILE] SOURCE [TOPIC...]\n";

enum { OPT_ID = 256, OPT_FSYNC, OPT_TRUNC, OPT_RESET, OPT_TOKEN };

static volatile sig_atomic_t stop;
static int tty, quiet;
static int64_t last_progress;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f, int code)
{
	fputs(usage_text, f);
	exit(code);
}

/* On a terminal, a line that keeps being rewritten; never otherwise. */
static void progress(void *arg, const char *topic, int32_t p, int64_t at, int64_t end)
{
	int64_t now = mq_now_ms();

	(void)arg;
	if (!tty || now - last_progress < 200)
		return;
	last_progress = now;
	fprintf(stderr, "\r\033[K%s/%d: %lld of %lld", topic, p, (long long)at, (long long)end);
}

static void note(void *arg, const char *msg)
{
	(void)arg;
	if (tty && last_progress) {
		fputs("\r\033[K", stderr);
		last_progress = 0;
	}
	if (!quiet)
		mq_warn("%s", msg);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "follow", no_argument, NULL, 'f' },
		{ "fsync", no_argument, NULL, OPT_FSYNC },
		{ "help", no_argument, NULL, 'h' },
		{ "id", required_argument, NULL, OPT_ID },
		{ "quiet", no_argument, NULL, 'q' },
		{ "reset", no_argument, NULL, OPT_RESET },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "truncate-diverged", no_argument, NULL, OPT_TRUNC },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct mq_replicate_opts ro = { .stop = &stop, .progress = progress, .note = note };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *dir = NULL;
	char host[128];
	int c;

	mq_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "d:fhqV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'f': ro.follow = 1; break;
		case 'h': usage(stdout, 0); break;
		case 'q': quiet = 1; break;
		case 'V': mq_print_version(); return 0;
		case OPT_FSYNC: ro.fsync = 1; break;
		case OPT_ID:
			if (mq_replica_id_check(optarg) < 0)
				mq_usage_error("%s", mq_errmsg());
			ro.id = optarg;
			break;
		case OPT_RESET: ro.reset = 1; break;
		case OPT_TOKEN:
			if (mq_remote_token_file(optarg) < 0)
				mq_die_err();
			break;
		case OPT_TRUNC: ro.truncate_diverged = 1; break;
		default: mq_usage_hint();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		mq_usage_error("missing SOURCE");
	for (int i = 1; i < argc; i++)
		if (mq_topic_name_check(argv[i]) < 0)
			mq_usage_error("%s", mq_errmsg());
	if (!ro.id) {
		if (gethostname(host, sizeof host) < 0 || !host[0])
			strcpy(host, "follower");
		host[sizeof host - 1] = '\0';
		for (char *p = host; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
				*p = '_';
		ro.id = host;
	}
	if (!(ro.datadir = mq_datadir(dir)))
		mq_die_err();
	if (mq_remote_is(ro.datadir))
		mq_usage_error("the local data directory cannot be an address ('%s'); the SOURCE can",
			       ro.datadir);
	ro.source = argv[0];
	if (!mq_remote_is(ro.source)) {
		char *a = realpath(ro.source, NULL), *b = realpath(ro.datadir, NULL);
		if (!a)
			mq_die(MQ_ENOTFOUND, "cannot use source '%s': no such directory", ro.source);
		if (b && !strcmp(a, b))
			mq_usage_error("source and data directory are the same ('%s')", a);
		free(a);
		free(b);
	}
	ro.topics = argv + 1;
	ro.ntopics = (size_t)argc - 1;
	if (mq_replicate_lock(ro.datadir) < 0)
		mq_die_err();
	tty = isatty(2);
	mq_remote_set_stop(&stop);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = mq_replicate_run(&ro);
	if (tty && last_progress)
		fputs("\r\033[K", stderr);
	if (rc < 0)
		mq_die_err();
	return 0;
}
