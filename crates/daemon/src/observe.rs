//! Answers to the observability requests (`bufinfo`, `stat`, `log`, `map`)
//! and the cap check at allocation. See docs/observability.md.

use std::collections::{BTreeMap, HashMap};
use teeheap_sync::Recover;

use teeheap_kernel::file::FileKind;

use crate::Shared;
use crate::holders::{self, Process};
use crate::limits::{self, Charge, NO_HEAP};
use crate::report::{
    Area, BufRow, Bufinfo, ClientUsage, DescriptorStat, Event, EventKind, FirewallRegion, HeapStat, Holder, Log,
    MemoryMap, Piece, ProcessName, SecureWorldStat, Stat,
};

/// Holders of each buffer id, from a scan of every process.
fn holders_by_buffer(shared: &Shared, procs: &BTreeMap<i32, Process>) -> HashMap<u64, Vec<Holder>> {
    let mut out: HashMap<u64, BTreeMap<i32, Holder>> = HashMap::new();
    for (&pid, p) in procs {
        for (id, hold) in &p.holds {
            let Some(file) = shared.registry.file(id) else { continue };
            let Some(charge) = file.charge() else { continue };
            let shm = file.kind() == FileKind::TEE_SHM;
            let h = out.entry(charge.buf).or_default().entry(pid).or_insert_with(|| Holder {
                pid,
                cmdline: p.cmdline.clone(),
                ..Holder::default()
            });
            if shm {
                h.tee_shm_fds.extend(&hold.fds);
                h.tee_shm_fds.sort_unstable();
            } else {
                h.fds.extend(&hold.fds);
                h.fds.sort_unstable();
                h.mmaps += hold.mmaps;
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, v.into_values().collect())).collect()
}

impl Shared {
    /// `teeheap bufinfo`: every live dma-buf with its holders.
    pub fn bufinfo(&self) -> Bufinfo {
        let procs = holders::scan_all();
        let mut holders = holders_by_buffer(self, &procs);
        let mut out = Bufinfo::default();
        for b in self.kernel.dma_bufs().snapshot() {
            let heap = b.heap.unwrap_or(NO_HEAP).to_owned();
            let t = out.totals.entry(heap).or_default();
            t.buffers += 1;
            t.bytes += b.size;
            out.buffers.push(BufRow {
                id: b.id.0,
                size: b.size,
                heap: b.heap.map(str::to_owned),
                exporter: b.exporter.to_owned(),
                name: b.name,
                protected: b.protected,
                ranges: b.ranges.iter().map(|r| (*r).into()).collect(),
                attachments: b.attachments.iter().map(|m| m.name().to_owned()).collect(),
                tee_registrations: b.tee_registrations,
                age_ms: b.age_ms,
                holders: holders.remove(&b.id.0).unwrap_or_default(),
            });
        }
        out
    }

    /// `teeheap stat`: heaps, the secure world's lending, clients.
    pub fn stat(&self) -> Stat {
        let refusals = self.refusals.lock().recover().clone();
        let heaps = self
            .heap_infos()
            .into_iter()
            .map(|i| {
                let name = i.name.as_str().to_owned();
                let refused = refusals.by_heap.get(&name).copied().unwrap_or(0);
                let mut failures: BTreeMap<String, u64> =
                    i.failures.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
                if refused > 0 {
                    *failures.entry("ENOMEM".into()).or_default() += refused;
                }
                HeapStat {
                    name,
                    protected: i.protected,
                    state: i.state.to_string(),
                    pool: i.pool,
                    capacity: i.capacity,
                    used: i.used,
                    peak: i.peak,
                    largest_free: i.largest_free,
                    free: i.free,
                    buffers: i.buffers,
                    allocations: i.allocations,
                    failures,
                    limit_refusals: refused,
                }
            })
            .collect();
        let w = self.host.world().stats();
        let secure_world = SecureWorldStat {
            chunks_lent: w.lent,
            chunks_reclaimed: w.reclaimed,
            bytes_lent: w.bytes_lent,
            bytes_scrubbed: w.bytes_scrubbed,
            chunks_outstanding: w.outstanding,
            bytes_outstanding: w.outstanding_bytes,
            lend_refused: w.lend_refused,
            reclaim_busy: w.reclaim_busy,
        };
        let mut clients: BTreeMap<i32, ClientUsage> = BTreeMap::new();
        for (pid, p) in holders::scan_all() {
            let c = Charge::of(&p.holds, &self.registry);
            if c.by_heap.is_empty() {
                continue;
            }
            let total = c.total();
            let heaps = c.by_heap.keys().map(|h| (h.clone(), c.heap(h))).collect();
            clients.insert(
                pid,
                ClientUsage {
                    pid,
                    cmdline: p.cmdline,
                    buffers: total.buffers,
                    bytes: total.bytes,
                    heaps,
                    limit_refusals: 0,
                },
            );
        }
        for (pid, n) in &refusals.by_pid {
            if let Some(c) = clients.get_mut(pid) {
                c.limit_refusals = *n;
            } else if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                clients.insert(
                    *pid,
                    ClientUsage {
                        pid: *pid,
                        cmdline: holders::cmdline(*pid),
                        limit_refusals: *n,
                        ..Default::default()
                    },
                );
            }
        }
        Stat {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            heaps,
            secure_world,
            clients: clients.into_values().collect(),
            caps: self.caps.clone(),
            descriptors: self.descriptors(),
            resources: self.resources(),
        }
    }

    /// The daemon's watches and mappings against their ceilings.
    fn resources(&self) -> crate::report::ResourceStat {
        let sysctl = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let mappings = crate::served::mappings().unwrap_or(0);
        crate::report::ResourceStat {
            watches: self.registry.watches() as u64,
            watches_limit: sysctl("/proc/sys/fs/inotify/max_user_watches"),
            mappings,
            mappings_limit: sysctl("/proc/sys/vm/max_map_count"),
        }
    }

    /// The daemon's open descriptors against its limit.
    fn descriptors(&self) -> DescriptorStat {
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        // Less the directory's own fd, open while it is read. No fd free
        // to read it (EMFILE) means every one below the limit is open.
        let open = match std::fs::read_dir("/proc/self/fd") {
            Ok(d) => d.count().saturating_sub(1) as u64,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error()) => now.current.unwrap_or(0),
            Err(_) => 0,
        };
        DescriptorStat {
            open,
            limit: now.current,
            limit_inherited: teeheap_intercept::nofile::raised().map_or(now.current, |r| r.was.current),
            shortages: self.registry.descriptor_shortages(),
        }
    }

    /// `teeheap log`: entries after sequence number `after`.
    pub fn log(&self, after: u64) -> Log {
        self.events.catch_up(self.kernel.platform(), self.host.world());
        self.events.since(after)
    }

    /// `teeheap map`: the physical memory map.
    pub fn memory_map(&self) -> MemoryMap {
        let platform = self.kernel.platform();
        let procs = holders::scan_all();
        let holders = holders_by_buffer(self, &procs);
        let mut map = MemoryMap {
            platform: platform.config().name.clone(),
            dram: Some(platform.dram().into()),
            ..MemoryMap::default()
        };
        map.carveouts = platform
            .carveouts()
            .iter()
            .map(|c| Area { label: c.name.clone(), use_case: c.use_case.name().to_owned(), range: c.range.into() })
            .collect();
        map.lent = self
            .host
            .world()
            .lent_objects()
            .iter()
            .map(|o| Area {
                label: format!("lent region #{}", o.cookie),
                use_case: o.use_case.name().to_owned(),
                range: o.range.into(),
            })
            .collect();
        map.firewall = platform
            .firewall()
            .regions()
            .iter()
            .map(|r| FirewallRegion {
                label: r.label.clone(),
                range: r.range.into(),
                read: r.rights.read.iter().map(|m| m.name().to_owned()).collect(),
                write: r.rights.write.iter().map(|m| m.name().to_owned()).collect(),
            })
            .collect();
        for b in self.kernel.dma_bufs().snapshot() {
            let pids: Vec<i32> = holders.get(&b.id.0).map(|h| h.iter().map(|h| h.pid).collect()).unwrap_or_default();
            for &pid in &pids {
                if let Some(p) = procs.get(&pid)
                    && map.cmdline(pid).is_none()
                {
                    map.processes.push(ProcessName { pid, cmdline: p.cmdline.clone() });
                }
            }
            for r in &b.ranges {
                map.buffers.push(Piece {
                    buffer: b.id.0,
                    heap: b.heap.unwrap_or(NO_HEAP).to_owned(),
                    range: (*r).into(),
                    holders: pids.clone(),
                });
            }
        }
        map.buffers.sort_by_key(|p| p.range.start);
        map.processes.sort_by_key(|p| p.pid);
        map.carveouts.sort_by_key(|a| a.range.start);
        map.lent.sort_by_key(|a| a.range.start);
        map.firewall.sort_by_key(|f| f.range.start);
        map
    }

    /// Whether `[limits]` sets any cap.
    pub fn has_caps(&self) -> bool {
        self.caps.process.is_some() || !self.caps.heap.is_empty()
    }

    /// Whether the caps let thread `tid` allocate `len` bytes from `heap`;
    /// a refusal is counted and logged. `true` when no cap is configured.
    pub fn allow_alloc(&self, tid: i32, heap: &str, len: u64) -> bool {
        if !self.has_caps() {
            return true;
        }
        let Some(holds) = holders::scan_process(tid) else { return true };
        let charge = Charge::of(&holds, &self.registry);
        let len = len.div_ceil(4096).saturating_mul(4096);
        let Some(why) = limits::check(&self.caps, heap, len, &charge) else { return true };
        let pid = tgid(tid).unwrap_or(tid);
        {
            let mut r = self.refusals.lock().recover();
            *r.by_heap.entry(heap.to_owned()).or_default() += 1;
            *r.by_pid.entry(pid).or_default() += 1;
        }
        let e = Event {
            kind: EventKind::Limit,
            message: format!("pid {pid}: ALLOC of {len} bytes from {heap} refused (ENOMEM): {why}"),
            heap: Some(heap.to_owned()),
            pid: Some(pid),
            ..Event::default()
        };
        self.events.push(e, self.kernel.platform(), self.host.world());
        false
    }
}

/// The process of thread `tid`.
fn tgid(tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok())
}

/// Allocations refused by a per-process cap since start (`teeheap stat`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Refusals {
    /// By heap name.
    pub(crate) by_heap: BTreeMap<String, u64>,
    /// By process id.
    pub(crate) by_pid: BTreeMap<i32, u64>,
}
