/*
 * cli.c: what every program in cmd/ shares: the program name, the one
 * message format of DESIGN.md §6 ("prog: what failed 'subject': cause"),
 * exits with the status table, the parsers for the argument syntaxes
 * (numbers, sizes, durations, times, escapes) and the choice of the data
 * directory.
 *
 * The parsers are strict: the whole text must match, nothing is skipped,
 * and a refusal says which text was wrong (MQ_EUSAGE).  The printing and
 * exiting functions are for cmd/ only; the rest of libcore never calls
 * them.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

const char *mq_progname = "mq";

void mq_setprogname(const char *argv0)
{
	const char *slash;

	if (!argv0 || !*argv0)
		return;
	slash = strrchr(argv0, '/');
	mq_progname = slash && slash[1] ? slash + 1 : argv0;
}

static void vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", mq_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void mq_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void mq_die(int cls, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(cls);
}

void mq_die_err(void)
{
	mq_die(mq_errclass(), "%s", mq_errmsg());
}

void mq_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", mq_progname);
	exit(MQ_EUSAGE);
}

void mq_print_version(void)
{
	printf("%s (mq) %s\n", mq_progname, MQ_VERSION);
}

/* ---- parsers ---------------------------------------------------------- */

/* Reads the decimal digits at *p into *v and moves *p past them.  1 when
 * some were read, 0 when there were none, -1 when the value does not fit
 * in an int64_t. */
static int digits(const char **p, int64_t *v)
{
	const char *s = *p;
	int64_t n = 0;
	int over = 0;

	while (*s >= '0' && *s <= '9') {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, *s - '0', &n))
			over = 1;
		s++;
	}
	if (s == *p)
		return 0;
	*p = s;
	*v = n;
	return over ? -1 : 1;
}

/* Exactly n digits at *p (for the fixed-width fields of ISO 8601). */
static int fixed(const char **p, int n, int *v)
{
	int i, x = 0;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

int mq_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	const char *p = s;
	int64_t v;
	int neg = 0, r;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	r = digits(&p, &v);
	if (r == 0 || *p)
		return mq_error(MQ_EUSAGE, "invalid number '%s'", s);
	/* -9223372036854775808 overflows as a positive value but fits. */
	if (r < 0 && !(neg && strcmp(s + 1, "9223372036854775808") == 0))
		goto range;
	if (r < 0)
		v = INT64_MIN;
	else if (neg)
		v = -v;
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
range:
	return mq_error(MQ_EUSAGE, "number '%s' out of range (%lld..%lld)", s,
			(long long)min, (long long)max);
}

/* Sizes: digits, then nothing or B (bytes), or K, M, G, T, P (powers of
 * 1024) optionally followed by B or iB, in either case: 512, 64K, 64k,
 * 64KB, 64KiB, 16M, 1G.  No fractions (write 1536M, not 1.5G), no sign. */
int mq_parse_size(const char *s, int64_t *out)
{
	static const char units[] = "kmgtp";
	const char *p = s, *u;
	int64_t n;
	int shift = 0, r;

	r = digits(&p, &n);
	if (r == 0)
		goto bad;
	if (*p && (u = strchr(units, tolower((unsigned char)*p)))) {
		shift = 10 * (int)(u - units + 1);
		if (*++p == 'i' || *p == 'I') {
			p++;
			if (*p != 'b' && *p != 'B')
				goto bad;
		}
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		goto bad;
	if (r < 0 || n > (INT64_MAX >> shift))
		return mq_error(MQ_EUSAGE, "size '%s' too large", s);
	*out = n << shift;
	return 0;
bad:
	return mq_error(MQ_EUSAGE, "invalid size '%s'", s);
}

/* Duration text to milliseconds without recording an error: 0, -1 when
 * malformed, -2 when too large. */
static int duration(const char *s, int64_t *ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char *p = s;
	int64_t n;
	size_t i;
	int r;

	r = digits(&p, &n);
	if (r == 0)
		return -1;
	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(p, units[i].unit) == 0)
			break;
	if (i == sizeof units / sizeof units[0])
		return -1;
	if (r < 0 || __builtin_mul_overflow(n, units[i].ms, &n))
		return -2;
	*ms = n;
	return 0;
}

