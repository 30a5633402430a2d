//! The user documentation stays true: the annotated configuration parses
//! to the built-in platform and is the one docs/config.md shows, shell
//! completions and manual pages generate, and every relative link in the
//! README and docs/ names a file of the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use teeheap::{ANNOTATED_DEFAULT_CONFIG, PlatformConfig};

fn teeheap(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_teeheap"))
        .args(args)
        .env_remove("TEEHEAP_CONFIG")
        .env_remove("TEEHEAP_SOCKET")
        .output()
        .unwrap();
    assert!(out.status.success(), "teeheap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn full_default_config_is_the_default_platform() {
    let out = teeheap(&["default-config", "--full"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ANNOTATED_DEFAULT_CONFIG);
    let parsed = PlatformConfig::from_toml(ANNOTATED_DEFAULT_CONFIG).unwrap();
    assert_eq!(parsed, PlatformConfig::embedded_default());
    // The short form is the embedded file itself.
    let short = teeheap(&["default-config"]).stdout;
    assert_eq!(PlatformConfig::from_toml(std::str::from_utf8(&short).unwrap()).unwrap(), parsed);
}

#[test]
fn commented_keys_of_the_full_config_are_valid() {
    // Uncommenting every optional key (`# key = value` lines and the
    // tables they belong to) still gives a valid description.
    let mut text = String::new();
    for line in ANNOTATED_DEFAULT_CONFIG.lines() {
        let code = line.strip_prefix("# ").filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            first.starts_with('[') || l.contains(" = ")
        });
        text.push_str(code.unwrap_or(line));
        text.push('\n');
    }
    let c = PlatformConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.carveout.len(), 2);
    assert!(c.carveout[0].read.is_some() && c.carveout[0].write.is_some());
    assert!(c.limits.process.is_some() && c.limits.heap.contains_key("protected,secure-video"));
    teeheap_platform::Platform::new(c).expect("and it boots");
}

#[test]
fn config_reference_shows_the_full_config() {
    let doc = std::fs::read_to_string(repo().join("docs/config.md")).unwrap();
    assert!(
        doc.contains(ANNOTATED_DEFAULT_CONFIG),
        "docs/config.md must embed `teeheap default-config --full` verbatim"
    );
}

#[test]
fn shell_completions_generate() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let text = String::from_utf8(teeheap(&["completions", shell]).stdout).unwrap();
        for sub in ["bufinfo", "default-config", "run", "serve", "completions"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let bash = teeheap(&["completions", "bash"]).stdout;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("teeheap.bash");
    std::fs::write(&path, bash).unwrap();
    let st = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(st.success(), "bash -n {}", path.display());
}

#[test]
fn man_pages_generate() {
    let page = String::from_utf8(teeheap(&["man"]).stdout).unwrap();
    assert!(page.contains(".TH teeheap 1"), "{page}");
    assert!(page.contains("default\\-config"), "subcommands listed");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("man");
    let _ = std::fs::remove_dir_all(&dir);
    teeheap(&["man", "--dir", dir.to_str().unwrap()]);
    for name in ["teeheap.1", "teeheap-run.1", "teeheap-heap-rm.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}");
    }
}

/// Relative Markdown link targets `[text](target)` in `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_owned());
        }
    }
    out
}

#[test]
fn links_resolve_inside_the_repository() {
    let root = repo().canonicalize().unwrap();
    let mut files = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("../shared/"), "{} points outside the repository", f.display());
        for l in links(&text) {
            let target = f.parent().unwrap().join(&l);
            let target = target.canonicalize().unwrap_or_else(|_| panic!("{}: broken link {l}", f.display()));
            assert!(target.starts_with(&root), "{}: {l} leaves the repository", f.display());
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} links found");
}
