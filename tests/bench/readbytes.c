/*
 * readbytes.c (bench): runs a command and prints how many bytes it read
 * (rchar of /proc/PID/io, read while the finished child is still a
 * zombie), so the recovery benchmark can show that recovery reads the
 * tail of a log and not all of it.  Exits with the command's status.
 * Usage: readbytes OUTFILE CMD [ARG...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[64], line[128];
	long long rchar = -1;
	siginfo_t si;
	FILE *f;
	pid_t pid;
	int st;

	if (argc < 3) {
		fprintf(stderr, "usage: readbytes OUTFILE CMD [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("readbytes: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("readbytes: exec");
		_exit(127);
	}
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0) {
		perror("readbytes: waitid");
		return 2;
	}
	snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
	if ((f = fopen(path, "r"))) {
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "rchar: %lld", &rchar) == 1)
				break;
		fclose(f);
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("readbytes: waitpid");
		return 2;
	}
	if (!(f = fopen(argv[1], "w")) || fprintf(f, "%lld\n", rchar) < 0 || fclose(f) != 0) {
		perror("readbytes: cannot write the result");
		return 2;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
