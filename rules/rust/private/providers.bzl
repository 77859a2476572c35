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
        "transitive_link_flags": "depset of strings: link flags for the final link (from build scripts).",
    },
)
