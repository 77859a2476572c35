"""Providers of the Rust rules: plain records, as in Buck2's prelude."""

CrateInfo = provider(
    doc = "A compiled Rust crate.",
    fields = {
        "name": "Crate name (what `extern crate` and --extern use).",
        "type": "rlib, proc-macro or bin.",
        "root": "File: the crate root.",
        "srcs": "depset of source Files.",
        "edition": "Rust edition.",
        "output": "File: the full rlib, the proc-macro .so or the executable.",
        "metadata": "File that dependents compile against: a hollow rlib, an .rmeta, or `output`.",
        "owner": "Label string of the target that built the crate.",
        "version": "Crate version (CARGO_PKG_VERSION).",
        "features": "crate_features, passed as --cfg feature=\"x\".",
        "rustc_env": "Environment of the rustc actions.",
        "rustc_flags": "Extra rustc flags of the target.",
        "compile_data": "Files rustc reads besides sources.",
        "deps": "struct(crates, proc_macros): (extern name, CrateInfo, DepInfo) of direct dependencies.",
    },
)

DepInfo = provider(
    doc = "What compiling against a crate needs, transitively.",
    fields = {
        "transitive_metadata": "depset of Files: metadata (or proc-macro .so) of every crate below.",
        "transitive_outputs": "depset of Files: full rlibs (or proc-macro .so) of every crate below.",
        "transitive_link_flags": "depset of Files: link arguments (from build scripts) for the final link.",
    },
)

BuildInfo = provider(
    doc = "What a cargo_build_script run produced, for the crate it belongs to.",
    fields = {
        "out_dir": "Directory File: OUT_DIR, an input of the crate's rustc actions.",
        "rustc_flags": "File: rustc arguments (--cfg, --check-cfg, -L, -l), one per line.",
        "rustc_env": "File: KEY=VALUE lines from cargo:rustc-env.",
        "link_flags": "File: arguments for the final link of every dependent binary.",
    },
)
