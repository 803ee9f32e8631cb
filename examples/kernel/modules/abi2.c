/* A module built for a later kernel: its metadata requires the kernel's
 * ABI at major 2, and its constructor would announce it through the
 * kernel's output. A kernel that offers another major refuses it before
 * any of its code runs: the constructor's line never appears. */
#include "dynld.h"

DYNLD_MODULE(abi2, "1.0.0", "driver", DYNLD_ABI("kernel", 2, 0));
DYNLD_IMPORT(kwrite, "fn(*uchar, ulong) void");
DYNLD_EXPORT(a_ready, "fn(void) uint");

extern void kwrite(const unsigned char *, unsigned long);

static unsigned ready;

__attribute__((constructor)) static void start(void)
{
	static const unsigned char line[] = "  abi2.dl constructor ran\n";

	kwrite(line, sizeof line - 1);
	ready = 1;
}

unsigned a_ready(void) { return ready; }
