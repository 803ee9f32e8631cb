/*
 * dynld.h: state the type signatures of what a module exports and imports.
 *
 *	DYNLD_EXPORT(add, "fn(int, int) int");
 *	DYNLD_IMPORT(host_log, "fn(*char, ...) int");
 *	DYNLD_EXPORT(counter, "int");
 *
 * Each statement puts the record "E|I NAME DESC" in the object file's
 * .dynld.sig section. `aout link` hashes DESC (the grammar is in dynld(3))
 * into the symbol's signature, records the signature in the module and
 * DESC in its type descriptions, and refuses two statements that give one
 * name different types. The loader then refuses to bind an import to an
 * export whose signature differs, showing both descriptions where the
 * two sides carry them (with dynld's alloc feature); Module::get refuses
 * an export whose signature is not that of the Rust type asked for.
 */
#ifndef DYNLD_H
#define DYNLD_H

#define DYNLD_CAT_(a, b) a##b
#define DYNLD_CAT(a, b) DYNLD_CAT_(a, b)
#define DYNLD_STATEMENT_(kind, name, desc)                                  \
	__attribute__((used, section(".dynld.sig"))) static const char         \
	DYNLD_CAT(dynld_sig_, __COUNTER__)[] = kind " " #name " " desc

/* NAME is exported with the type DESC. */
#define DYNLD_EXPORT(name, desc) DYNLD_STATEMENT_("E", name, desc)
/* NAME is imported and must have the type DESC. */
#define DYNLD_IMPORT(name, desc) DYNLD_STATEMENT_("I", name, desc)

/*
 * Module metadata, declared once per module:
 *
 *	DYNLD_MODULE(cmath, "1.2.3", "library",
 *		DYNLD_ABI("ansic", 1, 0)
 *		DYNLD_DEPENDS(lib, ">=1.1, <2")
 *		DYNLD_SETUP(cmath_setup)
 *		DYNLD_TEARDOWN(cmath_teardown));
 *
 * puts the record, as text ("module cmath 1.2.3 library", then a line per
 * item), in the object's .dynld.module section. `aout link` checks it,
 * refuses a module with two records, or whose setup or teardown function
 * is not one of its exported functions or is stated with another type,
 * and writes the module's metadata table. A registry refuses the module
 * before any of its code runs if the host offers none of the ABI
 * versions it requires (same class and major, a minor at least the one
 * required), loads its dependencies first, and after its constructors
 * calls setup with the caller's options; a non-zero result refuses the
 * load with that code. Teardown runs at unload, before the destructors.
 * Declare the functions with the types below to have the compiler check
 * them:
 *
 *	dynld_setup_fn cmath_setup;
 *	dynld_teardown_fn cmath_teardown;
 */
struct dynld_option {
	const char *key;
	const char *value;
};
typedef int dynld_setup_fn(const struct dynld_option *opt, unsigned int nopt);
typedef void dynld_teardown_fn(void);

#define DYNLD_MODULE(name, version, class, ...)                             \
	__attribute__((used, section(".dynld.module"))) static const char      \
	dynld_module_record[] = "module " #name " " version " " class "\n"   \
	__VA_ARGS__
/* The host must offer ABI CLASS at MAJOR.MINOR (or a later minor). */
#define DYNLD_ABI(class, major, minor) "abi " class " " #major "." #minor "\n"
/* Module NAME, at a version in RANGE (">=1.1, <2", "1.1", "*"), loads first. */
#define DYNLD_DEPENDS(name, range) "depends " #name " " range "\n"
/* FN (a dynld_setup_fn) is called with the options after the constructors. */
#define DYNLD_SETUP(fn) "setup " #fn "\n"
/* FN (a dynld_teardown_fn) is called at unload, before the destructors. */
#define DYNLD_TEARDOWN(fn) "teardown " #fn "\n"

/*
 * The loader's API for C (dynld(3), after Inferno's dynld(10.2)), in the
 * static library libdynld_capi.a that the capi/ crate builds. Declared
 * unless DYNLD_NO_API is defined, for sources (modules) that want the
 * macros above alone. Every call returns nil or -1 on error, with the
 * reason in dynld_errstr (and, for dynloadgen, passed to err).
 */
#ifndef DYNLD_NO_API
#ifndef DYNLD_API_H
#define DYNLD_API_H
#include <stddef.h>
#include <stdint.h>

/* A symbol: sig is 32-bit in fact (0 = unchecked); addr is uintptr_t where
 * the manual has ulong. A table ends with a nil name (as _exporttab). */
typedef struct Dynsym Dynsym;
struct Dynsym {
	unsigned long sig;
	uintptr_t addr;
	char *name;
};

/* A loaded module; the library owns it (free it with dynobjfree). */
typedef struct Dynobj Dynobj;
struct Dynobj {
	unsigned long size;	/* total size in bytes */
	unsigned long text;	/* bytes of text */
	unsigned long data;	/* bytes of data */
	unsigned long bss;	/* bytes of bss */
	unsigned char *base;	/* start of text, data, bss */
	int nexport;
	Dynsym *export;	/* export table, sorted by name */
	int nimport;
	Dynsym **import;	/* entries of the loader's table, as bound */
};

