/*
 * test_cli.c: the CLI helpers of cli.c: the argument parsers (numbers,
 * sizes, durations, times, escapes) with good and bad text, the message
 * and exit functions (run in a child), the fake clock and the choice and
 * creation of the data directory.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mq.h"
#include "unit.h"

static void check_int(const char *s, int64_t min, int64_t max, int64_t want)
{
	int64_t v = -12345;
	int r = mq_parse_int(s, min, max, &v);

	CHECK(r == 0 && v == want, "parse_int '%s' -> %lld (got %lld)", s,
	      (long long)want, (long long)v);
}

static void check_int_bad(const char *s, int64_t min, int64_t max, const char *msg)
{
	int64_t v = -12345;
	int r = mq_parse_int(s, min, max, &v);

	CHECK(r == -1 && v == -12345 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), msg) == 0,
	      "parse_int '%s' refused: %s (got %s)", s, msg, mq_errmsg());
}

static void test_int(void)
{
	check_int("0", 0, 10, 0);
	check_int("10", 0, 10, 10);
	check_int("-5", -10, 10, -5);
	check_int("007", 0, 10, 7);
	check_int("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	check_int("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
	check_int_bad("", 0, 10, "invalid number ''");
	check_int_bad("-", 0, 10, "invalid number '-'");
	check_int_bad("abc", 0, 10, "invalid number 'abc'");
	check_int_bad("12x", 0, 10, "invalid number '12x'");
	check_int_bad(" 1", 0, 10, "invalid number ' 1'");
	check_int_bad("1 ", 0, 10, "invalid number '1 '");
	check_int_bad("+1", 0, 10, "invalid number '+1'");
	check_int_bad("--1", -10, 10, "invalid number '--1'");
	check_int_bad("0x10", 0, 100, "invalid number '0x10'");
	check_int_bad("11", 0, 10, "number '11' out of range (0..10)");
	check_int_bad("-1", 0, 10, "number '-1' out of range (0..10)");
	check_int_bad("0", 1, 100000, "number '0' out of range (1..100000)");
	check_int_bad("9223372036854775808", INT64_MIN, INT64_MAX,
		      "number '9223372036854775808' out of range "
		      "(-9223372036854775808..9223372036854775807)");
	check_int_bad("99999999999999999999999", 0, 10,
		      "number '99999999999999999999999' out of range (0..10)");
}

static void check_size(const char *s, int64_t want)
{
	int64_t v = -12345;
	int r = mq_parse_size(s, &v);

	CHECK(r == 0 && v == want, "size '%s' -> %lld (got %lld)", s,
	      (long long)want, (long long)v);
}

static void check_size_bad(const char *s, const char *msg)
{
	int64_t v = -12345;
	int r = mq_parse_size(s, &v);

	CHECK(r == -1 && v == -12345 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), msg) == 0,
	      "size '%s' refused: %s (got %s)", s, msg, mq_errmsg());
}

static void test_size(void)
{
	check_size("0", 0);
	check_size("512", 512);
	check_size("512B", 512);
	check_size("64K", 65536);
	check_size("64k", 65536);
	check_size("64KB", 65536);
	check_size("64KiB", 65536);
	check_size("16M", 16777216);
	check_size("16MiB", 16777216);
	check_size("1G", 1073741824);
	check_size("1gb", 1073741824);
	check_size("2T", 2199023255552LL);
	check_size("1P", 1125899906842624LL);
	check_size("8191P", 8191 * 1125899906842624LL);
	check_size("9223372036854775807", INT64_MAX);
	check_size_bad("12x", "invalid size '12x'");
	check_size_bad("", "invalid size ''");
	check_size_bad("-1", "invalid size '-1'");
	check_size_bad("K", "invalid size 'K'");
	check_size_bad("1.5G", "invalid size '1.5G'");
	check_size_bad("16 M", "invalid size '16 M'");
	check_size_bad("16Mi", "invalid size '16Mi'");
	check_size_bad("16iB", "invalid size '16iB'");
	check_size_bad("16MBB", "invalid size '16MBB'");
	check_size_bad("8192P", "size '8192P' too large");
	check_size_bad("9007199254740992K", "size '9007199254740992K' too large");
	check_size_bad("9223372036854775808", "size '9223372036854775808' too large");
}

static void check_dur(const char *s, int64_t want)
{
	int64_t v = -12345;
	int r = mq_parse_duration(s, &v);

	CHECK(r == 0 && v == want, "duration '%s' -> %lld ms (got %lld)", s,
	      (long long)want, (long long)v);
}

static void check_dur_bad(const char *s, const char *msg)
{
	int64_t v = -12345;
	int r = mq_parse_duration(s, &v);

	CHECK(r == -1 && v == -12345 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), msg) == 0,
	      "duration '%s' refused: %s (got %s)", s, msg, mq_errmsg());
}

static void test_duration(void)
{
	check_dur("500", 500);
	check_dur("500ms", 500);
	check_dur("0s", 0);
	check_dur("10s", 10000);
	check_dur("5m", 300000);
	check_dur("1h", 3600000);
	check_dur("7d", 604800000);
	check_dur_bad("", "invalid duration ''");
	check_dur_bad("ms", "invalid duration 'ms'");
	check_dur_bad("-5s", "invalid duration '-5s'");
	check_dur_bad("5x", "invalid duration '5x'");
	check_dur_bad("5 s", "invalid duration '5 s'");
	check_dur_bad("5S", "invalid duration '5S'");
	check_dur_bad("1.5h", "invalid duration '1.5h'");
	check_dur_bad("5sec", "invalid duration '5sec'");
	check_dur_bad("106751991168d", "duration '106751991168d' too large");
}

static void check_time(const char *s, int64_t want)
{
	int64_t v = -12345;
	int r = mq_parse_time(s, &v);

	CHECK(r == 0 && v == want, "time '%s' -> %lld (got %lld)", s,
	      (long long)want, (long long)v);
}

static void check_time_bad(const char *s)
{
	char msg[256];
	int64_t v = -12345;
	int r = mq_parse_time(s, &v);

	snprintf(msg, sizeof msg, "invalid time '%s'", s);
	CHECK(r == -1 && v == -12345 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), msg) == 0,
	      "time '%s' refused (got %s)", s, mq_errmsg());
}

static void test_time(void)
{
	/* date -u -d 2026-11-21T10:00:00Z +%s: 1795255200 */
	const int64_t t = 1795255200000LL;
	int64_t a, b;

	check_time("2026-11-21T10:00:00Z", t);
	check_time("2026-11-21t10:00:00z", t);
	check_time("2026-11-21 10:00:00Z", t);
	check_time("2026-11-21T10:00:00", t);
	check_time("2026-11-21T10:00", t);
	check_time("2026-11-21T10:00Z", t);
	check_time("2026-11-21T10:00:00.250Z", t + 250);
	check_time("2026-11-21T10:00:00,5Z", t + 500);
	check_time("2026-11-21T10:00:00.123456789Z", t + 123);
	check_time("2026-11-21T12:00:00+02:00", t);
	check_time("2026-11-21T12:00:00+0200", t);
	check_time("2026-11-21T12:00:00+02", t);
	check_time("2026-11-21T04:30:00-05:30", t);
	check_time("2026-11-21", t - 10 * 3600000LL);
	check_time("1970-01-01", 0);
	check_time("2024-02-29T00:00:00Z", 1709164800000LL);
	check_time("2000-02-29", 951782400000LL);
	check_time("1700000000000", 1700000000000LL);
	check_time("0", 0);
	check_time("2026", 2026);       /* an integer is epoch ms, never a year */

	setenv("MQ_NOW_MS", "1000000000000", 1);
	check_time("now", 1000000000000LL);
	check_time("-15m", 1000000000000LL - 900000);
	check_time("-2h", 1000000000000LL - 7200000);
	check_time("-7d", 1000000000000LL - 604800000);
	check_time("-30s", 1000000000000LL - 30000);
	check_time("-500ms", 1000000000000LL - 500);
	check_time("-500", 1000000000000LL - 500);
	CHECK_EQ_INT(mq_now_ms(), 1000000000000LL, "MQ_NOW_MS fakes the clock");
	setenv("MQ_NOW_MS", "junk", 1);
	a = mq_now_ms();
	CHECK(a > 1700000000000LL, "junk MQ_NOW_MS is ignored");
	unsetenv("MQ_NOW_MS");
	a = mq_now_ms();
	mq_parse_time("now", &b);
	CHECK(a > 1700000000000LL && b >= a && b - a < 10000,
	      "now is the wall clock without MQ_NOW_MS");

	check_time_bad("");
	check_time_bad("yesterday");
	check_time_bad("Now");
	check_time_bad("2026-11");
	check_time_bad("2026-13-01");
	check_time_bad("2026-00-10");
	check_time_bad("2026-02-29");
	check_time_bad("2026-04-31");
	check_time_bad("1900-02-29");
	check_time_bad("2026-11-21T");
	check_time_bad("2026-11-21T10");
	check_time_bad("2026-11-21T25:00");
	check_time_bad("2026-11-21T10:60");
	check_time_bad("2026-11-21T10:00:00.");
	check_time_bad("2026-11-21T10:00:00Zjunk");
	check_time_bad("2026-11-21T10:00:00+2");
	check_time_bad("2026-11-21T10:00:00+02:0");
	check_time_bad("2026-11-21T10:00:00+02:");
	check_time_bad("2026-11-21T10:00:00+02x");
	check_time_bad("2026-11-21T10:00:00+24:00");
	check_time_bad("2026-11-21Z");
	check_time_bad("2026-1-21");
	check_time_bad("-");
	check_time_bad("--15m");
	check_time_bad("-15x");
	check_time_bad("+15m");
	check_time_bad("12x");
	check_time_bad("99999999999999999999");
}

