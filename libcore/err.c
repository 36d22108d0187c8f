/*
 * err.c: the error slot libcore fills and cmd/ reports.  A failing
 * function records what failed, the subject and the cause in the
 * DESIGN.md §6 shape ("cannot open topic 'logs': No such file or
 * directory") together with an exit class, and returns -1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mq.h"

static __thread char errbuf[4096];   /* per thread: mq-serve answers many at once */
static __thread int errcls;

int mq_error(int cls, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	/* format aside first: the arguments may include mq_errmsg() */
	char tmp[sizeof errbuf];
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(errbuf, tmp, sizeof errbuf);
	errcls = cls;
	errno = saved;
	return -1;
}

int mq_syserr(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t n;

	char tmp[sizeof errbuf];
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	n = strlen(tmp);
	snprintf(tmp + n, sizeof tmp - n, ": %s", strerror(saved));
	memcpy(errbuf, tmp, sizeof errbuf);
	errcls = saved == ENOENT ? MQ_ENOTFOUND : MQ_EIO;
	errno = saved;
	return -1;
}

const char *mq_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

int mq_errclass(void)
{
	return errcls ? errcls : MQ_EIO;
}
