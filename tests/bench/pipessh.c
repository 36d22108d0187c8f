/*
 * pipessh: a stand-in for ssh and sshd together, without encryption, for
 * the benchmark (tests/bench/replicate.sh, row rcpipe).
 *
 *   pipessh [SSH OPTIONS] HOST COMMAND...
 *
 * Drops ssh's options and the host, runs COMMAND with sh -c here with
 * pipes for its standard input and output, as sshd does, and moves the
 * bytes between those pipes and its own standard input and output with
 * splice(2), as cheaply as a relay can, so that the figure is mq's and
 * not the relay's.  Exits with the command's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct pump {
	int from, to;
};

/* from -> to through a pipe of our own, each splice out exactly what
 * came in (a splice into a socket asking for more would wait for it) */
static void *pump(void *arg)
{
	struct pump *p = arg;
	int fd[2];

	if (pipe(fd) < 0)
		return NULL;
	fcntl(fd[1], F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		ssize_t n = splice(p->from, NULL, fd[1], NULL, 1 << 20, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		while (n > 0) {
			ssize_t w = splice(fd[0], NULL, p->to, NULL, (size_t)n, SPLICE_F_MOVE);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			n -= w;
		}
	}
out:
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
