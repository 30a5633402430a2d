//! The control protocol: length-prefixed frames over a Unix stream socket,
//! each a JSON [`Envelope`] with a version, a request and one reply.
//!
//! A frame is a little-endian `u32` byte count followed by that many bytes
//! of JSON; at most [`MAX_FRAME`] bytes. One fd may travel with a request
//! (`SCM_RIGHTS`, attached to the frame's first byte): the seccomp listener
//! of a program the daemon is asked to supervise. A malformed frame gets an
//! [`Reply::Error`]; an oversized or truncated one ends the connection.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Version 2 added the lifecycle
/// requests (`backend`, `heap_rm`, `heap_add`) and the observability ones
/// (`bufinfo`, `stat`, `log`, `map`, `devmem`); `ls` also lists removed
/// heaps.
pub const VERSION: u32 = 2;

/// The oldest version this daemon still answers. A request is answered in
/// the version it came in; one that needs a newer version than its envelope
/// says gets a `version` error.
pub const MIN_VERSION: u32 = 1;

/// Largest frame payload accepted, in bytes.
pub const MAX_FRAME: usize = 1 << 20;

/// What travels in a frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// [`VERSION`] of the sender.
    pub version: u32,
    /// The request or reply.
    pub body: T,
}

/// A node of the private `/dev` as the launcher saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeId {
    /// Path relative to `/dev` (`dma_heap/system`, `tee0`).
    pub path: String,
    /// `st_dev` of the node in the program's mount namespace.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// A device node's sysfs identity, for the launcher to show in the run's
/// `/sys` (see `teeheap_kernel::device_node`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Path relative to `/dev` (`video0`, `dri/card1`), one of the nodes.
    pub path: String,
    /// Class (`video4linux`, `drm`).
    pub class: String,
    /// Name in the class (`video0`, `card1`).
    pub name: String,
    /// Extra `uevent` lines.
    #[serde(default)]
    pub uevent: Vec<(String, String)>,
}

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who are you: version, platform and the `/dev` nodes to create.
    Hello,
    /// The heaps, as `teeheap ls --json` prints them.
    Ls,
    /// Live buffers and served files.
    Stats,
    /// Supervise the program tree whose seccomp listener comes with this
    /// frame (`SCM_RIGHTS`, the last fd), after the fds of its user and
    /// mount namespaces (the run's identity, see [`crate::privilege`];
    /// without them the daemon reads `/proc/<pid>/ns`).
    Supervise {
        /// The program's pid.
        pid: i32,
        /// Its heap and TEE nodes.
        nodes: Vec<NodeId>,
        /// Let the program's connections act, not only observe
        /// (`teeheap run --allow-admin`); only a caller that may act itself
        /// can ask for it.
        #[serde(default)]
        admin: bool,
    },
    /// (v2) Unbind or bind the TEE backend (docs/lifecycle.md).
    Backend {
        /// What to do.
        action: BackendAction,
    },
    /// (v2) Remove a heap node: `open` gets `ENOENT`, live buffers drain.
    HeapRm {
        /// The heap.
        name: String,
    },
    /// (v2) Add a removed heap back.
    HeapAdd {
        /// The heap.
        name: String,
    },
    /// (v2) Every live dma-buf with its holders.
    Bufinfo,
    /// (v2) Heap, secure-world and per-client counters.
    Stat,
    /// (v2) Log entries after a sequence number (0: all kept).
    Log {
        /// Only entries with a larger sequence number.
        #[serde(default)]
        after: u64,
    },
    /// (v2) The physical memory map.
    Map,
    /// (v2) The display's frame CRCs (`/dev/dri/card0`), oldest first.
    Crc,
    /// (v2) A bus access by `master` through the firewall (diagnostics:
    /// like `devmem`, it can provoke and show a firewall violation).
    Devmem {
        /// Bus master name (`ns-cpu`, `display` ...).
        master: String,
        /// Physical address.
        addr: u64,
        /// Bytes (1 to 65536).
        len: u64,
        /// Write zeros instead of reading.
        #[serde(default)]
        write: bool,
    },
    /// (v2) Arm a fault spec at once (`teeheap inject`,
    /// docs/fault-injection.md).
    Inject {
        /// The spec text; parsed and bounded by the daemon.
        spec: String,
    },
}

impl Request {
    /// The first protocol version that has this request.
    pub fn since(&self) -> u32 {
        match self {
            Request::Hello | Request::Ls | Request::Stats | Request::Supervise { .. } => 1,
            _ => 2,
        }
    }

