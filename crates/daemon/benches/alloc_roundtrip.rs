//! ALLOC + close of a 4 KiB `system` dma-buf served by the daemon, against
//! the floor the design is measured by: a bare Unix-socket request/response
//! that carries one fd with `SCM_RIGHTS` (the server sends a new 4 KiB
//! memfd, the client closes it).
//!
//! The served side runs in one thread of this process under teeheap's
//! seccomp filter (installed on that thread only), with a node file that
//! the daemon is told is `/dev/dma_heap/system`. Each measurement is timed
//! inside the worker thread (`iter_custom`), so no channel hop is counted;
//! a batch ends when the daemon has released all its buffers, so the work
//! a close leaves to the daemon's reaper thread is counted too.
//! After criterion's numbers, an interleaved A/B run prints the ratio as a
//! Markdown row (`cargo bench -p teeheap-daemon --bench alloc_roundtrip`).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Worker, ratio};
use criterion::{Criterion, criterion_group, criterion_main};
use rustix::net::{RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use teeheap_daemon::Daemon;
use teeheap_daemon::protocol::NodeId;
use teeheap_intercept::memfd::FileId;
use teeheap_platform::Platform;

/// `DMA_HEAP_IOCTL_ALLOC`.
const ALLOC: libc::Ioctl = 0xc018_4800u32 as libc::Ioctl;

#[repr(C)]
struct AllocData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

fn teeheap_worker(daemon: &Daemon) -> Worker {
    let dir = std::env::temp_dir().join(format!("teeheap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = dir.join("system");
    std::fs::write(&node, b"").unwrap();
    let heap = std::fs::File::open(&node).unwrap();
    let id = FileId::of(&heap).unwrap();
    let _ = std::fs::remove_dir_all(&dir); // the open file is all we need
    let nodes = vec![NodeId { path: "dma_heap/system".into(), dev: id.dev, ino: id.ino }];
    // A batch ends when the daemon has released every buffer of it: the
    // release (on the reaper thread) is part of the cost of a close.
    let shared = std::sync::Arc::clone(daemon.shared());
    let settle = move || {
        while shared.stats().served_buffers != 0 {
            std::thread::yield_now();
        }
    };
    Worker::spawn_settled(
        Some((daemon, nodes)),
        move || {
            move || {
                let mut a = AllocData { len: 4096, fd: 0, fd_flags: 2 | libc::O_CLOEXEC as u32, heap_flags: 0 };
                // SAFETY: `a` is a live, correctly sized argument for ALLOC.
                let r = unsafe { libc::ioctl(heap.as_raw_fd(), ALLOC, &mut a) };
                assert_eq!(r, 0, "ALLOC failed: {}", std::io::Error::last_os_error());
                // SAFETY: the fd was just installed for us and is closed once.
                unsafe { libc::close(a.fd as i32) };
            }
        },
        settle,
    )
}

fn socket_worker() -> Worker {
    let (client, server) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut req = [0u8; 24];
        loop {
            match rustix::io::read(&server, &mut req) {
                Ok(24) => {}
                _ => return,
            }
            let memfd = rustix::fs::memfd_create("bench", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            rustix::fs::ftruncate(&memfd, 4096).unwrap();
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut anc = SendAncillaryBuffer::new(&mut space);
            let fds = [memfd.as_fd()];
            anc.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(&server, &[IoSlice::new(&req)], &mut anc, SendFlags::empty()).unwrap();
        }
    });
    Worker::spawn(None, move || {
        move || {
            let mut req = [0u8; 24];
            rustix::io::write(&client, &req).unwrap();
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            rustix::net::recvmsg(&client, &mut [IoSliceMut::new(&mut req)], &mut anc, RecvFlags::CMSG_CLOEXEC).unwrap();
            anc.drain().for_each(drop); // closes the received fd
        }
    })
}

fn bench(c: &mut Criterion) {
    let daemon = Daemon::with_platform(Platform::embedded_default().unwrap()).unwrap();
    let served = teeheap_worker(&daemon);
    let bare = socket_worker();
    let mut g = c.benchmark_group("alloc_close");
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    g.bench_function("teeheap_seccomp", |b| b.iter_custom(|n| served.time(n)));
    g.bench_function("bare_socket_scm_rights", |b| b.iter_custom(|n| bare.time(n)));
    g.finish();
    ratio("ALLOC (4 KiB, system) + close", ("teeheap", &served), ("bare socket + SCM_RIGHTS", &bare), 2000, 1.3);
}

criterion_group!(benches, bench);
criterion_main!(benches);
