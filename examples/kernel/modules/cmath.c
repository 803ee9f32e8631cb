/* A module written in C: arithmetic and a greeting, calling back into the
 * kernel for output, the tick counter and memory copies. Built
 * freestanding; every kernel service it uses is an import whose type is
 * stated here and checked against the kernel's table at load. */
#include "dynld.h"

DYNLD_IMPORT(kwrite, "fn(*uchar, ulong) void");
DYNLD_IMPORT(kticks, "fn(void) uint");
DYNLD_IMPORT(kmemcpy, "fn(*uchar, *uchar, ulong) *uchar");
DYNLD_EXPORT(c_fib, "fn(uint) uint");
DYNLD_EXPORT(c_crc32, "fn(*uchar, ulong) uint");
DYNLD_EXPORT(c_greet, "fn(*uchar, ulong) ulong");
DYNLD_EXPORT(c_calls, "uint");

extern void kwrite(const unsigned char *, unsigned long);
extern unsigned kticks(void);
extern unsigned char *kmemcpy(unsigned char *, const unsigned char *, unsigned long);

unsigned c_calls;                     /* bss, read by the kernel */
static unsigned crc_table[256];       /* bss, filled on first use */
static const unsigned char hello[] = "hello from C, ";

unsigned c_fib(unsigned n)
{
	unsigned a = 0, b = 1;

	while (n-- > 0) {
		unsigned t = a + b;
		a = b;
		b = t;
	}
	c_calls++;
	return a;
}

unsigned c_crc32(const unsigned char *p, unsigned long n)
{
	unsigned crc = 0xffffffff;

	if (crc_table[1] == 0) {
		for (unsigned i = 0; i < 256; i++) {
			unsigned c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
	}
	while (n-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	c_calls++;
	return ~crc;
}

/* Appends the decimal digits of v to buf at k; returns the new length. */
static unsigned long put_uint(unsigned char *buf, unsigned long k, unsigned v)
{
	unsigned char digits[10];
	int n = 0;

	do {
		digits[n++] = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	while (n > 0)
		buf[k++] = digits[--n];
	return k;
}

/* Writes "hello from C, NAME (tick T)" through the kernel; returns its length. */
unsigned long c_greet(const unsigned char *name, unsigned long len)
{
	static const unsigned char tick[] = " (tick ";
	unsigned char line[80];
	unsigned long k = 0;

	if (len > 32)
		len = 32;
	kmemcpy(line, hello, sizeof hello - 1);
	k += sizeof hello - 1;
	kmemcpy(line + k, name, len);
	k += len;
	kmemcpy(line + k, tick, sizeof tick - 1);
	k += sizeof tick - 1;
	k = put_uint(line, k, kticks());
	line[k++] = ')';
	line[k++] = '\n';
	kwrite(line, k);
	c_calls++;
	return k;
}
