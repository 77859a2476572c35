//! Test-only helpers (the library is `testonly = True`).

use std::path::PathBuf;

/// Locates a runtime data file given its workspace-relative path.
///
/// Under `bazel test` the working directory is the main repository's runfiles
/// directory, so the relative path usually works as is; RUNFILES_DIR and
/// TEST_SRCDIR are consulted as well.
pub fn data_path(relative: &str) -> PathBuf {
    let mut candidates = Vec::new();
    for var in ["RUNFILES_DIR", "TEST_SRCDIR"] {
        if let Some(dir) = std::env::var_os(var) {
            candidates.push(PathBuf::from(&dir).join("_main").join(relative));
        }
    }
    candidates.push(PathBuf::from(relative));
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("data file {} not found in {:?}", relative, candidates))
}

/// Reads a runtime data file and trims surrounding whitespace.
pub fn read_data(relative: &str) -> String {
    let path = data_path(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {}", path.display(), err))
        .trim()
        .to_string()
}