static void check_unesc(const char *s, const char *want, ssize_t wantlen)
{
	char buf[64];
	ssize_t n;

	memset(buf, 'X', sizeof buf);
	n = mq_unescape(s, buf, sizeof buf);
	CHECK(n == wantlen && memcmp(buf, want, (size_t)wantlen) == 0 &&
	      buf[wantlen] == '\0', "unescape '%s' -> %zd bytes", s, wantlen);
}

static void check_unesc_bad(const char *s)
{
	char buf[64], msg[128];
	ssize_t n = mq_unescape(s, buf, sizeof buf);

	snprintf(msg, sizeof msg, "invalid escape in '%s'", s);
	CHECK(n == -1 && mq_errclass() == MQ_EUSAGE && strcmp(mq_errmsg(), msg) == 0,
	      "unescape '%s' refused (got %s)", s, mq_errmsg());
}

static void test_unescape(void)
{
	char buf[4];
	ssize_t n;

	check_unesc("", "", 0);
	check_unesc("plain", "plain", 5);
	check_unesc("a\\tb", "a\tb", 3);
	check_unesc("\\n\\r\\t", "\n\r\t", 3);
	check_unesc("\\\\", "\\", 1);
	check_unesc("\\0", "\0", 1);
	check_unesc("a\\x00b", "a\0b", 3);
	check_unesc("\\x41\\x7a\\xFf", "Az\xff", 3);
	check_unesc("\\x411", "A1", 2);
	check_unesc("caf\xc3\xa9", "caf\xc3\xa9", 5);
	check_unesc_bad("\\x4");
	check_unesc_bad("\\x4g");
	check_unesc_bad("\\x");
	check_unesc_bad("\\q");
	check_unesc_bad("end\\");
	check_unesc_bad("\\N");

	n = mq_unescape("abc", buf, sizeof buf);
	CHECK(n == 3 && strcmp(buf, "abc") == 0, "unescape fills a buffer exactly");
	n = mq_unescape("abcd", buf, sizeof buf);
	CHECK(n == -1 && mq_errclass() == MQ_EUSAGE &&
	      strcmp(mq_errmsg(), "text 'abcd' too long (at most 3 bytes)") == 0,
	      "unescape refuses to overflow (got %s)", mq_errmsg());
	n = mq_unescape("", buf, 0);
	CHECK(n == -1 && mq_errclass() == MQ_EUSAGE, "unescape into 0 bytes");
	n = mq_unescape("\\x41\\x42\\x43", buf, sizeof buf);
	CHECK(n == 3 && strcmp(buf, "ABC") == 0, "escapes shrink: 12 chars fit in 4");
}

