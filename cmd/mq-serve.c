/*
 * mq-serve: serve a data directory over HTTP, or over ssh's standard
 * input and output.  See mq-serve(1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

static const char usage_text[] =
	"usage: mq-serve [-q] [-d DIR] [-l ADDR:PORT] [--token-file FILE] [--read-only]\n"
	"                [--max-connections N] [--max-body SIZE] [--timeout DURATION]\n"
	"       mq-serve [-v] [-d DIR] [--token-file FILE] [--read-only] --stdio\n";

enum { OPT_TOKENS = 256, OPT_RO, OPT_MAXCONN, OPT_MAXBODY, OPT_TIMEOUT, OPT_STDIO };

static volatile sig_atomic_t stop;

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

static void log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

static void ready(void *arg, unsigned port)
{
	const char *listen = arg;
	const char *colon = strrchr(listen, ':');

	fprintf(stderr, "%s: serving on %.*s:%u\n", mq_progname, (int)(colon - listen), listen, port);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, 'l' },
		{ "max-body", required_argument, NULL, OPT_MAXBODY },
		{ "max-connections", required_argument, NULL, OPT_MAXCONN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "read-only", no_argument, NULL, OPT_RO },
		{ "stdio", no_argument, NULL, OPT_STDIO },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "token-file", required_argument, NULL, OPT_TOKENS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct mq_serve_opts so = { .listen = "127.0.0.1:8092", .timeout_ms = 30000,
				    .max_body = 64 << 20, .max_connections = 4096, .stop = &stop };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *dir = NULL;
	int c, quiet = 0, verbose = 0;
	int64_t n;

	mq_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "d:hl:qvV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'l':
			if (!strchr(optarg, ':'))
				mq_usage_error("invalid listen address '%s': expected ADDR:PORT", optarg);
			so.listen = optarg;
			break;
		case 'q': quiet = 1; break;
		case 'v': verbose = 1; break;
		case 'V': mq_print_version(); return 0;
		case OPT_MAXBODY:
			if (mq_parse_size(optarg, &so.max_body) < 0 || so.max_body < 1024)
				mq_usage_error("invalid --max-body '%s': expected a size of at least 1K", optarg);
			break;
		case OPT_MAXCONN:
			if (mq_parse_int(optarg, 1, 1000000, &n) < 0)
				mq_usage_error("invalid --max-connections '%s'", optarg);
			so.max_connections = (unsigned)n;
			break;
		case OPT_RO: so.read_only = 1; break;
		case OPT_STDIO: so.stdio = 1; break;
		case OPT_TIMEOUT:
			if (mq_parse_duration(optarg, &so.timeout_ms) < 0 || so.timeout_ms < 100)
				mq_usage_error("invalid --timeout '%s': expected a duration of at least 100ms", optarg);
			break;
		case OPT_TOKENS: so.token_file = optarg; break;
		default: mq_usage_hint();
		}
	}
	argc -= optind;
	if (argc > 0)
		mq_usage_error("unexpected argument '%s'", argv[optind]);
	if (!(so.datadir = mq_datadir(dir)))
		mq_die_err();
	if (mq_remote_is(so.datadir))
		mq_usage_error("cannot serve a remote address '%s': give a local data directory", so.datadir);
	/* the request log is for daemons; over ssh it would land on the
	 * client's terminal, so --stdio logs only with -v */
	if (so.stdio ? verbose : !quiet)
		so.log = log_line;
	if (!so.stdio) {
		so.ready = ready;
		so.arg = (void *)so.listen;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (mq_serve_run(&so) < 0)
		mq_die_err();
	return 0;
}
