//! Module metadata through the registry, over modules compiled from C by
//! gcc (declaring it with `DYNLD_MODULE`) and linked by `aout link`:
//! dependencies found through the search path and loaded first, ABI
//! requirements refused before any code runs, options arriving at setup,
//! a refusing setup leaving nothing loaded, teardown before the
//! destructors, dependency cycles and versions refused.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::{Abi, Error, LoadOptions, Registry, SearchPath, SetupOption, Version, MMAP};
use dynld_suite::counting::CountingMemory;
use std::path::PathBuf;
use std::sync::Mutex;

use dynld_suite::notes::{host, notes, HEADER};

/// The ABIs the host offers.
static ABIS: [Abi<'static>; 2] = [Abi::new("kernel", 1, 4), Abi::new("ansic", 1, 0)];

/// The modules, by file name: each notes its number at construction and
/// ten times it at destruction.
const MODULES: &[(&str, &str)] = &[
    (
        "lib",
        r#"
DYNLD_MODULE(lib, "1.3.0", "library", DYNLD_ABI("kernel", 1, 2));
DYNLD_EXPORT(lib_twice, "fn(int) int");
int lib_twice(int x) { return 2 * x; }
__attribute__((constructor)) static void hi(void) { note(1); }
__attribute__((destructor)) static void bye(void) { note(10); }
"#,
    ),
    (
        "app",
        r#"
DYNLD_MODULE(app, "0.2.1", "driver",
	DYNLD_ABI("kernel", 1, 0) DYNLD_DEPENDS(lib, ">=1.1, <2")
	DYNLD_SETUP(app_setup) DYNLD_TEARDOWN(app_teardown));
DYNLD_IMPORT(lib_twice, "fn(int) int");
DYNLD_EXPORT(app_depth, "fn(void) int");
extern int lib_twice(int);
static int depth = -1;
static int atoi10(const char *s) { int v = 0; while (*s >= '0' && *s <= '9') v = 10 * v + *s++ - '0'; return v; }
static int same(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
dynld_setup_fn app_setup;
int app_setup(const struct dynld_option *opt, unsigned n) {
	note(3);
	for (unsigned i = 0; i < n; i++)
		if (same(opt[i].key, "depth"))
			depth = atoi10(opt[i].value);
	return depth < 0 ? 22 : 0;
}
dynld_teardown_fn app_teardown;
void app_teardown(void) { note(4); }
int app_depth(void) { return lib_twice(depth); }
__attribute__((constructor)) static void hi(void) { note(2); }
__attribute__((destructor)) static void bye(void) { note(20); }
"#,
    ),
    (
        "newabi",
        r#"
DYNLD_MODULE(newabi, "1.0.0", "driver", DYNLD_ABI("kernel", 2, 0));
__attribute__((constructor)) static void hi(void) { note(5); }
"#,
    ),
    (
        "newminor",
        r#"
DYNLD_MODULE(newminor, "1.0.0", "driver", DYNLD_ABI("kernel", 1, 5));
__attribute__((constructor)) static void hi(void) { note(6); }
"#,
    ),
    (
        "video",
        r#"
DYNLD_MODULE(video, "1.0.0", "driver", DYNLD_ABI("video", 1, 0));
__attribute__((constructor)) static void hi(void) { note(7); }
"#,
    ),
    (
        "cyc_x",
        r#"
DYNLD_MODULE(cyc_x, "1.0.0", "library", DYNLD_DEPENDS(cyc_y, "*"));
__attribute__((constructor)) static void hi(void) { note(8); }
"#,
    ),
    (
        "cyc_y",
        r#"
DYNLD_MODULE(cyc_y, "1.0.0", "library", DYNLD_DEPENDS(cyc_x, "*"));
__attribute__((constructor)) static void hi(void) { note(9); }
"#,
    ),
    (
        "wantlib2",
        r#"
DYNLD_MODULE(wantlib2, "1.0.0", "driver", DYNLD_DEPENDS(lib, ">=2"));
__attribute__((constructor)) static void hi(void) { note(11); }
"#,
    ),
    (
        "alias",
        r#"
DYNLD_MODULE(notalias, "1.0.0", "driver");
__attribute__((constructor)) static void hi(void) { note(13); }
"#,
    ),
    (
        "orphan",
        r#"
DYNLD_MODULE(orphan, "1.0.0", "driver", DYNLD_DEPENDS(lib, "1") DYNLD_DEPENDS(nolib, "1"));
__attribute__((constructor)) static void hi(void) { note(12); }
"#,
    ),
];

/// The directory holding every module as `NAME.dl`, built once.
fn dir() -> &'static PathBuf {
    static D: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("dynld-meta-mods-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (name, src) in MODULES {
            let bytes = dynld_suite::cc::module(
                &format!("meta-{name}"),
                &[&format!("{HEADER}{src}")],
                false,
            );
            std::fs::write(d.join(format!("{name}.dl")), bytes).unwrap();
        }
        d
    })
}

