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

#endif
