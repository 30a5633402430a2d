//! dma-buf answers under `teeheap run`, each checked against Linux 6.18 by
//! a C client (`tests/clients/dmabuf_client.c`): ALLOC with `O_ACCMODE`
//! (issue 11, finding 7), DMA_BUF_SET_NAME with bytes that are not UTF-8
//! (issue 19), EXPORT/IMPORT_SYNC_FILE with real sync_file fds (poll, epoll,
//! MERGE, FILE_INFO, SET_DEADLINE, SCM_RIGHTS), and the daemon releasing a
//! sync file once the program closes it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Served, TEEHEAP, compile, tmp};
use teeheap_daemon::protocol::{Client, Stats};

/// `teeheap` with a private runtime directory and no inherited daemon.
fn teeheap() -> Command {
    common::teeheap_private("dmabuf")
}

/// A standalone daemon on a fresh socket, killed on drop.
impl Served {
    fn start(name: &str) -> Served {
        let socket = tmp().join(format!("{name}-{}", std::process::id())).join("teeheap.sock");
        let _ = std::fs::remove_file(&socket);
        Served::spawn(teeheap(), socket, Stdio::null())
    }

    /// The daemon's counters once `done` holds (or after 10 s).
    fn settle(&self, done: impl Fn(&Stats) -> bool) -> Stats {
        let t0 = Instant::now();
        loop {
            let s = Client::connect(&self.socket).unwrap().stats().unwrap();
            if done(&s) || t0.elapsed() > Duration::from_secs(10) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const CHECKS: &[&str] = &[
    "alloc O_ACCMODE|O_CLOEXEC system",
    "alloc O_ACCMODE|O_CLOEXEC protected,secure-video",
    "O_ACCMODE system: F_GETFL access mode 3, FD_CLOEXEC",
    "O_ACCMODE protected,secure-video: F_GETFL access mode 3, FD_CLOEXEC",
    "O_ACCMODE system: read and write EBADF",
    "O_ACCMODE protected,secure-video: read and write EBADF",
    "O_ACCMODE system: mmap EACCES",
    "O_ACCMODE protected,secure-video: mmap EACCES",
    "O_ACCMODE system: ioctls work",
    "alloc O_ACCMODE|O_NONBLOCK is EINVAL",
    "O_RDONLY system: shared PROT_WRITE mmap EACCES, PROT_READ works",
    "SET_NAME 31 bytes of 0xff",
    "SET_NAME_A 31 bytes of 0xff",
    "SET_NAME 32 bytes without NUL is EINVAL",
    "SET_NAME bad pointer is EFAULT",
    "bufinfo shows the name escaped",
    "bufinfo table shows the name escaped",
    "EXPORT_SYNC_FILE READ",
    "sync file fd is O_RDONLY|O_CLOEXEC",
    "idle buffer: sync file polls POLLIN",
    "EXPORT_SYNC_FILE WRITE and RW of a protected buffer",
    "poll of an idle dma-buf: POLLIN|POLLOUT",
    "EXPORT flags 0 is EINVAL",
    "EXPORT flags END is EINVAL",
    "EXPORT bad pointer is EFAULT",
    "FILE_INFO count only",
    "FILE_INFO name from the signalled stub",
    "FILE_INFO fences",
    "FILE_INFO flags is EINVAL",
    "FILE_INFO bad array is EFAULT",
    "MERGE",
    "MERGE result is named",
    "MERGE fd2 a dma-buf is ENOENT",
    "MERGE fd2 -1 is ENOENT",
    "MERGE flags is EINVAL",
    "MERGE pad is EINVAL",
    "IMPORT_SYNC_FILE WRITE",
    "IMPORT_SYNC_FILE READ into a protected buffer",
    "IMPORT flags 0 is EINVAL",
    "IMPORT a dma-buf fd is EINVAL",
    "IMPORT fd -1 is EINVAL",
    "IMPORT bad pointer is EFAULT",
    "EXPORT after IMPORT: the imported fence, signalled",
    "SET_DEADLINE",
    "SET_DEADLINE pad is EINVAL",
    "unknown sync_file ioctl is ENOTTY",
    "mmap of a sync file is ENODEV",
    "lseek on a sync file is ESPIPE",
    "epoll on a sync file: EPOLLIN",
    "sync file passed with SCM_RIGHTS polls and answers in the receiver",
    "read of a sync file never blocks",
];

#[test]
fn dma_buf_answers_and_sync_files_as_linux() {
    let exe = compile("dmabuf_client.c", "dmabuf_client", &["-Werror"]);
    let d = Served::start("dmabuf");
    let mut prog =
        d.run_connected(teeheap()).arg(&exe).arg(TEEHEAP).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(prog.stdout.take().unwrap()).lines();
    let mut stdin = prog.stdin.take().unwrap();
    let mut seen = Vec::new();
    let holding = loop {
        let line = lines.next().expect("the client stopped early").unwrap();
        if let Some(n) = line.strip_prefix("holding ") {
            break n.parse::<u64>().unwrap();
        }
        seen.push(line);
    };
    let report = seen.join("\n");
    assert!(!report.contains("FAIL"), "{report}");
    for c in CHECKS {
        assert!(seen.iter().any(|l| *l == format!("ok {c}")), "missing check {c:?}:\n{report}");
    }
    // Every sync file the program holds is served; closed, each is released.
    assert_eq!(holding, 5);
    let s = d.settle(|s| s.served_sync_files == holding);
    assert_eq!(s.served_sync_files, holding, "{s:?}");
    writeln!(stdin).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "closed");
    let s = d.settle(|s| s.served_sync_files == 0 && s.buffers == 0);
    assert_eq!((s.served_sync_files, s.buffers, s.served_buffers), (0, 0, 0), "{s:?}");
    writeln!(stdin).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "0 failed");
    assert!(prog.wait().unwrap().success());
}
