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

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

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
    /// frame (`SCM_RIGHTS`).
    Supervise {
        /// The program's pid (for logs).
        pid: i32,
        /// Its heap and TEE nodes.
        nodes: Vec<NodeId>,
    },
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
    /// `capacity - used`.
    pub free: u64,
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
    /// Answer to [`Request::Supervise`].
    Supervising {
        /// A number naming the session in logs.
        session: u64,
    },
    /// The request failed; the connection stays usable unless the frame
    /// itself was unusable.
    Error {
        /// Short machine-readable code: `bad_request`, `version`,
        /// `too_large`, `busy`, `no_fd`, `failed`.
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
    if payload.len() > MAX_FRAME {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
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
    #[error("daemon speaks protocol version {0}, this client {VERSION}")]
    Version(u32),
    /// The daemon answered with an error.
    #[error("daemon: {code}: {message}")]
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
        let payload = serde_json::to_vec(&Envelope { version: VERSION, body: req })?;
        write_frame(&self.sock, &payload, fd)?;
        let mut fds = Vec::new();
        let frame = read_frame(&self.sock, &mut fds)?;
        let env: Envelope<Reply> = serde_json::from_slice(&frame)?;
        if env.version != VERSION {
            return Err(ClientError::Version(env.version));
        }
        match env.body {
            Reply::Error { code, message } => Err(ClientError::Daemon { code, message }),
            r => Ok(r),
        }
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
    ClientError::Daemon { code: "unexpected".into(), message: format!("unexpected reply {r:?}") }
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
        assert_eq!(s, r#"{"version":1,"body":{"op":"ls"}}"#);
        let back: Envelope<Request> = serde_json::from_str(&s).unwrap();
        assert_eq!(back.body, Request::Ls);
    }
}
