//! One vb2-style buffer queue of a V4L2 mem2mem instance (OUTPUT or
//! CAPTURE): its buffers, their states, and the FIFO of queued and done
//! buffers.
//!
//! A buffer's memory is a dma-buf: allocated by the queue for `MMAP`
//! (normal memory), or the one whose fd the program passed at `QBUF` for
//! `DMABUF` (held until the buffer is queued again or freed). A `USERPTR`
//! buffer has a normal-memory dma-buf of the queue's too, the device's
//! bounce buffer: the program's bytes are copied into it at `QBUF`
//! (OUTPUT) and out of it at `DQBUF` (CAPTURE).

use std::collections::VecDeque;
use std::sync::Arc;

use teeheap_uapi::v4l2::*;

use crate::dma_buf::DmaBuf;
use crate::error::{Errno, Error, Result, einval};

/// Most buffers a queue holds (`VB2_MAX_FRAME`).
pub const MAX_BUFFERS: usize = 32;

/// Where a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// With the program.
    Dequeued,
    /// Queued to the device.
    Queued,
    /// Processed, waiting to be dequeued.
    Done,
}

/// One buffer.
#[derive(Debug)]
pub struct Buffer {
    /// Its memory (MMAP: always; DMABUF: once queued).
    pub mem: Option<Arc<DmaBuf>>,
    /// Bytes of data.
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_KEYFRAME`, `PFRAME`, `ERROR`, `LAST` of the last run.
    pub flags: u32,
    /// Timestamp (copied from OUTPUT to CAPTURE).
    pub timestamp: Timeval,
    /// Sequence number of the last run.
    pub sequence: u32,
    /// `USERPTR`: the program's address given at the last `QBUF`.
    pub userptr: u64,
    /// Where it is.
    pub state: State,
}

/// A queue.
///
/// # Invariants
/// `queued` and `done` hold indexes of buffers in state `Queued` and
/// `Done` respectively, each once.
#[derive(Debug)]
pub struct Queue {
    /// `V4L2_BUF_TYPE_VIDEO_OUTPUT` or `_CAPTURE`.
    pub type_: u32,
    /// `V4L2_MEMORY_*` of the buffers (0 while there are none).
    pub memory: u32,
    /// Bytes each buffer must hold.
    pub length: u32,
    /// The buffers.
    pub bufs: Vec<Buffer>,
    /// Streaming on.
    pub streaming: bool,
    /// Queued, in order.
    pub queued: VecDeque<usize>,
    /// Done, in order.
    pub done: VecDeque<usize>,
    /// A buffer with `V4L2_BUF_FLAG_LAST` was dequeued: DQBUF is `EPIPE`.
    pub last_dequeued: bool,
    /// Buffers completed since STREAMON.
    pub sequence: u32,
    /// mmap offset of buffer 0 (CAPTURE queues are at 1 << 30, as vb2's m2m).
    pub offset_base: u32,
}

impl Queue {
    /// An empty queue of `type_`.
    pub fn new(type_: u32) -> Queue {
        let offset_base = if type_ == V4L2_BUF_TYPE_VIDEO_CAPTURE { 1 << 30 } else { 0 };
        Queue {
            type_,
            memory: 0,
            length: 0,
            bufs: Vec::new(),
            streaming: false,
            queued: VecDeque::new(),
            done: VecDeque::new(),
            last_dequeued: false,
            sequence: 0,
            offset_base,
        }
    }

    /// The queue's capabilities for `REQBUFS`/`CREATE_BUFS`.
    pub const CAPS: u32 = V4L2_BUF_CAP_SUPPORTS_MMAP
        | V4L2_BUF_CAP_SUPPORTS_USERPTR
        | V4L2_BUF_CAP_SUPPORTS_DMABUF
        | V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS;

    /// Page-aligned length of one buffer.
    fn stride(&self) -> u32 {
        self.length.div_ceil(4096) * 4096
    }

    /// The mmap offset of buffer `i`.
    pub fn offset(&self, i: usize) -> u32 {
        self.offset_base + i as u32 * self.stride()
    }

    /// `REQBUFS`: frees every buffer, then makes `count` (clamped to
    /// [`MAX_BUFFERS`]) with memory from `alloc` for MMAP and USERPTR.
    ///
    /// # Errors
    /// `EINVAL` for a memory type other than MMAP/USERPTR/DMABUF; `EBUSY` while
    /// streaming; what `alloc` returns (the queue is then empty).
    pub fn reqbufs(
        &mut self,
        count: u32,
        memory: u32,
        length: u32,
        alloc: impl Fn(u32) -> Result<Arc<DmaBuf>>,
    ) -> Result<u32> {
        if ![V4L2_MEMORY_MMAP, V4L2_MEMORY_USERPTR, V4L2_MEMORY_DMABUF].contains(&memory) {
            return Err(einval("memory type not supported"));
        }
        if self.streaming {
            return Err(Error::new(Errno::EBUSY, "queue is streaming"));
        }
        self.bufs.clear();
        self.queued.clear();
        self.done.clear();
        self.memory = 0;
        if count == 0 {
            return Ok(0);
        }
        let count = (count as usize).min(MAX_BUFFERS);
        self.length = length;
        for _ in 0..count {
            let mem = if memory == V4L2_MEMORY_DMABUF { None } else { Some(alloc(length)?) };
            self.bufs.push(Buffer {
                mem,
                bytesused: 0,
                flags: 0,
                timestamp: Timeval::default(),
                sequence: 0,
                userptr: 0,
                state: State::Dequeued,
            });
        }
        self.memory = memory;
        Ok(count as u32)
    }

    /// The buffer `index` of a `v4l2_buffer` of this queue's type and memory.
    ///
    /// # Errors
    /// `EINVAL` for another type, an index past the buffers, or (when
    /// `check_memory`) another memory type.
    pub fn check(&self, b: &V4l2Buffer, check_memory: bool) -> Result<usize> {
        if b.type_ != self.type_ {
            return Err(einval("wrong buffer type"));
        }
        let i = b.index as usize;
        if i >= self.bufs.len() {
            return Err(einval("buffer index out of range"));
        }
        if check_memory && b.memory != self.memory {
            return Err(einval("wrong memory type"));
        }
        Ok(i)
    }

    /// Fills `b` with buffer `i`'s state (`QUERYBUF`, `QBUF`, `DQBUF`).
    pub fn fill(&self, i: usize, b: &mut V4l2Buffer) {
        let buf = &self.bufs[i];
        b.index = i as u32;
        b.type_ = self.type_;
        b.memory = self.memory;
        b.bytesused = buf.bytesused;
        b.field = V4L2_FIELD_NONE;
        b.timestamp = buf.timestamp;
        b.sequence = buf.sequence;
        b.length = self.length;
        let state = match buf.state {
            State::Dequeued => 0,
            State::Queued => V4L2_BUF_FLAG_QUEUED,
            State::Done => V4L2_BUF_FLAG_DONE,
        };
        b.flags = buf.flags | state | V4L2_BUF_FLAG_TIMESTAMP_COPY;
        if self.memory == V4L2_MEMORY_MMAP {
            b.set_offset(self.offset(i));
        } else if self.memory == V4L2_MEMORY_USERPTR {
            b.m = buf.userptr;
        }
    }

    /// `STREAMOFF`: every buffer back to the program, nothing pending.
    pub fn stop(&mut self) {
        self.streaming = false;
        self.queued.clear();
        self.done.clear();
        self.last_dequeued = false;
        for b in &mut self.bufs {
            b.state = State::Dequeued;
            b.flags = 0;
        }
    }

    /// Marks buffer `i` done with `flags` and `bytesused`.
    pub fn complete(&mut self, i: usize, bytesused: u32, flags: u32, timestamp: Timeval) {
        let seq = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        let b = &mut self.bufs[i];
        b.state = State::Done;
        b.bytesused = bytesused;
        b.flags = flags;
        b.timestamp = timestamp;
        b.sequence = seq;
        self.done.push_back(i);
    }
}
