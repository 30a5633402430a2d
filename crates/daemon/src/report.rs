//! What the observability requests answer: `bufinfo`, `stat`, `log`, `map`
//! (see docs/observability.md). Plain data, the same on both sides of the
//! control socket; addresses and sizes in bytes, times in milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A physical range `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Range {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

impl From<teeheap_platform::PhysRange> for Range {
    fn from(r: teeheap_platform::PhysRange) -> Range {
        Range { start: r.start().0, len: r.len() }
    }
}

/// A process holding a buffer, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id (as seen by the daemon).
    pub pid: i32,
    /// Its command line, arguments separated by spaces.
    pub cmdline: String,
    /// Its fds of the dma-buf.
    pub fds: Vec<i32>,
    /// Its mappings of the dma-buf.
    pub mmaps: u32,
    /// Its TEE shared-memory fds that register the dma-buf (SHM_REGISTER_FD).
    pub tee_shm_fds: Vec<i32>,
}

/// One live dma-buf (`teeheap bufinfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufRow {
    /// The kernel model's buffer id.
    pub id: u64,
    /// Size in bytes.
    pub size: u64,
    /// The heap it came from.
    pub heap: Option<String>,
    /// Exporter name.
    pub exporter: String,
    /// Name set with `DMA_BUF_SET_NAME`.
    pub name: Option<String>,
    /// Whether it is protected memory.
    pub protected: bool,
    /// Physical ranges.
    pub ranges: Vec<Range>,
    /// Devices attached to it.
    pub attachments: Vec<String>,
    /// TEE shared-memory registrations holding it.
    pub tee_registrations: u32,
    /// Milliseconds since it was allocated.
    pub age_ms: u64,
    /// Processes holding it, by pid.
    pub holders: Vec<Holder>,
}

/// Buffers and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Buffers.
    pub buffers: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Answer to `bufinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bufinfo {
    /// Every live dma-buf, by id.
    pub buffers: Vec<BufRow>,
    /// Totals per heap (`-` for buffers of no heap).
    pub totals: BTreeMap<String, Usage>,
}

/// One heap's counters (`teeheap stat`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapStat {
    /// Name.
    pub name: String,
    /// Whether its memory is protected.
    pub protected: bool,
    /// `ready`, `unbound`, `draining generation N with K buffers`, `removed` ...
    pub state: String,
    /// Where its memory comes from.
    pub pool: String,
    /// Bytes the bound pool can hold.
    pub capacity: u64,
    /// Bytes in live buffers.
    pub used: u64,
    /// Most bytes ever in live buffers at once.
    pub peak: u64,
    /// The largest single allocation that would succeed now (a dynamic
    /// pool's growth included); against `free`, the fragmentation.
    pub largest_free: u64,
    /// Bytes allocations could still take now (for `system`, normal
    /// memory lent to the secure world is not free), as `teeheap ls`.
    #[serde(default)]
    pub free: u64,
    /// Live buffers.
    pub buffers: u64,
    /// Successful allocations since boot.
    pub allocations: u64,
    /// Failed allocations since boot by errno name, including those refused
    /// by a `[limits]` cap (counted as `ENOMEM`).
    pub failures: BTreeMap<String, u64>,
    /// Allocations refused by a `[limits]` cap since boot.
    pub limit_refusals: u64,
}

/// Lending and reclaiming of protected memory by the secure world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureWorldStat {
    /// Chunks lent since boot.
    pub chunks_lent: u64,
    /// Chunks reclaimed (scrubbed and unprotected) since boot.
    pub chunks_reclaimed: u64,
    /// Bytes lent since boot.
    pub bytes_lent: u64,
    /// Bytes zeroed before their protection was dropped.
    pub bytes_scrubbed: u64,
    /// Chunks lent now.
    pub chunks_outstanding: u64,
    /// Bytes lent now.
    pub bytes_outstanding: u64,
    /// Lend requests refused.
    pub lend_refused: u64,
    /// Reclaims refused because the chunk was in use.
    pub reclaim_busy: u64,
}

/// A cap (`[limits]` of the platform description); `None` is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    /// Bytes.
    pub bytes: Option<u64>,
    /// Buffers.
    pub buffers: Option<u64>,
}

/// The caps in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Per process, all heaps together.
    pub process: Option<Cap>,
    /// Per process, within a heap.
    pub heap: BTreeMap<String, Cap>,
}

/// What one client process holds (charged as docs/observability.md says).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientUsage {
    /// Process id.
    pub pid: i32,
    /// Command line.
    pub cmdline: String,
    /// Buffers it holds.
    pub buffers: u64,
    /// Bytes of the buffers it holds.
    pub bytes: u64,
    /// The same per heap.
    pub heaps: BTreeMap<String, Usage>,
    /// Its allocations refused by a cap.
    pub limit_refusals: u64,
}

/// Answer to `stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Milliseconds since the daemon started (for allocations per second).
    pub uptime_ms: u64,
    /// Every heap, including removed ones.
    pub heaps: Vec<HeapStat>,
    /// The secure world's lending.
    pub secure_world: SecureWorldStat,
    /// Processes holding buffers, by pid.
    pub clients: Vec<ClientUsage>,
    /// The caps in force.
    pub caps: Caps,
    /// The daemon's own descriptors (absent from older daemons).
    #[serde(default)]
    pub descriptors: DescriptorStat,
    /// The per-buffer kernel resources the daemon holds besides
    /// descriptors, against their ceilings (absent from older daemons).
    #[serde(default)]
    pub resources: ResourceStat,
}