    /// Whether only a caller with [`crate::privilege::Rights::Admin`] may
    /// ask: acting on the lifecycle, acting as a bus master other than the
    /// normal-world CPU, or starting a run that may do so. A program under
    /// `teeheap run` may observe and may use `devmem` as `ns-cpu` (which
    /// the firewall checks like the program's own accesses). Every request
    /// is listed, so a new one must be put on one side.
    pub fn needs_admin(&self) -> bool {
        match self {
            Request::Hello
            | Request::Ls
            | Request::Stats
            | Request::Bufinfo
            | Request::Stat
            | Request::Log { .. }
            | Request::Map
            | Request::Crc => false,
            Request::Supervise { admin, .. } => *admin,
            Request::Backend { .. } | Request::HeapRm { .. } | Request::HeapAdd { .. } | Request::Inject { .. } => true,
            // An unknown master is answered `bad_request` by the request itself.
            Request::Devmem { master, .. } => {
                master.parse::<teeheap_platform::Master>().is_ok_and(|m| m != teeheap_platform::Master::NsCpu)
            }
        }
    }

    /// Whether it changes the daemon's state or touches memory (only the
    /// daemon's user may ask).
    pub fn is_privileged(&self) -> bool {
        matches!(
            self,
            Request::Supervise { .. }
                | Request::Backend { .. }
                | Request::HeapRm { .. }
                | Request::HeapAdd { .. }
                | Request::Devmem { .. }
                | Request::Inject { .. }
        )
    }
}

/// One scanned-out frame of the display: its number and the CRC32 of its
/// visible bytes (a digest the display computes, as hardware CRCs are: it
/// shows no byte of a protected frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCrcRow {
    /// The frame (vblank) number.
    pub frame: u64,
    /// The CRC.
    pub crc: u32,
}

/// What [`Request::Backend`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendAction {
    /// Drop the backend: no new protected allocations, buffers drain.
    Unbind,
    /// Probe the backend again on the same secure world: a new generation.
    Bind,
}

/// What `teeheap ls` shows: the platform and its heaps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The platform's name.
    pub platform: String,
    /// The heaps, by name.
    pub heaps: Vec<HeapRow>,
}

/// One heap of a [`Listing`] (the kernel model's `HeapInfo` plus `free`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapRow {
    /// The heap's name.
    pub name: String,
    /// Whether its memory is protected.
    pub protected: bool,
    /// `ready`, `unbound`, `draining` ...
    pub state: String,
    /// Where its memory comes from.
    pub pool: String,
    /// Bytes it can hold.
    pub capacity: u64,
    /// Bytes in live buffers.
    pub used: u64,
    /// Live buffers.
    pub buffers: u64,
    /// Bytes allocations could still take now (for `system`, normal
    /// memory lent to the secure world is not free).
    pub free: u64,
}

impl From<teeheap_kernel::dma_heap::HeapInfo> for HeapRow {
    fn from(i: teeheap_kernel::dma_heap::HeapInfo) -> HeapRow {
        HeapRow {
            name: i.name.as_str().to_owned(),
            protected: i.protected,
            state: i.state.to_string(),
            pool: i.pool,
            capacity: i.capacity,
            used: i.used,
            buffers: i.buffers,
            free: i.free,
        }
    }
}

