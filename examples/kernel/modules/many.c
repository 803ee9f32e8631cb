/* Functions for the kernel's ustub and wstub entries: ten arguments, so
 * that some travel on the stack (six on Thumb-2, two on RV32), and a
 * 64-bit result, which comes back in two registers. */
#include "dynld.h"

DYNLD_EXPORT(m_sum, "fn(int, int, int, int, int, int, int, int, int, int) int");
DYNLD_EXPORT(m_wide, "fn(vlong, vlong) vlong");

int m_sum(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7, int a8, int a9)
{
	return a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7 + 9 * a8 + 10 * a9;
}

long long m_wide(long long a, long long b) { return a * b; }
