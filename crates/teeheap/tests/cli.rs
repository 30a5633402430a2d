//! The `teeheap` binary, run as a user would.

use std::process::Command;

fn teeheap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_teeheap")).args(args).env_remove("TEEHEAP_CONFIG").output().unwrap()
}

#[test]
fn demo_passes_every_check() {
    let out = teeheap(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("ns-cpu read"), "the violation log is shown: {stdout}");
}

#[test]
fn ls_json_lists_all_heaps() {
    let out = teeheap(&["ls", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let heaps = v["heaps"].as_array().unwrap();
    let names: Vec<&str> = heaps.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["protected,secure-video", "protected,secure-video-record", "protected,trusted-ui", "system"]);
    for h in heaps {
        assert_eq!(h["used"], 0);
        assert_eq!(h["buffers"], 0);
        assert_eq!(h["free"], h["capacity"]);
        assert_eq!(h["protected"], h["name"] != "system");
    }
}

#[test]
fn config_file_is_used_and_bad_ones_are_reported() {
    let dir = std::env::temp_dir().join(format!("teeheap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("small.toml");
    std::fs::write(
        &good,
        r#"
name = "small"
dram = { base = 0x4000_0000, size = "64 MiB" }
[[carveout]]
name = "sv"
use_case = "secure-video"
base = 0x4300_0000
size = "16 MiB"
"#,
    )
    .unwrap();
    let out = teeheap(&["--config", good.to_str().unwrap(), "ls", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["platform"], "small");
    // The carveout gives secure-video a static pool; the other use cases
    // get dynamic pools that lend normal memory.
    let heaps = v["heaps"].as_array().unwrap();
    assert_eq!(heaps.len(), 4);
    assert_eq!(heaps[0]["name"], "protected,secure-video");
    assert_eq!(heaps[0]["capacity"], 16 << 20);
    assert!(heaps[0]["pool"].as_str().unwrap().starts_with("static"));
    assert!(heaps[2]["pool"].as_str().unwrap().starts_with("dynamic"), "{}", heaps[2]);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\ndram = { base = 0, size = \"lots\" }\n").unwrap();
    let out = teeheap(&["--config", bad.to_str().unwrap(), "ls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad size"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