/// The daemon's counters (see [`Request::Stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Live dma-bufs in the kernel model.
    pub buffers: u64,
    /// Bytes in live dma-bufs.
    pub bytes: u64,
    /// Bytes used, summed over every heap's report.
    pub heap_bytes_used: u64,
    /// Buffers, summed over every heap's report.
    pub heap_buffers: u64,
    /// Files handed to programs and not yet released: dma-bufs.
    pub served_buffers: u64,
    /// ... TEE contexts.
    pub served_contexts: u64,
    /// ... TEE shared-memory fds.
    pub served_shms: u64,
    /// ... sync_file fds (absent from daemons before they existed).
    #[serde(default)]
    pub served_sync_files: u64,
    /// Physical ranges currently backed by a buffer's file.
    pub backed_ranges: u64,
    /// Program trees being supervised now.
    pub sessions: u64,
    /// Program trees supervised since start.
    pub sessions_total: u64,
    /// Intercepted calls handled since start.
    pub calls: u64,
    /// Served files released since start.
    pub released: u64,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to [`Request::Hello`].
    Hello {
        /// The platform's name.
        platform: String,
        /// The backend's name.
        backend: String,
        /// Node paths relative to `/dev` that a launcher should create.
        nodes: Vec<String>,
        /// The nodes among them that are devices with a sysfs identity
        /// (each gets a device number of its own); absent from older daemons.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        devices: Vec<DeviceInfo>,
        /// The directory of the daemon's accounting views
        /// ([`crate::views`]) a launcher mounts under `/sys/kernel`;
        /// absent from daemons without them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        views: Option<std::path::PathBuf>,
    },
    /// Answer to [`Request::Ls`].
    Ls {
        /// The listing, as `teeheap ls --json` prints it.
        listing: Listing,
    },
    /// Answer to [`Request::Stats`].
    Stats {
        /// The counters.
        stats: Stats,
    },
    /// Answer to a lifecycle request.
    Done {
        /// What happened.
        message: String,
    },
    /// Answer to [`Request::Bufinfo`].
    Bufinfo {
        /// The buffers.
        bufinfo: crate::report::Bufinfo,
    },
    /// Answer to [`Request::Stat`].
    Stat {
        /// The counters.
        stat: crate::report::Stat,
    },
    /// Answer to [`Request::Log`].
    Log {
        /// The entries.
        log: crate::report::Log,
    },
    /// Answer to [`Request::Crc`].
    Crc {
        /// The CRC of each kept frame, oldest first.
        crcs: Vec<FrameCrcRow>,
    },
    /// Answer to [`Request::Map`].
    Map {
        /// The map.
        map: crate::report::MemoryMap,
    },
    /// Answer to [`Request::Devmem`].
    Devmem {
        /// Whether the firewall let the access through.
        allowed: bool,
        /// What happened (the violation when refused).
        message: String,
        /// The bytes read.
        data: Vec<u8>,
    },
    /// Answer to [`Request::Supervise`].
    Supervising {
        /// A number naming the session in logs.
        session: u64,
    },
    /// The last frame on a [`Request::Supervise`] connection: the session
    /// ended (see `farewell.rs`). No such frame before end-of-file means
    /// the daemon died.
    SessionEnd {
        /// `tree_gone` or `shutdown`.
        reason: String,
    },
    /// The request failed; the connection stays usable unless the frame
    /// itself was unusable.
    Error {
        /// Short machine-readable code: `bad_request`, `version`,
        /// `too_large`, `busy`, `no_fd`, `failed`, `denied`, `not_bound`,
        /// or an errno name (`ENOENT` ...) from the kernel model.
        code: String,
        /// For humans.
        message: String,
    },
}

impl Reply {
    /// An error reply.
    pub fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply::Error { code: code.to_owned(), message: message.into() }
    }
}

