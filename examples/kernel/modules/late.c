/* A module loaded before the module it calls: cmath's c_fib. The call
 * goes through the stub aout link writes for an import, which reads the
 * import's GOT slot in the data: the one kind of reference a registry can
 * bind again once the provider loads. Until then the slot leads to a
 * trap, which reports the call to the kernel's handler and returns its
 * answer. */
#include "dynld.h"

DYNLD_IMPORT(c_fib, "fn(uint) uint");
DYNLD_EXPORT(late_fib, "fn(uint) uint");

extern unsigned c_fib(unsigned);

unsigned late_fib(unsigned n) { return c_fib(n); }
