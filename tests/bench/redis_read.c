/*
 * redis_read.c (bench): reads a whole Redis stream back, the peer of
 * "mq-consume -e -f '%s\n'".  One connection, XREAD COUNT N from the last
 * id seen, in a loop until the stream is exhausted; the value of each
 * entry's first field is written to standard output followed by a
 * newline, through one large buffer, so the client does what mq-consume
 * does and no more.  The number of entries read goes to standard error as
 * "records N".  Usage: redis_read PORT KEY [COUNT]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock;
static char *in;              /* receive buffer */
static size_t in_cap, in_len, in_pos;
static char out[1 << 20];
static size_t out_len;

static void die(const char *msg)
{
	fprintf(stderr, "redis_read: %s\n", msg);
	exit(1);
}

static void flush_out(void)
{
	size_t off = 0;
	ssize_t n;

	while (off < out_len) {
		n = write(1, out + off, out_len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("cannot write to standard output");
		}
		off += (size_t)n;
	}
	out_len = 0;
}

static void emit(const char *p, size_t n)
{
	if (out_len + n + 1 > sizeof out)
		flush_out();
	if (n + 1 > sizeof out) {
		if (write(1, p, n) != (ssize_t)n || write(1, "\n", 1) != 1)
			die("cannot write to standard output");
		return;
	}
	memcpy(out + out_len, p, n);
	out[out_len + n] = '\n';
	out_len += n + 1;
}

/* makes at least n unread bytes available */
static void need(size_t n)
{
	ssize_t r;

	if (in_len - in_pos >= n)
		return;
	if (in_pos > 0) {
		memmove(in, in + in_pos, in_len - in_pos);
		in_len -= in_pos;
		in_pos = 0;
	}
	if (n > in_cap) {
		while (in_cap < n)
			in_cap *= 2;
		if (!(in = realloc(in, in_cap)))
			die("out of memory");
	}
	while (in_len < n) {
		r = recv(sock, in + in_len, in_cap - in_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("connection lost");
		in_len += (size_t)r;
	}
}

/* reads a "<type><integer>\r\n" header; returns the integer */
static long long header(char type)
{
	char *nl;
	long long v;

	for (;;) {
		nl = memchr(in + in_pos, '\n', in_len - in_pos);
		if (nl)
			break;
		need(in_len - in_pos + 1);
	}
	if (in[in_pos] == '-') {
		*nl = 0;
		fprintf(stderr, "redis_read: server error: %s\n", in + in_pos + 1);
		exit(1);
	}
	if (in[in_pos] != type)
		die("unexpected reply");
	v = strtoll(in + in_pos + 1, NULL, 10);
	in_pos = (size_t)(nl - in) + 1;
	return v;
}

/* reads a bulk string; returns a pointer valid until the next read */
static const char *bulk(size_t *len)
{
	long long n = header('$');
	const char *p;

	if (n < 0)
		die("unexpected null string");
	need((size_t)n + 2);
	p = in + in_pos;
	in_pos += (size_t)n + 2;
	*len = (size_t)n;
	return p;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *key, *count = "10000";
	char last[64] = "0-0", req[512];
	long long records = 0, n, nf;
	int one = 1;

	if (argc < 3 || argc > 4)
		die("usage: redis_read PORT KEY [COUNT]");
	key = argv[2];
	if (argc == 4)
		count = argv[3];
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((sock = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(sock, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("cannot connect");
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	in_cap = 4 << 20;
	if (!(in = malloc(in_cap)))
		die("out of memory");
	for (;;) {
		int len = snprintf(req, sizeof req,
				   "*6\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$%zu\r\n%s\r\n"
				   "$7\r\nSTREAMS\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
				   strlen(count), count, strlen(key), key, strlen(last), last);
		if (len <= 0 || (size_t)len >= sizeof req || send(sock, req, (size_t)len, 0) != len)
			die("cannot send");
		/* *1 [ *2 [ key, *N [ *2 [ id, *2k [ field, value, ... ] ] ] ] ] or *-1 */
		if (header('*') < 0)
			break;
		if (header('*') != 2)
			die("unexpected reply");
		size_t l;
		bulk(&l);
		n = header('*');
		if (n <= 0)
			break;
		for (long long i = 0; i < n; i++) {
			const char *id, *v;
			if (header('*') != 2)
				die("unexpected entry");
			id = bulk(&l);
			if (l >= sizeof last)
				die("id too long");
			memcpy(last, id, l);
			last[l] = 0;
			nf = header('*');
			if (nf < 2)
				die("entry without fields");
			bulk(&l);
			v = bulk(&l);
			emit(v, l);
			for (long long f = 2; f < nf; f++)
				bulk(&l);
			records++;
		}
	}
	flush_out();
	fprintf(stderr, "records %lld\n", records);
	return 0;
}
