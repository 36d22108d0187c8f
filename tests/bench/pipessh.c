/*
 * pipessh: a stand-in for ssh and sshd together, without encryption, for
 * the benchmark (tests/bench/replicate.sh, row rcpipe).
 *
 *   pipessh [SSH OPTIONS] HOST COMMAND...
 *
 * Drops ssh's options and the host, runs COMMAND with sh -c here with
 * pipes for its standard input and output, as sshd does, and moves the
 * bytes between those pipes and its own standard input and output with
 * splice(2) (mq_relay, as mq-serve --stdio does), as cheaply as a relay
 * can, so that the figure is mq's and not the relay's.  Exits with the
 * command's status.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mq.h"

struct pump {
	int from, to;
};

static void *pump(void *arg)
{
	struct pump *p = arg;

	mq_relay(p->from, p->to);
	close(p->to);
	return NULL;
}

int main(int argc, char **argv)
{
	int i = 1, in[2], out[2], st;
	size_t len = 1;
	char *cmd;
	pid_t pid;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		i += strchr("bcDEeFIiJLlmOopQRSWw", argv[i][1]) && argv[i][1] && !argv[i][2] ? 2 : 1;
	}
	if (argc - i < 2) {
		fprintf(stderr, "pipessh: usage: pipessh HOST COMMAND\n");
		return 255;
	}
	for (int k = i + 1; k < argc; k++)
		len += strlen(argv[k]) + 1;
	if (!(cmd = calloc(1, len)))
		return 255;
	for (int k = i + 1; k < argc; k++) {
		strcat(cmd, argv[k]);
		if (k + 1 < argc)
			strcat(cmd, " ");
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe(in) < 0 || pipe(out) < 0 || (pid = fork()) < 0)
		return 255;
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	struct pump up = { 0, in[1] }, down = { out[0], 1 };
	pthread_t t;
	pthread_create(&t, NULL, pump, &up);
	pump(&down);
	if (waitpid(pid, &st, 0) < 0)
		return 255;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
