//! Exports the GP TEE Internal Core API functions (teeheap-ta-host) from
//! the bench binaries: `ta_decrypt` is its own TA runner (`BENCH
//! __ta-runner FILE`), and the TA it loads finds the API there.
fn main() {
    println!("cargo:rustc-link-arg-benches=-rdynamic");
}
