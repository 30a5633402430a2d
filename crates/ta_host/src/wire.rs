//! The messages between the secure world and a TA process, over one
//! `SOCK_SEQPACKET` socket (one message per packet, little-endian fields).
//!
//! The secure world sends [`Down`] messages; memref windows travel as file
//! descriptors beside the message (`SCM_RIGHTS`, one per memref with a
//! window, in parameter order). The TA process answers a call with
//! [`Up::Done`], and may first ask the secure world for services
//! ([`Up::OpenTa`], [`Up::InvokeTa`], ...), each answered by one
//! [`Down::Reply`]. Decoding never trusts a length: every read is bounded by
//! the packet.

/// Largest packet either side sends (a log line is cut to fit).
pub const MAX_PACKET: usize = 4096;

/// At most this many parameters (GlobalPlatform's four).
pub const NUM_PARAMS: usize = 4;

/// `TEE_PARAM_TYPE_*` values.
pub mod ptype {
    /// Unused.
    pub const NONE: u32 = 0;
    /// Value, input.
    pub const VALUE_INPUT: u32 = 1;
    /// Value, output.
    pub const VALUE_OUTPUT: u32 = 2;
    /// Value, both.
    pub const VALUE_INOUT: u32 = 3;
    /// Memref, input.
    pub const MEMREF_INPUT: u32 = 5;
    /// Memref, output.
    pub const MEMREF_OUTPUT: u32 = 6;
    /// Memref, both.
    pub const MEMREF_INOUT: u32 = 7;

    /// Whether `t` is a memref type.
    pub const fn is_memref(t: u32) -> bool {
        matches!(t, MEMREF_INPUT | MEMREF_OUTPUT | MEMREF_INOUT)
    }

    /// Whether `t` is a value type.
    pub const fn is_value(t: u32) -> bool {
        matches!(t, VALUE_INPUT | VALUE_OUTPUT | VALUE_INOUT)
    }
}

/// One parameter on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireParam {
    /// `TEE_PARAM_TYPE_*`.
    pub ptype: u32,
    /// Value `a`; for a memref going down, 1 if the memory is secure.
    pub a: u64,
    /// Value `b`.
    pub b: u64,
    /// Memref size (bytes); on the way up, the size written or needed.
    pub size: u64,
    /// Down with a window: offset of the window's first page in its file.
    /// Up in a TA-to-TA call: offset inside the caller's memref.
    pub file_offset: u64,
    /// Down with a window: offset of the memref inside its first page.
    /// Up in a TA-to-TA call: index of the caller's memref parameter.
    pub page_offset: u64,
}

impl WireParam {
    /// Whether a memref of this param comes with a window descriptor.
    pub fn has_window(&self) -> bool {
        ptype::is_memref(self.ptype) && self.size > 0
    }
}

/// Secure world → TA process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// Open session `session` (`TA_OpenSessionEntryPoint`); the id is
    /// the secure world's choice, unique in the instance.
    Open {
        /// The session's id in this instance.
        session: u32,
        /// Parameters.
        params: [WireParam; NUM_PARAMS],
    },
    /// Invoke a command (`TA_InvokeCommandEntryPoint`).
    Invoke {
        /// The session's id in this instance.
        session: u32,
        /// Command id.
        cmd: u32,
        /// Parameters.
        params: [WireParam; NUM_PARAMS],
    },
    /// Close a session (`TA_CloseSessionEntryPoint`).
    Close {
        /// The session's id in this instance.
        session: u32,
    },
    /// End the instance (`TA_DestroyEntryPoint`); the process ends after
    /// answering.
    Destroy,
    /// Answer to an [`Up`] request.
    Reply {
        /// GP result.
        ret: u32,
        /// `TEE_ORIGIN_*`.
        origin: u32,
        /// A session handle (OpenTa) or a flag (IsCancelled).
        handle: u32,
        /// Output values and sizes.
        params: [WireParam; NUM_PARAMS],
    },
}

/// TA process → secure world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    /// The TA is loaded: its header properties and create result.
    Hello {
        /// `TA_UUID`, big-endian bytes.
        uuid: [u8; 16],
        /// `TA_FLAGS`.
        flags: u32,
        /// Result of `TA_CreateEntryPoint`.
        ret: u32,
    },
    /// A call ended.
    Done {
        /// GP result.
        ret: u32,
        /// Output values and sizes.
        params: [WireParam; NUM_PARAMS],
    },
    /// A trace line (`EMSG`...).
    Log {
        /// Trace level (1 error .. 4 flow).
        level: u32,
        /// The text.
        text: String,
    },
    /// `TEE_OpenTASession`.
    OpenTa {
        /// Target TA.
        uuid: [u8; 16],
        /// Parameters (memrefs name the caller's memrefs).
        params: [WireParam; NUM_PARAMS],
    },
    /// `TEE_InvokeTACommand`.
    InvokeTa {
        /// Handle from OpenTa.
        session: u32,
        /// Command.
        cmd: u32,
        /// Parameters.
        params: [WireParam; NUM_PARAMS],
    },
    /// `TEE_CloseTASession`.
    CloseTa {
        /// Handle from OpenTa.
        session: u32,
    },
    /// `TEE_GetCancellationFlag`: the reply's handle is 1 if cancelled.
    IsCancelled,
    /// The current call's client (`gpd.client.identity`): the reply's
    /// handle is the login, params[0].a/.b the UUID's bytes 0..8 / 8..16
    /// (big-endian).
    ClientIdentity,
    /// `TEE_Panic`: the process ends right after.
    Panic {
        /// The panic code.
        code: u32,
    },
}

