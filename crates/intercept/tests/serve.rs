//! Runs an unmodified C program (dynamic and static) under the launcher with
//! a toy supervisor that plays the daemon: heap nodes in a private `/dev`,
//! ALLOC answered with a memfd installed by ADDFD, EFAULT for a bad pointer,
//! a protected buffer the host itself refuses to mmap (write-only: no mmap
//! reaches the supervisor), and release events afterwards.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use teeheap_intercept::Errno;
use teeheap_intercept::devns::DevNodes;
use teeheap_intercept::launch::Launch;
use teeheap_intercept::memfd::{Access, BackingFile, CpuAccess, FileId};
use teeheap_intercept::notify::{AddFd, Listener, Notification, Readiness, Response};
use teeheap_intercept::request::IoctlCmd;
use teeheap_intercept::target::Target;
use teeheap_intercept::watch::CloseWatcher;

const SYSTEM: &str = "dma_heap/system";
const SECURE_VIDEO: &str = "dma_heap/protected,secure-video";
const TRUSTED_UI: &str = "dma_heap/protected,trusted-ui";

fn compile(extra: &[&str], out: &str) -> Option<PathBuf> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/heap_client.c");
    // TEEHEAP_TEST_TMPDIR lets the test binary run as another user.
    let dir = std::env::var_os("TEEHEAP_TEST_TMPDIR").unwrap_or(env!("CARGO_TARGET_TMPDIR").into());
    let exe = PathBuf::from(dir).join(out);
    let st = Command::new("cc").args(["-O1", "-Wall", "-o"]).arg(&exe).arg(src).args(extra).status().ok()?;
    st.success().then_some(exe)
}

/// The toy daemon's state.
struct Toy {
    heaps: HashMap<FileId, String>,
    buffers: HashMap<FileId, (u64, BackingFile)>,
    watcher: CloseWatcher<u64>,
    next_key: u64,
}