/// What the daemon holds per live served file, against each ceiling
/// (docs/serving.md, "Per-buffer resources and their ceilings").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStat {
    /// inotify watches of this daemon: one per served file and spare.
    pub watches: u64,
    /// `fs.inotify.max_user_watches`: the ceiling for all of the user's
    /// processes together (`None`: unreadable).
    pub watches_limit: Option<u64>,
    /// Memory mappings of the daemon's process: one per range of DRAM a
    /// CPU-mappable buffer's memfd is mapped over, plus its own (0 when
    /// `/proc/self/maps` cannot be read, e.g. out of descriptors).
    pub mappings: u64,
    /// `vm.max_map_count`: the ceiling for one process (`None`: unreadable).
    pub mappings_limit: Option<u64>,
}

/// The daemon's own descriptor table: its sockets and listeners, spare
/// memfds, and the two ends of a pipe per live sync file (no descriptor per
/// buffer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorStat {
    /// Descriptors the daemon's process has open now.
    pub open: u64,
    /// Its soft `RLIMIT_NOFILE` now (`None`: unlimited).
    pub limit: Option<u64>,
    /// The soft limit it inherited, before it raised it at start.
    pub limit_inherited: Option<u64>,
    /// Times it ran out of descriptors making a file (programs got
    /// `ENOMEM` for an ALLOC or a sync-file export) since start.
    pub shortages: u64,
}

