/*
 * unit.h: the smallest test harness that does the job.  Each check
 * prints a TAP line ("ok N - what" / "not ok N - what"); tests/run counts
 * them.  A unit test file is a main() calling checks; it exits 1 when any
 * failed.
 */
#ifndef UNIT_H
#define UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_n, unit_failed;

/* cond is evaluated once: it may have side effects */
#define CHECK(cond, ...) do { \
	int unit_ok = !!(cond); \
	unit_n++; \
	if (unit_ok) { printf("ok %d - ", unit_n); } \
	else { unit_failed++; printf("not ok %d - ", unit_n); } \
	printf(__VA_ARGS__); \
	if (!unit_ok) printf("  (%s:%d: %s)", __FILE__, __LINE__, #cond); \
	printf("\n"); \
} while (0)

#define CHECK_EQ_INT(a, b, ...) do { \
	long long unit_a = (long long)(a), unit_b = (long long)(b); \
	CHECK(unit_a == unit_b, __VA_ARGS__); \
	if (unit_a != unit_b) printf("#   got %lld, want %lld\n", unit_a, unit_b); \
} while (0)

#define CHECK_MEM(a, b, n, ...) CHECK(memcmp((a), (b), (n)) == 0, __VA_ARGS__)

static inline int unit_done(void)
{
	printf("1..%d\n", unit_n);
	return unit_failed ? 1 : 0;
}
#endif
