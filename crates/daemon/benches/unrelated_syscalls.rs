//! What teeheap costs calls that are not its own: `ioctl(FIONREAD)` on a
//! pipe, and `open` + `close` of an ordinary file, each in a thread under
//! teeheap's seccomp filter (supervised by a daemon, as under `teeheap
//! run`) and in a thread without, in the same run. Prints the ratios as
//! Markdown rows (`cargo bench -p teeheap-daemon --bench unrelated_syscalls`).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

mod common;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use common::{Worker, ratio};
use criterion::{Criterion, criterion_group, criterion_main};
use teeheap_daemon::Daemon;
use teeheap_intercept::filter::Filter;
use teeheap_platform::Platform;

fn fionread_op() -> impl FnMut() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    rustix::io::write(&w, b"x").unwrap();
    move || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `n`.
        let rc = unsafe { libc::ioctl(r.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert!(rc == 0 && n == 1);
        let _ = &w;
    }
}

fn fionread(daemon: Option<&Daemon>) -> Worker {
    Worker::spawn(daemon.map(|d| (d, Vec::new())), fionread_op)
}

fn open_close(daemon: Option<&Daemon>, path: &CString) -> Worker {
    let path = path.clone();
    Worker::spawn(daemon.map(|d| (d, Vec::new())), move || {
        move || {
            // SAFETY: `path` is a valid C string; the fd is closed at once.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                assert!(fd >= 0);
                libc::close(fd);
            }
        }
    })
}

fn bench(c: &mut Criterion) {
    let daemon = Daemon::with_platform(Platform::embedded_default().unwrap()).unwrap();
    let file: PathBuf = std::env::temp_dir().join(format!("teeheap-bench-open-{}", std::process::id()));
    std::fs::write(&file, b"data").unwrap();
    let cpath = CString::new(file.to_str().unwrap()).unwrap();

    let (io_t, io_n) = (fionread(Some(&daemon)), fionread(None));
    let (oc_t, oc_n) = (open_close(Some(&daemon), &cpath), open_close(None, &cpath));
    let mut g = c.benchmark_group("unrelated");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1));
    g.bench_function("fionread_teeheap_filter", |b| b.iter_custom(|n| io_t.time(n)));
    g.bench_function("fionread_native", |b| b.iter_custom(|n| io_n.time(n)));
    g.bench_function("open_close_teeheap_filter", |b| b.iter_custom(|n| oc_t.time(n)));
    g.bench_function("open_close_native", |b| b.iter_custom(|n| oc_n.time(n)));
    g.finish();
    ratio("ioctl(FIONREAD) on a pipe", ("teeheap filter", &io_t), ("native", &io_n), 200_000, 1.05);
    // The floor: any seccomp filter puts every syscall on the slow entry path.
    let io_any = Worker::spawn_under(Filter::empty(), fionread_op);
    ratio("ioctl(FIONREAD), allow-all filter", ("allow-all filter", &io_any), ("native", &io_n), 200_000, 1.05);
    ratio("open + close of a file", ("teeheap filter", &oc_t), ("native", &oc_n), 50_000, 1.3);
    let _ = std::fs::remove_file(&file);
}

criterion_group!(benches, bench);
criterion_main!(benches);