/// What a log entry records; in JSON the kebab-case name (`heap-rm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An access the firewall refused.
    #[default]
    Violation,
    /// A backend bound.
    Bind,
    /// A backend unbound (buffers drain).
    Unbind,
    /// A heap removed.
    HeapRm,
    /// A heap added again.
    HeapAdd,
    /// A chunk of normal memory lent to the secure world.
    Lend,
    /// A lent chunk reclaimed (scrubbed).
    Reclaim,
    /// An allocation refused by a per-process cap.
    Limit,
    /// A secure master's access through `teeheap devmem` that the firewall
    /// allowed.
    Devmem,
    /// A control request refused for lack of rights (see `privilege`).
    Denied,
    /// Fault specs armed.
    Inject,
    /// A fault that fired (see [`Event::spec`]).
    Injected,
    /// A panic while serving a request, answered with an error.
    Bug,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 13] = [
        EventKind::Violation,
        EventKind::Bind,
        EventKind::Unbind,
        EventKind::HeapRm,
        EventKind::HeapAdd,
        EventKind::Lend,
        EventKind::Reclaim,
        EventKind::Limit,
        EventKind::Devmem,
        EventKind::Denied,
        EventKind::Inject,
        EventKind::Injected,
        EventKind::Bug,
    ];

    /// The name in JSON and in `teeheap log`.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Violation => "violation",
            EventKind::Bind => "bind",
            EventKind::Unbind => "unbind",
            EventKind::HeapRm => "heap-rm",
            EventKind::HeapAdd => "heap-add",
            EventKind::Lend => "lend",
            EventKind::Reclaim => "reclaim",
            EventKind::Limit => "limit",
            EventKind::Devmem => "devmem",
            EventKind::Denied => "denied",
            EventKind::Inject => "inject",
            EventKind::Injected => "injected",
            EventKind::Bug => "bug",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// One entry of the daemon's log (`teeheap log`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log since start (1 for the first entry).
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened (serialised by its kebab-case name).
    pub kind: EventKind,
    /// For humans.
    pub message: String,
    /// The physical range concerned (violations, lend, reclaim, devmem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// The bus master (violations, devmem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// `read` or `write` (violations, devmem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// The firewall region that refused (violations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The heap concerned (heap-rm, heap-add, limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
    /// The use case a region was lent for or reclaimed from (lend,
    /// reclaim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_case: Option<String>,
    /// The process concerned (limit refusals, devmem, denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The fault spec that fired (injected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// Answer to `log`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// Entries after the requested sequence number, oldest first.
    pub events: Vec<Event>,
    /// Entries dropped from the front of the bounded log since start.
    pub dropped: u64,
}

/// A firewall region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRegion {
    /// Its label (`carveout secure-video`, `lent region #3 (trusted-ui)` ...).
    pub label: String,
    /// The range.
    pub range: Range,
    /// Masters that may read it.
    pub read: Vec<String>,
    /// Masters that may write it.
    pub write: Vec<String>,
}

/// A range with a label (carveouts, lent chunks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    /// What it is.
    pub label: String,
    /// The use case it serves.
    pub use_case: String,
    /// The range.
    pub range: Range,
}

/// One physical piece of an allocated buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// The buffer's id.
    pub buffer: u64,
    /// Its heap.
    pub heap: String,
    /// The range.
    pub range: Range,
    /// Pids holding the buffer.
    pub holders: Vec<i32>,
}

/// Answer to `map`: the physical memory map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryMap {
    /// The platform's name.
    pub platform: String,
    /// DRAM.
    pub dram: Option<Range>,
    /// Static carveouts.
    pub carveouts: Vec<Area>,
    /// Chunks lent to the secure world now.
    pub lent: Vec<Area>,
    /// Firewall regions.
    pub firewall: Vec<FirewallRegion>,
    /// Allocated buffers, piece by piece, by address.
    pub buffers: Vec<Piece>,
    /// The holders, by pid.
    pub processes: Vec<ProcessName>,
}

/// A process and its command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessName {
    /// Process id.
    pub pid: i32,
    /// Command line.
    pub cmdline: String,
}

impl MemoryMap {
    /// The command line of holder `pid`.
    pub fn cmdline(&self, pid: i32) -> Option<&str> {
        self.processes.iter().find(|p| p.pid == pid).map(|p| p.cmdline.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON of an event names its kind as `teeheap-log/1` documents
    /// (`heap-rm`, not `HeapRm`), and reads back; `teeheap log` pads it.
    #[test]
    fn event_kinds_are_their_names() {
        for k in EventKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), k);
            assert!(k == k.name());
        }
        assert_eq!(EventKind::HeapRm.name(), "heap-rm");
        assert!(serde_json::from_str::<EventKind>("\"HeapRm\"").is_err());
        assert_eq!(format!("{:<9}|", EventKind::Bind), "bind     |");
        let e = Event { seq: 1, kind: EventKind::HeapAdd, message: "m".into(), ..Event::default() };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"seq":1,"time_ms":0,"kind":"heap-add","message":"m"}"#);
    }
}