impl Toy {
    fn handle(&mut self, l: &Listener, n: &Notification) -> Response {
        let Ok(t) = Target::open(n.pid) else {
            return Response::Errno(Errno::SRCH);
        };
        let call = n.ioctl().expect("the client makes no other intercepted call");
        let Ok(f) = t.get_fd(call.fd) else {
            return Response::Errno(Errno::BADF);
        };
        let Some(heap) = self.heaps.get(&FileId::of(&f).unwrap()).cloned() else {
            return Response::Continue; // not ours: run natively
        };
        if call.cmd.ty() != b'H' || call.cmd.nr() != 0 {
            return Response::Errno(Errno::NOTTY);
        }
        // The kernel copies min(user size, 24) bytes in and zero-fills.
        let mut raw = [0u8; 24];
        let n_in = call.cmd.size().min(24);
        if let Err(e) = t.read(call.arg, &mut raw[..n_in]) {
            return Response::Errno(e);
        }
        let len = u64::from_ne_bytes(raw[0..8].try_into().unwrap());
        let fd_flags = u32::from_ne_bytes(raw[12..16].try_into().unwrap());
        let len = len.div_ceil(4096) * 4096;
        if len == 0 {
            return Response::Errno(Errno::INVAL);
        }
        let cpu = if heap == SYSTEM { CpuAccess::Mappable } else { CpuAccess::None };
        let b = BackingFile::create("dmabuf", len, cpu).unwrap();
        if cpu == CpuAccess::Mappable {
            rustix::io::pwrite(&b, b"hello from the daemon\0", 0).unwrap();
        }
        let key = self.next_key;
        self.next_key += 1;
        self.watcher.watch(&b, key).unwrap();
        // As the daemon does: a protected buffer's description has no read
        // access, so the host refuses every mmap of it (no mmap is sent).
        let access = if cpu == CpuAccess::None { Access::WriteOnly } else { Access::from_flags(fd_flags).unwrap() };
        let client = b.open_for_client(access).unwrap();
        let how = AddFd { cloexec: fd_flags & libc::O_CLOEXEC as u32 != 0, at: None };
        let fd = match l.add_fd(n.id, client.as_fd(), how) {
            Ok(fd) => fd,
            Err(e) => return Response::Errno(e),
        };
        drop(client);
        raw[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
        self.buffers.insert(b.identity().unwrap(), (key, b));
        match t.write(call.arg, &raw[..n_in]) {
            Ok(()) => Response::Value(0),
            Err(e) => Response::Errno(e),
        }
    }
}

fn run_client(exe: &PathBuf) {
    let nodes = DevNodes::new().node(SYSTEM).unwrap().node(SECURE_VIDEO).unwrap().node(TRUSTED_UI).unwrap();
    let launched = Launch::new(exe).dev_nodes(nodes.clone()).stdout(Stdio::piped()).spawn().expect("launch");
    let heaps = nodes.node_ids(launched.child.id() as i32).unwrap().into_iter().map(|(n, id)| (id, n)).collect();
    let listener = launched.listener;
    let supervisor = std::thread::spawn(move || {
        let mut toy = Toy { heaps, buffers: HashMap::new(), watcher: CloseWatcher::new().unwrap(), next_key: 0 };
        loop {
            match listener.poll(Some(Duration::from_secs(20))).unwrap() {
                Readiness::Ready => {}
                Readiness::Hangup => break,
                Readiness::Timeout => panic!("client hung"),
            }
            let n = match listener.recv() {
                Ok(n) => n,
                Err(Errno::NOENT) => continue,
                Err(e) => panic!("recv: {e}"),
            };
            let r = toy.handle(&listener, &n);
            // ENOENT: the caller died meanwhile; nothing to answer.
            match listener.respond(n.id, r) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => panic!("respond: {e}"),
            }
        }
        toy
    });
    let out = launched.child.wait_with_output().unwrap();
    let mut toy = supervisor.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client failed: {stdout}");
    let want = "heaps: 3 system=1\n\
                stat: 0\n\
                open: ok\n\
                alloc: ok cloexec=1\n\
                size: 8192\n\
                mmap: ok, daemon wrote \"hello from the daemon\"\n\
                alloc2: cloexec=0\n\
                bad pointer: -1 Bad address\n\
                protected size: 4096\n\
                protected mmap: Permission denied\n\
                unrelated ioctl: 3\n";
    assert_eq!(stdout, want);

    // The program's write through its mapping is in the daemon's file.
    let (_, sys) = toy.buffers.values().find(|(k, _)| *k == 0).unwrap();
    let mut got = [0u8; 18];
    rustix::io::pread(sys, &mut got, 4096).unwrap();
    assert_eq!(&got, b"program wrote this");

    // The program exited: every buffer's last reference is gone, once.
    let mut released = Vec::new();
    for _ in 0..50 {
        released.extend(toy.watcher.wait_released(Duration::from_millis(100)).unwrap());
        if released.len() == 3 {
            break;
        }
    }
    released.sort();
    assert_eq!(released, [0, 1, 2]);
    assert!(toy.watcher.is_empty());
    assert_eq!(toy.watcher.wait_released(Duration::from_millis(100)).unwrap(), []);
}

#[test]
fn dynamic_c_client() {
    let exe = compile(&[], "heap_client_dyn").expect("cc failed");
    run_client(&exe);
}

#[test]
fn static_c_client() {
    // Needs libc.a (Debian: libc6-dev).
    let exe = compile(&["-static"], "heap_client_static").expect("cc -static failed; install libc6-dev");
    let file = Command::new("file").arg(&exe).output();
    if let Ok(f) = file {
        let s = String::from_utf8_lossy(&f.stdout);
        assert!(!s.contains("dynamically linked"), "{s}");
    }
    run_client(&exe);
}

#[test]
fn ioctl_cmd_matches_c_macro() {
    // DMA_HEAP_IOCTL_ALLOC as the C macro gives it.
    let c = IoctlCmd(0xc018_4800);
    assert_eq!((c.dir(), c.ty(), c.nr(), c.size()), (3, b'H', 0, 24));
}
