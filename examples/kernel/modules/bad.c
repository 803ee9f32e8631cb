/* A module built against a wrong idea of the kernel: it believes kticks
 * returns a signed int. The kernel exports it as returning uint, so the
 * loader refuses to bind it and names the mismatch. */
#include "dynld.h"

DYNLD_IMPORT(kticks, "fn(void) int");
DYNLD_EXPORT(bad_elapsed, "fn(int) int");

extern int kticks(void);

int bad_elapsed(int since)
{
	return kticks() - since;
}