/// A packet that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPacket;

#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn params(&mut self, p: &[WireParam; NUM_PARAMS]) -> &mut Self {
        for q in p {
            self.u32(q.ptype).u64(q.a).u64(q.b).u64(q.size).u64(q.file_offset).u64(q.page_offset);
        }
        self
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BadPacket> {
        let (h, t) = self.0.split_first_chunk::<N>().ok_or(BadPacket)?;
        self.0 = t;
        Ok(*h)
    }
    fn u32(&mut self) -> Result<u32, BadPacket> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, BadPacket> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn params(&mut self) -> Result<[WireParam; NUM_PARAMS], BadPacket> {
        let mut p = [WireParam::default(); NUM_PARAMS];
        for q in &mut p {
            *q = WireParam {
                ptype: self.u32()?,
                a: self.u64()?,
                b: self.u64()?,
                size: self.u64()?,
                file_offset: self.u64()?,
                page_offset: self.u64()?,
            };
        }
        Ok(p)
    }
    fn end(&self) -> Result<(), BadPacket> {
        if self.0.is_empty() { Ok(()) } else { Err(BadPacket) }
    }
}

impl Down {
    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W::default();
        match self {
            Down::Open { session, params } => w.u32(1).u32(*session).params(params),
            Down::Invoke { session, cmd, params } => w.u32(2).u32(*session).u32(*cmd).params(params),
            Down::Close { session } => w.u32(3).u32(*session),
            Down::Destroy => w.u32(5),
            Down::Reply { ret, origin, handle, params } => w.u32(4).u32(*ret).u32(*origin).u32(*handle).params(params),
        };
        w.0
    }

    /// Decodes a packet.
    ///
    /// # Errors
    /// [`BadPacket`] if it is not exactly one message.
    pub fn decode(b: &[u8]) -> Result<Down, BadPacket> {
        let mut r = R(b);
        let d = match r.u32()? {
            1 => Down::Open { session: r.u32()?, params: r.params()? },
            2 => Down::Invoke { session: r.u32()?, cmd: r.u32()?, params: r.params()? },
            3 => Down::Close { session: r.u32()? },
            5 => Down::Destroy,
            4 => Down::Reply { ret: r.u32()?, origin: r.u32()?, handle: r.u32()?, params: r.params()? },
            _ => return Err(BadPacket),
        };
        r.end()?;
        Ok(d)
    }

    /// The parameters whose memrefs come with a window descriptor.
    pub fn windows(&self) -> usize {
        match self {
            Down::Open { params, .. } | Down::Invoke { params, .. } => params.iter().filter(|p| p.has_window()).count(),
            _ => 0,
        }
    }
}