fn path() -> SearchPath {
    SearchPath::new()
        .dir(dir().join("nowhere"))
        .dir(dir())
        .pattern("lib%s.so")
        .pattern("%s.dl")
}

/// The tests share NOTES: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

type DepthFn = extern "C" fn() -> i32;

#[test]
fn dependencies_first_options_at_setup_teardown_before_destructors() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = path();
    assert_eq!(path.locate("app"), Some(dir().join("app.dl")));
    assert_eq!(path.locate("../app"), None);
    let reg = Registry::growable(host(), &MMAP)
        .with_abis(&ABIS)
        .with_finder(&path);
    notes();
    let opts = [
        SetupOption::new(c"mode", c"fast"),
        SetupOption::new(c"depth", c"24"),
    ];
    let app = reg
        .load_named("app", &LoadOptions::new().setup(&opts))
        .unwrap();
    // lib first (its constructor), then app's constructor, then its setup.
    assert_eq!(notes(), [1, 2, 3]);
    let depth = app.get::<DepthFn>("app_depth").unwrap();
    assert_eq!(depth.call(), 48, "the option reached setup");
    let info = reg.info("app").unwrap();
    assert_eq!(info.version, Some(Version::new(0, 2, 1)));
    assert_eq!(info.class.as_str(), "driver");
    assert!(info.loaded_at > 1_700_000_000_000, "{}", info.loaded_at);
    let md = app.metadata().unwrap();
    let deps: Vec<_> = md.dependencies().map(|d| d.name).collect();
    assert_eq!(deps, ["lib"]);
    let lib = reg.info("lib").unwrap();
    // Bound to and declared: one dependent; loaded for app: a candidate.
    assert_eq!((lib.dependents, lib.candidate), (1, true));
    assert_eq!(lib.version, Some(Version::new(1, 3, 0)));
    drop(app);
    // Teardown, then the destructors; the sweep then takes lib.
    reg.unload("app").unwrap();
    assert_eq!(notes(), [4, 20]);
    assert_eq!(reg.sweep(), 1);
    assert_eq!(notes(), [10]);
    assert!(reg.list().is_empty());

    // Loaded by name itself, lib is no candidate: it stays after app goes.
    drop(reg.load_named("lib", &LoadOptions::new()).unwrap());
    let app = reg
        .load_named("app", &LoadOptions::new().setup(&opts))
        .unwrap();
    drop(app);
    reg.unload("app").unwrap();
    assert_eq!(reg.sweep(), 0);
    assert!(!reg.info("lib").unwrap().candidate);
}

