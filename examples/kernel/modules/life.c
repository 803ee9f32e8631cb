/* A module with a life: a .preinit_array entry and a constructor that run
 * in order when the kernel initialises it, a destructor and an exit
 * handler (registered with atexit, which aout link writes for the module)
 * that run, in that order, when the kernel unloads it. */
#include "dynld.h"

DYNLD_IMPORT(kwrite, "fn(*uchar, ulong) void");
DYNLD_EXPORT(l_number, "fn(void) uint");
DYNLD_EXPORT(l_register, "fn(void) int");

extern void kwrite(const unsigned char *, unsigned long);
extern int atexit(void (*)(void));

static unsigned number;

static void say(const char *s)
{
	unsigned long n = 0;

	while (s[n] != 0)
		n++;
	kwrite((const unsigned char *)s, n);
}

static void first(void) { number = 1; }
__attribute__((section(".preinit_array"), used)) static void (*first_p)(void) = first;

__attribute__((constructor)) static void then(void) { number = number * 10 + 2; }

__attribute__((destructor)) static void last(void) { say("  life.dl destructor\n"); }

static void bye(void) { say("  life.dl exit handler\n"); }

unsigned l_number(void) { return number; }

int l_register(void) { return atexit(bye); }
