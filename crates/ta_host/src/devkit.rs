//! The TA dev kit: the GP Internal Core API headers and the one C file
//! every TA is built with, embedded in the binary and written out on
//! demand (`teeheap ta-dev-kit`).

use std::path::{Path, PathBuf};

/// `(path inside the kit, contents)`.
pub const FILES: &[(&str, &str)] = &[
    ("include/tee_api_defines.h", include_str!("../devkit/include/tee_api_defines.h")),
    ("include/tee_api_types.h", include_str!("../devkit/include/tee_api_types.h")),
    ("include/tee_api.h", include_str!("../devkit/include/tee_api.h")),
    ("include/tee_internal_api.h", include_str!("../devkit/include/tee_internal_api.h")),
    ("include/tee_internal_api_extensions.h", include_str!("../devkit/include/tee_internal_api_extensions.h")),
    ("include/tee_ta_api.h", include_str!("../devkit/include/tee_ta_api.h")),
    ("include/trace.h", include_str!("../devkit/include/trace.h")),
    ("include/user_ta_header.h", include_str!("../devkit/include/user_ta_header.h")),
    ("include/pta_invoke_tests.h", include_str!("../devkit/include/pta_invoke_tests.h")),
    ("src/teeheap_ta_header.c", include_str!("../devkit/src/teeheap_ta_header.c")),
];

/// Where the kit of this version goes by default:
/// `$XDG_CACHE_HOME/teeheap/ta-dev-kit-VERSION` (or `~/.cache/...`, or the
/// temporary directory).
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("teeheap").join(format!("ta-dev-kit-{}", env!("CARGO_PKG_VERSION")))
}

/// Writes the kit into `dir` (files that already hold the same bytes are
/// left alone).
///
/// # Errors
/// The host's error creating a directory or writing a file.
pub fn install(dir: &Path) -> std::io::Result<()> {
    for (rel, text) in FILES {
        let p = dir.join(rel);
        if std::fs::read(&p).is_ok_and(|b| b == text.as_bytes()) {
            continue;
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &p)?;
    }
    Ok(())
}

/// The compiler flags for a TA (include directory of the kit in `dir`).
pub fn cflags(dir: &Path) -> String {
    format!("-I{} -DTEEHEAP_TA=1", dir.join("include").display())
}

/// What else a TA is built with: the properties file.
pub fn link(dir: &Path) -> String {
    dir.join("src/teeheap_ta_header.c").display().to_string()
}
