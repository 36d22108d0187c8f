/*
 * fsync_loop.c (bench): the disk's own limit for durable appends, the
 * yardstick of mq-produce --fsync.  Copies standard input to FILE in
 * 1 MiB writes, each followed by fdatasync(2), and exits 0 when all of
 * it is on disk.  Usage: fsync_loop FILE < input
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)

int main(int argc, char **argv)
{
	static char buf[CHUNK];
	size_t have;
	ssize_t n;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: fsync_loop FILE < input\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "fsync_loop: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		/* fill a whole chunk (stdin may be a pipe giving 64 KiB at a time) */
		for (have = 0; have < CHUNK; have += (size_t)n) {
			n = read(0, buf + have, CHUNK - have);
			if (n < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (n < 0) {
				perror("fsync_loop: read");
				return 1;
			}
			if (n == 0)
				break;
		}
		if (have == 0)
			break;
		for (size_t off = 0; off < have; off += (size_t)n) {
			n = write(fd, buf + off, have - off);
			if (n < 0) {
				perror("fsync_loop: write");
				return 1;
			}
		}
		if (fdatasync(fd) < 0) {
			perror("fsync_loop: fdatasync");
			return 1;
		}
		if (have < CHUNK)
			break;
	}
	if (close(fd) < 0) {
		perror("fsync_loop: close");
		return 1;
	}
	return 0;
}