Dynsym *dynfindsym(char *name, Dynsym *syms, int nsym);
Dynobj *dynloadfd(int fd, Dynsym *exports, int nexport, unsigned long maxsize);
Dynobj *dynloadgen(void *file, long (*read)(void *, void *, long),
	long long (*seek)(void *, long long, int), void (*err)(char *),
	Dynsym *exports, int nexport, unsigned long maxsize);
int dynloadable(void *file, long (*read)(void *, void *, long),
	long long (*seek)(void *, long long, int));
void *dynimport(Dynobj *o, char *name, unsigned long sig);
void dynfreeimport(Dynobj *o);
void dynobjfree(Dynobj *o);
int dyntabsize(Dynsym *t);

/* Beyond the manual: run a module's constructors (once); the signature of
 * a type description (0 if malformed); the last error string; the arena a
 * freestanding build loads into, given once before any load. */
int dynld_init(Dynobj *o);
unsigned long dynld_sig(const char *desc);
int dynld_errstr(char *buf, int n);
int dynld_arena(void *mem, size_t len);
/* The type descriptions of a table's entries (_exportdesc beside
 * _exporttab, from aout exports), shown in signature mismatch messages. */
int dynld_describe(Dynsym *t, const char *const *descs);

/* The registry: set up once with the program's table, then modules by
 * name, holds by handle (a positive int), symbols by name and address. */
typedef struct Dynloc Dynloc;
struct Dynloc {
	char module[64];	/* "" for the program's own export */
	char symbol[64];	/* "" if in no symbol */
	unsigned long module_offset;
	unsigned long symbol_offset;
};
int dynld_reginit(Dynsym *exports, int nexport);
int dynld_regload(const char *name, void *file, long (*read)(void *, void *, long),
	long long (*seek)(void *, long long, int));
int dynld_hold(const char *name);
int dynld_release(int hold);
int dynld_unload(const char *name);
int dynld_sweep(void);
void *dynld_lookup(const char *name, unsigned long sig);
void *dynld_holdsym(int hold, const char *name, unsigned long sig);
int dynld_locate(const void *addr, Dynloc *loc);

/* Autoload stubs (aout stubs writes the entries and modules; dynld(3)). An
 * entry's first member is the pointer callers call through, typed as the
 * function in the entry's own struct. */
#define DYNLD_STUB_ENTRY_FIELDS \
	void (*stub)(void); \
	void (*retfunc)(void); \
	const char *name; \
	const struct dynld_stub_module *module; \
	uintptr_t hold; \
	uint32_t sig; \
	uint16_t argnword; \
	uint16_t kind
struct dynld_stub_entry {
	void (*volatile slot)(void);
	DYNLD_STUB_ENTRY_FIELDS;
};
struct dynld_stub_module {
	const char *name, *version, *class_;
	struct dynld_stub_entry *const *entries;
	size_t nentries;
	uintptr_t loading;
	uint32_t failures;
};
/* Stubs load a module missing from the registry by calling load(name),
 * which loads it (dynld_regload) and returns 0, or -1. */
int dynld_stubinit(int (*load)(const char *name));
/* Puts a module's patched entries back to their stubs and unloads it: no
 * call through them may be running. */
int dynld_stubunload(struct dynld_stub_module *m);

/* An entry's stub: the entry's address in a scratch register, then the
 * trampoline of its kind. */
#if defined(__x86_64__)
#define DYNLD_STUB_CODE(s, e, t) __asm__(".pushsection .text." #s ",\"ax\",@progbits\n" \
	".globl " #s "\n.type " #s ",@function\n.p2align 4\n" #s ":\n" \
	"\tlea " #e "(%rip), %r11\n\tjmp " #t "\n.popsection")
#elif defined(__aarch64__)
#define DYNLD_STUB_CODE(s, e, t) __asm__(".pushsection .text." #s ",\"ax\",%progbits\n" \
	".globl " #s "\n.type " #s ",%function\n.p2align 2\n" #s ":\n" \
	"\tadrp x16, " #e "\n\tadd x16, x16, :lo12:" #e "\n\tb " #t "\n.popsection")
#elif defined(__riscv)
#define DYNLD_STUB_CODE(s, e, t) __asm__(".pushsection .text." #s ",\"ax\",@progbits\n" \
	".globl " #s "\n.type " #s ",@function\n.p2align 2\n" #s ":\n" \
	"1:\tauipc t2, %pcrel_hi(" #e ")\n\taddi t2, t2, %pcrel_lo(1b)\n\ttail " #t "\n.popsection")
#elif defined(__thumb2__)
#define DYNLD_STUB_CODE(s, e, t) __asm__(".syntax unified\n.thumb\n" \
	".pushsection .text." #s ",\"ax\",%progbits\n" \
	".globl " #s "\n.type " #s ",%function\n.p2align 2\n.thumb_func\n" #s ":\n" \
	"\tmovw r12, #:lower16:" #e "\n\tmovt r12, #:upper16:" #e "\n\tb.w " #t "\n.popsection")
#else
#define DYNLD_STUB_CODE(s, e, t) _Static_assert(0, "dynld: no autoload stubs for this architecture")
#endif
#endif
#endif

#endif
