/* A module loaded before the module it calls: it reaches cmath's c_fib
 * only through a pointer in its data, the one kind of reference a
 * registry can bind again once the provider loads. Until then the
 * pointer leads to a trap, which reports the call to the kernel's
 * handler and returns its answer. */
#include "dynld.h"

DYNLD_IMPORT(c_fib, "fn(uint) uint");
DYNLD_EXPORT(late_fib, "fn(uint) uint");

extern unsigned c_fib(unsigned);

/* volatile: read at each call, never folded into a direct call. */
static unsigned (*volatile fib)(unsigned) = c_fib;

unsigned late_fib(unsigned n) { return fib(n); }
