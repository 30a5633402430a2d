//! Exports the GP TEE Internal Core API functions (teeheap-ta-host) from
//! the `teeheap` binary, so that a host-built TA it loads in its TA
//! process (`teeheap __ta-runner`) finds them.
fn main() {
    println!("cargo:rustc-link-arg-bin=teeheap=-rdynamic");
}