#[test]
fn abi_requirements_refused_before_any_code_runs() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = path();
    let mem = CountingMemory::new(&MMAP);
    let reg = Registry::growable(host(), &mem)
        .with_abis(&ABIS)
        .with_finder(&path);
    notes();
    for (name, msg) in [
        (
            "newabi",
            "module newabi requires ABI kernel 2.0; the host offers kernel 1.4",
        ),
        (
            "newminor",
            "module newminor requires ABI kernel 1.5; the host offers kernel 1.4",
        ),
        (
            "video",
            "module video requires ABI video 1.0; the host offers no video ABI",
        ),
    ] {
        let e = reg.load_named(name, &LoadOptions::new()).unwrap_err();
        assert!(matches!(e, Error::Abi { .. }), "{e}");
        assert_eq!(e.to_string(), msg);
    }
    assert_eq!(notes(), [], "no constructor ran");
    assert!(reg.list().is_empty());
    assert_eq!(mem.live(), 0, "nothing stays allocated");
    // A host offering nothing refuses lib too, which requires kernel 1.2.
    let bare = Registry::growable(host(), &MMAP).with_finder(&path);
    let e = bare.load_named("lib", &LoadOptions::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "module lib requires ABI kernel 1.2; the host offers no kernel ABI"
    );
}

#[test]
fn refusals_leave_nothing_loaded() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = path();
    let mem = CountingMemory::new(&MMAP);
    let reg = Registry::growable(host(), &mem)
        .with_abis(&ABIS)
        .with_finder(&path);
    notes();
    // No depth option: app's setup refuses with 22. Its constructor and
    // destructor ran, its teardown did not, and lib, loaded for it, went.
    let e = reg.load_named("app", &LoadOptions::new()).unwrap_err();
    assert!(matches!(e, Error::Setup { code: 22, .. }), "{e}");
    assert_eq!(e.to_string(), "module app refused its setup with code 22");
    assert_eq!(notes(), [1, 2, 3, 20, 10]);
    assert!(reg.list().is_empty());
    assert_eq!(mem.live(), 0);

    let e = reg.load_named("cyc_x", &LoadOptions::new()).unwrap_err();
    assert_eq!(e.to_string(), "dependency cycle: cyc_x -> cyc_y -> cyc_x");
    let e = reg.load_named("wantlib2", &LoadOptions::new()).unwrap_err();
    assert_eq!(e.to_string(), "wantlib2 needs lib >=2.0.0, but has 1.3.0");
    let e = reg.load_named("orphan", &LoadOptions::new()).unwrap_err();
    assert_eq!(e.to_string(), "module nolib not found");
    let e = reg.load_named("absent", &LoadOptions::new()).unwrap_err();
    assert_eq!(e.to_string(), "module absent not found");
    assert_eq!(notes(), [1, 10, 1, 10], "lib came and went for each");
    assert!(reg.list().is_empty());
    assert_eq!(mem.live(), 0);

    // A loaded lib at another version than wanted stays loaded.
    drop(reg.load_named("lib", &LoadOptions::new()).unwrap());
    notes();
    assert!(reg.load_named("wantlib2", &LoadOptions::new()).is_err());
    assert_eq!(reg.list().len(), 1);
    assert_eq!(notes(), []);
    // Without a finder nothing is found by name.
    let plain = Registry::growable(host(), &MMAP);
    let e = plain.load_named("lib", &LoadOptions::new()).unwrap_err();
    assert_eq!(e.to_string(), "module lib not found");
}

/// The file the finder gives for a name must hold the module of that name:
/// alias.dl declares itself notalias, and is refused before its
/// constructor runs; loaded under a name the caller chose, it loads.
#[test]
fn a_module_found_by_name_must_declare_that_name() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = path();
    let reg = Registry::growable(host(), &MMAP).with_finder(&path);
    notes();
    let e = reg.load_named("alias", &LoadOptions::new()).unwrap_err();
    assert!(matches!(e, Error::Misnamed { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "module found as alias, but it declares itself notalias"
    );
    assert!(notes().is_empty(), "its constructor ran");
    assert!(reg.list().is_empty());
    let bytes = std::fs::read(dir().join("alias.dl")).unwrap();
    let m = reg
        .load("alias", &mut dynld::SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(notes(), [13]);
    drop(m);
}
