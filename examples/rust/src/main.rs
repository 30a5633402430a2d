//! Allocates a buffer from every DMA heap with the `dma-heap` crate, maps
//! the `system` one with rustix, and shows that a protected one cannot be
//! mapped (`EINVAL` on a board, `EACCES` under teeheap). Works on a board
//! with protected heaps and under teeheap:
//!
//! ```sh
//! cargo build -p teeheap-example-rust
//! teeheap run -- target/debug/dma-heap-example
//! ```
//!
//! Exits 0 when every heap gave a buffer, the system buffer was written
//! through its mapping and every protected mapping was refused.

use std::os::fd::OwnedFd;
use std::process::ExitCode;

use dma_heap::{Heap, HeapKind};
use rustix::fs::{SeekFrom, seek};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};

const LEN: usize = 1 << 20;

/// Maps `buf` shared and read-write, writes `text` at its start and reads
/// it back.
fn write_through_mapping(buf: &OwnedFd, text: &[u8]) -> Result<bool, Errno> {
    // SAFETY: a fresh shared mapping of LEN bytes at an address the kernel
    // picks; nothing else refers to it, and it is unmapped below.
    let p = unsafe { mmap(std::ptr::null_mut(), LEN, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, buf, 0)? };
    // SAFETY: `p` points to LEN mapped, writable bytes, LEN >= text.len(),
    // and no other reference to them exists while the slice lives.
    let mem = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), LEN) };
    mem[..text.len()].copy_from_slice(text);
    let same = &mem[..text.len()] == text;
    // SAFETY: `p`/LEN is the mapping made above; `mem` is not used again.
    unsafe { munmap(p, LEN)? };
    Ok(same)
}

fn main() -> ExitCode {
    let mut names: Vec<String> = match std::fs::read_dir("/dev/dma_heap") {
        Ok(dir) => dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) => {
            eprintln!("/dev/dma_heap: {e}");
            return ExitCode::FAILURE;
        }
    };
    names.sort();
    let mut failed = 0;
    for name in &names {
        let kind =
            if name == "system" { HeapKind::System } else { HeapKind::Custom(format!("/dev/dma_heap/{name}").into()) };
        let buf = match Heap::new(kind).and_then(|heap| heap.allocate(LEN)) {
            Ok(buf) => buf,
            Err(e) => {
                println!("{name:<32} allocation failed: {e}");
                failed += 1;
                continue;
            }
        };
        // A dma-buf's size is where lseek(SEEK_END) lands.
        let size = seek(&buf, SeekFrom::End(0)).unwrap_or(0);
        let mapped = write_through_mapping(&buf, b"hello from the CPU");
        // Normal memory maps; protected memory is refused: EINVAL on a
        // board, EACCES under teeheap (the host refuses the fd itself).
        let ok = matches!(
            (name.starts_with("protected,"), &mapped),
            (false, Ok(true)) | (true, Err(Errno::INVAL | Errno::ACCESS))
        );
        let how = match mapped {
            Ok(true) => "mapped and written".to_owned(),
            Ok(false) => "mapped, but read back wrong".to_owned(),
            Err(e) => format!("mmap refused: {e}"),
        };
        println!("{name:<32} {size} bytes, {how}{}", if ok { "" } else { " (unexpected)" });
        failed += usize::from(!ok);
    }
    println!("{} heaps, {failed} failed", names.len());
    if failed == 0 && !names.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
