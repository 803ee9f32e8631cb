/* The C half of the sample module: builds a greeting, hands it to the
 * host, and asks the Rust half for a statistic. */
#include "dynld.h"

DYNLD_IMPORT(host_log, "fn(*char) int");
DYNLD_IMPORT(host_ticks, "fn(void) vlong");
DYNLD_EXPORT(greet, "fn(*char) vlong");

extern int host_log(const char *);
extern long host_ticks(void);
extern long mean(const long *v, long n); /* in stats.rs */

static char line[128];
static const long samples[] = {3, 9, 4, 12, 7};

long greet(const char *who) {
	static const char hello[] = "hello from the module, ";
	int n = 0;
	for (const char *p = hello; *p && n < 100; p++) line[n++] = *p;
	for (const char *p = who; *p && n < 126; p++) line[n++] = *p;
	line[n] = 0;
	host_log(line);
	return mean(samples, 5) * 1000 + host_ticks();
}