impl Up {
    /// The packet (a log text is cut to fit [`MAX_PACKET`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W::default();
        match self {
            Up::Hello { uuid, flags, ret } => {
                w.u32(10);
                w.0.extend_from_slice(uuid);
                w.u32(*flags).u32(*ret)
            }
            Up::Done { ret, params } => w.u32(11).u32(*ret).params(params),
            Up::Log { level, text } => {
                w.u32(12).u32(*level);
                let mut n = text.len().min(MAX_PACKET - 8);
                while !text.is_char_boundary(n) {
                    n -= 1;
                }
                w.0.extend_from_slice(&text.as_bytes()[..n]);
                &mut w
            }
            Up::OpenTa { uuid, params } => {
                w.u32(13);
                w.0.extend_from_slice(uuid);
                w.params(params)
            }
            Up::InvokeTa { session, cmd, params } => w.u32(14).u32(*session).u32(*cmd).params(params),
            Up::CloseTa { session } => w.u32(15).u32(*session),
            Up::IsCancelled => w.u32(16),
            Up::Panic { code } => w.u32(17).u32(*code),
            Up::ClientIdentity => w.u32(18),
        };
        w.0
    }

    /// Decodes a packet.
    ///
    /// # Errors
    /// [`BadPacket`] if it is not exactly one message.
    pub fn decode(b: &[u8]) -> Result<Up, BadPacket> {
        let mut r = R(b);
        let u = match r.u32()? {
            10 => Up::Hello { uuid: r.take::<16>()?, flags: r.u32()?, ret: r.u32()? },
            11 => Up::Done { ret: r.u32()?, params: r.params()? },
            12 => {
                let level = r.u32()?;
                let text = String::from_utf8_lossy(r.0).into_owned();
                r.0 = &[];
                Up::Log { level, text }
            }
            13 => Up::OpenTa { uuid: r.take::<16>()?, params: r.params()? },
            14 => Up::InvokeTa { session: r.u32()?, cmd: r.u32()?, params: r.params()? },
            15 => Up::CloseTa { session: r.u32()? },
            16 => Up::IsCancelled,
            17 => Up::Panic { code: r.u32()? },
            18 => Up::ClientIdentity,
            _ => return Err(BadPacket),
        };
        r.end()?;
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut p = [WireParam::default(); NUM_PARAMS];
        p[1] = WireParam { ptype: ptype::MEMREF_INOUT, a: 1, b: 0, size: 17, file_offset: 4096, page_offset: 3 };
        for d in [
            Down::Open { session: 3, params: p },
            Down::Invoke { session: 3, cmd: 7, params: p },
            Down::Close { session: 3 },
            Down::Destroy,
            Down::Reply { ret: 0xffff_0010, origin: 4, handle: 9, params: p },
        ] {
            let b = d.encode();
            assert_eq!(Down::decode(&b), Ok(d.clone()));
            assert_eq!(Down::decode(&b[..b.len() - 1]), Err(BadPacket));
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(Down::decode(&longer), Err(BadPacket));
        }
        assert_eq!(Down::Invoke { session: 1, cmd: 0, params: p }.windows(), 1);
        for u in [
            Up::Hello { uuid: [1; 16], flags: 0x20, ret: 0 },
            Up::Done { ret: 0, params: p },
            Up::Log { level: 1, text: "héllo".into() },
            Up::OpenTa { uuid: [7; 16], params: p },
            Up::InvokeTa { session: 1, cmd: 2, params: p },
            Up::CloseTa { session: 1 },
            Up::IsCancelled,
            Up::Panic { code: 42 },
            Up::ClientIdentity,
        ] {
            assert_eq!(Up::decode(&u.encode()), Ok(u));
        }
        let long = Up::Log { level: 1, text: "é".repeat(5000) }.encode();
        assert!(long.len() <= MAX_PACKET);
        assert_eq!(Up::decode(&[0xff, 0, 0, 0]), Err(BadPacket));
        assert_eq!(Up::decode(&[]), Err(BadPacket));
    }
}

/// One end of the socket between the secure world and a TA process.
#[derive(Debug)]
pub struct Channel {
    fd: std::os::fd::OwnedFd,
}

/// At most this many descriptors travel with one packet.
pub const MAX_FDS: usize = NUM_PARAMS;

impl Channel {
    /// A connected pair (`SOCK_SEQPACKET`, close-on-exec).
    ///
    /// # Errors
    /// The host's errno.
    pub fn pair() -> rustix::io::Result<(Channel, Channel)> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wraps a descriptor that is one end of such a pair.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Channel {
        Channel { fd }
    }

    /// Another handle on the same socket.
    ///
    /// # Errors
    /// The host's errno.
    pub fn try_clone(&self) -> rustix::io::Result<Channel> {
        Ok(Channel { fd: rustix::io::fcntl_dupfd_cloexec(&self.fd, 3)? })
    }

    /// The descriptor (to hand to a child process).
    pub fn into_fd(self) -> std::os::fd::OwnedFd {
        self.fd
    }

    /// Sends one packet with `fds` beside it.
    ///
    /// # Errors
    /// The host's errno (`EPIPE` once the peer is gone).
    pub fn send(&self, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> rustix::io::Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !anc.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(rustix::io::Errno::INVAL);
        }
        sendmsg(&self.fd, &[std::io::IoSlice::new(bytes)], &mut anc, SendFlags::NOSIGNAL).map(drop)
    }

    /// Waits at most `timeout` (`None`: for ever) for a packet. `Ok(None)`
    /// on timeout; `Err(EPIPE)` once the peer is gone.
    ///
    /// # Errors
    /// The host's errno; `EPIPE` at end of file.
    pub fn recv(
        &self,
        timeout: Option<std::time::Duration>,
    ) -> rustix::io::Result<Option<(Vec<u8>, Vec<std::os::fd::OwnedFd>)>> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
        if let Some(t) = timeout {
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let ts = Timespec { tv_sec: t.as_secs() as i64, tv_nsec: i64::from(t.subsec_nanos()) };
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let mut buf = vec![0u8; MAX_PACKET];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match recvmsg(&self.fd, &mut [std::io::IoSliceMut::new(&mut buf)], &mut anc, RecvFlags::CMSG_CLOEXEC) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break r?,
            }
        };
        let mut fds = Vec::new();
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(it) = m {
                fds.extend(it);
            }
        }
        if got.bytes == 0 {
            return Err(rustix::io::Errno::PIPE);
        }
        buf.truncate(got.bytes);
        Ok(Some((buf, fds)))
    }
}