/* Runs fn in a child with stdout and stderr going to a file; returns the
 * exit status and the output in out. */
static int child(void (*fn)(void), char *out, size_t n)
{
	FILE *f = tmpfile();
	size_t len;
	pid_t pid;
	int st;

	fflush(stdout);
	if (!f || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		dup2(fileno(f), 1);
		dup2(fileno(f), 2);
		fn();
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	rewind(f);
	len = fread(out, 1, n - 1, f);
	out[len] = '\0';
	fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void do_warn(void) { mq_warn("cannot open topic '%s': %s", "logs", "gone"); }
static void do_die(void) { mq_die(MQ_ENOTFOUND, "no topic '%s'", "x"); }
static void do_usage(void) { mq_usage_error("unknown option '%s'", "--frob"); }
static void do_version(void) { mq_print_version(); }
static void do_die_err(void)
{
	mq_error(MQ_ECORRUPT, "bad batch in '%s'", "0.log");
	mq_die_err();
}

static void test_messages(void)
{
	char out[512];
	int st;

	mq_setprogname("/usr/local/bin/mq-consume");
	CHECK(strcmp(mq_progname, "mq-consume") == 0, "progname is argv0's basename");
	st = child(do_warn, out, sizeof out);
	CHECK(st == 0 && strcmp(out, "mq-consume: cannot open topic 'logs': gone\n") == 0,
	      "mq_warn prints 'prog: message'");
	st = child(do_die, out, sizeof out);
	CHECK(st == MQ_ENOTFOUND && strcmp(out, "mq-consume: no topic 'x'\n") == 0,
	      "mq_die prints and exits with its class (%d)", st);
	st = child(do_die_err, out, sizeof out);
	CHECK(st == MQ_ECORRUPT &&
	      strcmp(out, "mq-consume: bad batch in '0.log'\n") == 0,
	      "mq_die_err reports the recorded error (%d)", st);
	st = child(do_usage, out, sizeof out);
	CHECK(st == 2 && strcmp(out, "mq-consume: unknown option '--frob'\n"
			      "Try 'mq-consume --help' for more information.\n") == 0,
	      "mq_usage_error points at --help and exits 2 (%d)", st);
	st = child(do_version, out, sizeof out);
	CHECK(st == 0 && strcmp(out, "mq-consume (mq) " MQ_VERSION "\n") == 0,
	      "mq_print_version");
	mq_setprogname("mq-lag");
	CHECK(strcmp(mq_progname, "mq-lag") == 0, "progname without a slash");
}

static int isdir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_datadir(void)
{
	char base[] = "/tmp/mq-test-cli.XXXXXX", path[128], want[256], cmd[300];
	char *d;
	FILE *f;

	if (!mkdtemp(base)) {
		CHECK(0, "mkdtemp");
		return;
	}
	unsetenv("XDG_DATA_HOME");

	snprintf(path, sizeof path, "%s/new/nested", base);
	setenv("MQ_DIR", path, 1);
	d = mq_datadir(NULL);
	CHECK(d && strcmp(d, path) == 0 && isdir(path), "MQ_DIR is created with its parents");
	d = mq_datadir(NULL);
	CHECK(d && strcmp(d, path) == 0, "an existing MQ_DIR is used as it is");

	snprintf(path, sizeof path, "%s/given", base);
	d = mq_datadir(path);
	CHECK(d && strcmp(d, path) == 0 && isdir(path), "--dir wins over MQ_DIR");

	snprintf(path, sizeof path, "%s/slash//", base);
	snprintf(want, sizeof want, "%s/slash", base);
	d = mq_datadir(path);
	CHECK(d && strcmp(d, want) == 0 && isdir(want), "trailing slashes dropped (got %s)", d ? d : "null");

	setenv("MQ_DIR", "/proc/x", 1);
	d = mq_datadir(NULL);
	CHECK(!d && mq_errclass() == MQ_EIO &&
	      strncmp(mq_errmsg(), "cannot use data directory '/proc/x': ", 37) == 0,
	      "unusable MQ_DIR is MQ_EIO (got %s)", mq_errmsg());
	d = mq_datadir("/proc/x/y/z");
	CHECK(!d && mq_errclass() == MQ_EIO, "unusable --dir is MQ_EIO (got %s)", mq_errmsg());

	snprintf(path, sizeof path, "%s/file", base);
	if ((f = fopen(path, "w")))
		fclose(f);
	d = mq_datadir(path);
	snprintf(want, sizeof want, "cannot use data directory '%s': Not a directory", path);
	CHECK(!d && mq_errclass() == MQ_EIO && strcmp(mq_errmsg(), want) == 0,
	      "a file is not a data directory (got %s)", mq_errmsg());
	snprintf(path, sizeof path, "%s/file/sub", base);
	d = mq_datadir(path);
	CHECK(!d && mq_errclass() == MQ_EIO, "a file in the way is refused (got %s)", mq_errmsg());
	d = mq_datadir("");
	CHECK(!d && mq_errclass() == MQ_EIO, "empty --dir is refused (got %s)", mq_errmsg());

	setenv("MQ_DIR", "", 1);
	snprintf(path, sizeof path, "%s/xdg", base);
	setenv("XDG_DATA_HOME", path, 1);
	snprintf(want, sizeof want, "%s/xdg/mq", base);
	d = mq_datadir(NULL);
	CHECK(d && strcmp(d, want) == 0 && isdir(want), "empty MQ_DIR: $XDG_DATA_HOME/mq (got %s)",
	      d ? d : "null");

	unsetenv("MQ_DIR");
	setenv("XDG_DATA_HOME", "relative", 1);
	setenv("HOME", base, 1);
	snprintf(want, sizeof want, "%s/.local/share/mq", base);
	d = mq_datadir(NULL);
	CHECK(d && strcmp(d, want) == 0 && isdir(want),
	      "relative XDG_DATA_HOME ignored: ~/.local/share/mq (got %s)",
	      d ? d : "null");
	free(d);

	unsetenv("XDG_DATA_HOME");
	unsetenv("HOME");
	d = mq_datadir(NULL);
	CHECK(!d && mq_errclass() == MQ_EUSAGE, "no HOME: refused (got %s)", mq_errmsg());
	free(d);

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	CHECK(system(cmd) == 0, "clean up %s", base);
}

int main(void)
{
	test_int();
	test_size();
	test_duration();
	test_time();
	test_unescape();
	test_messages();
	test_datadir();
	return unit_done();
}