/* Durations: digits and a unit, ms, s, m, h or d.  A bare number means
 * milliseconds, as in Kafka's *.ms settings.  No sign, no fraction. */
int mq_parse_duration(const char *s, int64_t *ms)
{
	switch (duration(s, ms)) {
	case 0:
		return 0;
	case -2:
		return mq_error(MQ_EUSAGE, "duration '%s' too large", s);
	default:
		return mq_error(MQ_EUSAGE, "invalid duration '%s'", s);
	}
}

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ISO 8601 in the extended format: YYYY-MM-DD, then optionally T (or t,
 * or a space) and HH:MM, :SS, a fraction (.sss or ,sss: milliseconds are
 * kept, further digits dropped), then optionally a zone: Z, +HH, +HH:MM
 * or +HHMM (or -).  Without a zone the time is UTC, never local time: a
 * script gives the same answer on every machine. */
static int iso8601(const char *s, int64_t *ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0, sign = 0;
	struct tm tm = { 0 };
	int64_t t;

	if (fixed(&p, 4, &y) || *p++ != '-' || fixed(&p, 2, &mo) ||
	    *p++ != '-' || fixed(&p, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (fixed(&p, 2, &h) || *p++ != ':' || fixed(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (fixed(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				int n = 0;

				for (p++; *p >= '0' && *p <= '9'; p++, n++)
					if (n < 3)
						frac = frac * 10 + (*p - '0');
				if (n == 0)
					return -1;
				for (; n < 3; n++)
					frac *= 10;
			}
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -1;
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '+' ? 1 : -1;
			if (fixed(&p, 2, &oh))
				return -1;
			if (*p == ':') {
				p++;
				if (fixed(&p, 2, &om))
					return -1;
			} else if (*p && fixed(&p, 2, &om)) {
				return -1;
			}
			if (oh > 23 || om > 59)
				return -1;
		}
	}
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = t * 1000 + frac - (int64_t)sign * (oh * 60 + om) * 60000;
	return 0;
}

/* Times: "now"; a relative time, a minus and a duration (-15m, -2h, -7d,
 * -30s, -500ms; a bare -500 is milliseconds like any duration) meaning
 * that long before now; a plain integer, epoch milliseconds; or ISO 8601
 * as above. */
int mq_parse_time(const char *s, int64_t *ms)
{
	const char *p = s;
	int64_t v;

	if (strcmp(s, "now") == 0) {
		*ms = mq_now_ms();
		return 0;
	}
	if (s[0] == '-') {
		if (duration(s + 1, &v) < 0 ||
		    __builtin_sub_overflow(mq_now_ms(), v, &v))
			goto bad;
		*ms = v;
		return 0;
	}
	if (digits(&p, &v) > 0 && !*p) {
		*ms = v;
		return 0;
	}
	if (iso8601(s, ms) == 0)
		return 0;
bad:
	return mq_error(MQ_EUSAGE, "invalid time '%s'", s);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int mq_escape(const char **pp)
{
	const char *p = *pp;
	int hi, lo;

	switch (p[1]) {
	case 'n': *pp += 1; return '\n';
	case 't': *pp += 1; return '\t';
	case 'r': *pp += 1; return '\r';
	case '0': *pp += 1; return '\0';
	case '\\': *pp += 1; return '\\';
	case '\0': return -2;
	case 'x':
		if (!p[2] || !p[3])
			return -2;
		if ((hi = hexval((unsigned char)p[2])) < 0 || (lo = hexval((unsigned char)p[3])) < 0)
			return -1;
		*pp += 3;
		return hi << 4 | lo;
	default:
		return -1;
	}
}

/* buf always gets a terminating NUL (not counted in the length), so a
 * buffer of strlen(s) + 1 bytes is always enough. */
ssize_t mq_unescape(const char *s, char *buf, size_t size)
{
	const char *p;
	size_t n = 0;
	int c;

	for (p = s; *p; p++) {
		c = (unsigned char)*p;
		if (c == '\\' && (c = mq_escape(&p)) < 0)
			goto bad;
		if (n + 1 >= size)
			goto full;
		buf[n++] = (char)c;
	}
	if (size == 0)
		goto full;
	buf[n] = '\0';
	return (ssize_t)n;
bad:
	return mq_error(MQ_EUSAGE, "invalid escape in '%s'", s);
full:
	return mq_error(MQ_EUSAGE, "text '%s' too long (at most %zu bytes)", s,
			size ? size - 1 : 0);
}

/* The wall clock in milliseconds.  When MQ_NOW_MS holds an integer, that
 * is returned instead: a fixed clock for tests of relative times,
 * retention and lag. */
int64_t mq_now_ms(void)
{
	const char *fake = getenv("MQ_NOW_MS");
	struct timespec ts;
	int saved = errno;
	char *end;
	long long v;

	if (fake && *fake) {
		errno = 0;
		v = strtoll(fake, &end, 10);
		if (!*end && errno == 0) {
			errno = saved;
			return v;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	errno = saved;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mq_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the data directory --------------------------------------------- */

/* The last directory resolved: owned here, so that a program may exit
 * anywhere without freeing it. */
static char *resolved;

char *mq_datadir(const char *dir)
{
	const char *e;
	struct stat st;
	char *path = NULL;
	size_t n;
	int r = 0;

	if (dir)
		path = strdup(dir);
	else if ((e = getenv("MQ_DIR")) && *e)
		path = strdup(e);
	else if ((e = getenv("XDG_DATA_HOME")) && e[0] == '/')
		r = asprintf(&path, "%s/mq", e);
	else if ((e = getenv("HOME")) && *e)
		r = asprintf(&path, "%s/.local/share/mq", e);
	else {
		mq_error(MQ_EUSAGE, "cannot find the data directory: "
			 "HOME is not set (use --dir or MQ_DIR)");
		return NULL;
	}
	if (r < 0 || !path) {
		mq_syserr("cannot choose the data directory");
		return NULL;
	}
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	if (mq_remote_is(path)) {
		free(resolved);
		resolved = path;
		return path;
	}
	if (n == 0)
		errno = ENOENT;
	if (n > PATH_MAX - 600)
		errno = ENAMETOOLONG;   /* room for topics/NAME/P/SEGMENT */
	if (n == 0 || n > PATH_MAX - 600 || mq_mkdir_p(path, 0777) < 0 || stat(path, &st) < 0)
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto fail;
	}
	if (access(path, W_OK | X_OK) < 0)
		goto fail;
	free(resolved);
	resolved = path;
	return path;
fail:
	mq_error(MQ_EIO, "cannot use data directory '%s': %s", path,
		 strerror(errno));
	free(path);
	return NULL;
}

char *mq_format_time(int64_t ms, char *buf, size_t n)
{
	time_t t;
	struct tm tm;

	if (ms < 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}

void mq_usage_hint(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", mq_progname);
	exit(MQ_EUSAGE);
}

char *mq_topic_args(const char *dir, char **args, int n)
{
	char *addr = NULL;

	for (int i = 0; i < n; i++) {
		char *d, *name;
		int r = mq_address_split(args[i], &d, &name);
		if (r < 0)
			return NULL;
		if (r > 0) {
			if (addr && strcmp(addr, d)) {
				mq_error(MQ_EUSAGE, "topics '%s' and '%s' are in different places", addr, d);
				free(addr);
				free(d);
				return NULL;
			}
			free(addr);
			addr = d;
			args[i] = name;   /* kept until exit, as argv is */
		}
		if (mq_topic_name_check(args[i]) < 0) {
			free(addr);
			return NULL;
		}
	}
	if (addr && dir && strcmp(addr, dir)) {
		mq_error(MQ_EUSAGE, "topic address '%s' and --dir '%s' disagree", addr, dir);
		free(addr);
		return NULL;
	}
	char *d = mq_datadir(addr ? addr : dir);
	free(addr);
	return d;
}