/// Waits on a [`Request::Supervise`] connection for the session's last
/// frame: the [`Reply::SessionEnd`] reason, or `None` if the connection
/// ended without one — the daemon died (or the stream was shut down
/// locally). No timeout.
pub fn session_end(sock: &UnixStream) -> Option<String> {
    let _ = sock.set_read_timeout(None);
    loop {
        let mut fds = Vec::new();
        let frame = read_frame(sock, &mut fds).ok()?;
        if let Ok(Envelope { body: Reply::SessionEnd { reason }, .. }) = serde_json::from_slice(&frame) {
            return Some(reason);
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The peer closed, timed out or failed in the middle of a frame.
    #[error("truncated frame: {0}")]
    Truncated(io::Error),
    /// The announced length is above [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
}

/// Receives into `buf` exactly, collecting fds that arrive on the way.
/// Returns how many bytes were read before EOF (so `0` means a clean EOF).
fn recv_exact(sock: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [io::IoSliceMut::new(&mut buf[done..])];
        let r = match rustix::net::recvmsg(sock, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        if r.bytes == 0 {
            return Ok(done);
        }
        done += r.bytes;
    }
    Ok(done)
}

/// Reads one frame's payload; fds sent with it are appended to `fds`.
///
/// # Errors
/// See [`FrameError`].
pub fn read_frame(sock: &UnixStream, fds: &mut Vec<OwnedFd>) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match recv_exact(sock, &mut len, fds) {
        Ok(0) => return Err(FrameError::Closed),
        Ok(4) => {}
        Ok(_) => return Err(FrameError::Truncated(io::ErrorKind::UnexpectedEof.into())),
        Err(e) => return Err(FrameError::Truncated(e)),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    match recv_exact(sock, &mut payload, fds) {
        Ok(n) if n == len => Ok(payload),
        Ok(_) => Err(FrameError::Truncated(io::ErrorKind::UnexpectedEof.into())),
        Err(e) => Err(FrameError::Truncated(e)),
    }
}

/// Writes one frame, with `fd` attached if given.
///
/// # Errors
/// `InvalidInput` for a payload above [`MAX_FRAME`]; the socket's errors.
pub fn write_frame(sock: &UnixStream, payload: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    match fd {
        Some(fd) => write_frame_fds(sock, payload, &[fd]),
        None => write_frame_fds(sock, payload, &[]),
    }
}

/// Writes one frame with `fds` attached (at most 4).
///
/// # Errors
/// `InvalidInput` for a payload above [`MAX_FRAME`] or more than 4 fds;
/// the socket's errors.
pub fn write_frame_fds(sock: &UnixStream, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > 4 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    if payload.len() > MAX_FRAME {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        anc.push(SendAncillaryMessage::ScmRights(fds));
    }
    let mut done = 0;
    while done < frame.len() {
        let iov = [io::IoSlice::new(&frame[done..])];
        let n = if done == 0 {
            rustix::net::sendmsg(sock, &iov, &mut anc, SendFlags::NOSIGNAL)
        } else {
            rustix::net::sendmsg(sock, &iov, &mut SendAncillaryBuffer::default(), SendFlags::NOSIGNAL)
        };
        match n {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Errors of a [`Client`] call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The reply frame could not be read.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// The reply is not valid JSON of this protocol.
    #[error("bad reply: {0}")]
    Decode(#[from] serde_json::Error),
    /// The daemon speaks another version.
    #[error("the daemon speaks protocol version {0}, this teeheap {VERSION}: use the same teeheap for both")]
    Version(u32),
    /// The daemon answered with an error: its message (the code is for
    /// programs).
    #[error("{message}")]
    Daemon {
        /// [`Reply::Error`]'s code.
        code: String,
        /// [`Reply::Error`]'s message.
        message: String,
    },
}

/// A connection to a daemon.
#[derive(Debug)]
pub struct Client {
    sock: UnixStream,
}

impl Client {
    /// Connects to the daemon's socket at `path`, with a 30 s timeout on
    /// every read and write.
    ///
    /// # Errors
    /// The connect error (`ENOENT`, `ECONNREFUSED`, `EACCES` ...).
    pub fn connect(path: &Path) -> io::Result<Client> {
        let sock = UnixStream::connect(path)?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        sock.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client { sock })
    }

    /// Sends `req` (with `fd` attached if given) and returns the reply.
    /// An error reply becomes [`ClientError::Daemon`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn request(&mut self, req: &Request, fd: Option<BorrowedFd<'_>>) -> Result<Reply, ClientError> {
        match fd {
            Some(fd) => self.request_fds(req, &[fd]),
            None => self.request_fds(req, &[]),
        }
    }

    /// As [`Client::request`], with up to 4 fds attached.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn request_fds(&mut self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<Reply, ClientError> {
        let payload = serde_json::to_vec(&Envelope { version: VERSION, body: req })?;
        write_frame_fds(&self.sock, &payload, fds)?;
        let mut fds = Vec::new();
        let frame = read_frame(&self.sock, &mut fds)?;
        let env: Envelope<Reply> = serde_json::from_slice(&frame)?;
        if env.version != VERSION {
            // An older daemon answers "version" in its own version.
            return Err(ClientError::Version(env.version));
        }
        match env.body {
            Reply::Error { code, message } => Err(ClientError::Daemon { code, message }),
            r => Ok(r),
        }
    }

    /// The connection, for a launcher that keeps it after
    /// [`Request::Supervise`] (see [`session_end`]).
    pub fn into_stream(self) -> UnixStream {
        self.sock
    }

    /// [`Request::Stats`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn stats(&mut self) -> Result<Stats, ClientError> {
        match self.request(&Request::Stats, None)? {
            Reply::Stats { stats } => Ok(stats),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Ls`]: the listing as `teeheap ls --json` prints it.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn ls(&mut self) -> Result<Listing, ClientError> {
        match self.request(&Request::Ls, None)? {
            Reply::Ls { listing } => Ok(listing),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Bufinfo`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn bufinfo(&mut self) -> Result<crate::report::Bufinfo, ClientError> {
        match self.request(&Request::Bufinfo, None)? {
            Reply::Bufinfo { bufinfo } => Ok(bufinfo),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Stat`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn stat(&mut self) -> Result<crate::report::Stat, ClientError> {
        match self.request(&Request::Stat, None)? {
            Reply::Stat { stat } => Ok(stat),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Log`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn log(&mut self, after: u64) -> Result<crate::report::Log, ClientError> {
        match self.request(&Request::Log { after }, None)? {
            Reply::Log { log } => Ok(log),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Crc`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn crc(&mut self) -> Result<Vec<FrameCrcRow>, ClientError> {
        match self.request(&Request::Crc, None)? {
            Reply::Crc { crcs } => Ok(crcs),
            other => Err(unexpected(&other)),
        }
    }

    /// [`Request::Map`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn map(&mut self) -> Result<crate::report::MemoryMap, ClientError> {
        match self.request(&Request::Map, None)? {
            Reply::Map { map } => Ok(map),
            other => Err(unexpected(&other)),
        }
    }

    /// A lifecycle request; returns the daemon's message.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn lifecycle(&mut self, req: &Request) -> Result<String, ClientError> {
        match self.request(req, None)? {
            Reply::Done { message } => Ok(message),
            other => Err(unexpected(&other)),
        }
    }

    /// The socket, for tests that speak the wire format themselves.
    pub fn socket(&self) -> &UnixStream {
        &self.sock
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// A [`ClientError`] for a reply of the wrong kind.
pub fn unexpected(r: &Reply) -> ClientError {
    let kind = serde_json::to_value(r).ok().and_then(|v| v["reply"].as_str().map(str::to_owned)).unwrap_or_default();
    ClientError::Daemon {
        code: "unexpected".into(),
        message: format!("the daemon answered with an unexpected {kind:?} reply"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_an_fd() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        write_frame(&a, b"{\"x\":1}", Some(r.as_fd())).unwrap();
        write_frame(&a, b"", None).unwrap();
        let mut fds = Vec::new();
        assert_eq!(read_frame(&b, &mut fds).unwrap(), b"{\"x\":1}");
        assert_eq!(fds.len(), 1);
        assert_eq!(read_frame(&b, &mut fds).unwrap(), b"");
        drop(a);
        assert!(matches!(read_frame(&b, &mut fds), Err(FrameError::Closed)));
    }

    #[test]
    fn oversized_and_truncated_frames() {
        let (a, b) = UnixStream::pair().unwrap();
        rustix::io::write(&a, &(MAX_FRAME as u32 + 1).to_le_bytes()).unwrap();
        assert!(matches!(read_frame(&b, &mut Vec::new()), Err(FrameError::TooLarge(_))));
        let (a, b) = UnixStream::pair().unwrap();
        rustix::io::write(&a, &[10, 0, 0, 0, b'{']).unwrap();
        drop(a);
        assert!(matches!(read_frame(&b, &mut Vec::new()), Err(FrameError::Truncated(_))));
    }

    #[test]
    fn requests_are_tagged_json() {
        let s = serde_json::to_string(&Envelope { version: VERSION, body: Request::Ls }).unwrap();
        assert_eq!(s, r#"{"version":2,"body":{"op":"ls"}}"#);
        let back: Envelope<Request> = serde_json::from_str(&s).unwrap();
        assert_eq!(back.body, Request::Ls);
        let s = serde_json::to_string(&Request::Backend { action: BackendAction::Unbind }).unwrap();
        assert_eq!(s, r#"{"op":"backend","action":"unbind"}"#);
        let r: Request = serde_json::from_str(r#"{"op":"heap_rm","name":"system"}"#).unwrap();
        assert_eq!((r.since(), r.is_privileged()), (2, true));
        let r: Request = serde_json::from_str(r#"{"op":"log"}"#).unwrap();
        assert_eq!(r, Request::Log { after: 0 });
        assert_eq!((Request::Ls.since(), Request::Bufinfo.is_privileged()), (1, false));
        // A v1 supervise request (no `admin`) asks for no rights.
        let r: Request = serde_json::from_str(r#"{"op":"supervise","pid":7,"nodes":[]}"#).unwrap();
        assert_eq!(r, Request::Supervise { pid: 7, nodes: vec![], admin: false });
    }

    #[test]
    fn what_needs_admin() {
        let devmem = |m: &str| Request::Devmem { master: m.into(), addr: 0, len: 1, write: false };
        for (r, admin) in [
            (Request::Hello, false),
            (Request::Ls, false),
            (Request::Stats, false),
            (Request::Bufinfo, false),
            (Request::Stat, false),
            (Request::Log { after: 0 }, false),
            (Request::Map, false),
            (Request::Crc, false),
            (devmem("ns-cpu"), false),
            (devmem("no-such-master"), false),
            (devmem("secure-cpu"), true),
            (devmem("video-decoder"), true),
            (devmem("display"), true),
            (devmem("camera"), true),
            (devmem("video-encoder"), true),
            (Request::Backend { action: BackendAction::Unbind }, true),
            (Request::Backend { action: BackendAction::Bind }, true),
            (Request::HeapRm { name: "system".into() }, true),
            (Request::HeapAdd { name: "system".into() }, true),
            (Request::Supervise { pid: 1, nodes: vec![], admin: false }, false),
            (Request::Supervise { pid: 1, nodes: vec![], admin: true }, true),
        ] {
            assert_eq!(r.needs_admin(), admin, "{r:?}");
        }
    }
}
