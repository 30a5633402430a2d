//! Lifecycle requests: unbinding and binding the backend, removing and
//! re-adding heap nodes (docs/lifecycle.md), and `devmem`, a bus access
//! through the platform firewall for diagnostics. Each change is logged.

use teeheap_kernel::dma_heap::HeapInfo;
use teeheap_platform::{Master, PhysAddr, UseCase};
use teeheap_sync::Recover;

use crate::Shared;
use crate::privilege::Caller;
use crate::protocol::{BackendAction, Reply};
use crate::report::{Event, EventKind};

/// `a, b, c`, or `none`.
fn names(v: &[String]) -> String {
    if v.is_empty() { "none".to_owned() } else { v.join(", ") }
}

impl Shared {
    fn backend_slot(&self) -> std::sync::MutexGuard<'_, Option<crate::backend::Backend>> {
        self.backend.lock().recover()
    }

    /// Every heap, listed ones by name first, then removed ones.
    pub fn heap_infos(&self) -> Vec<HeapInfo> {
        let mut v: Vec<HeapInfo> = self.kernel.dma_heaps().list().iter().map(|h| h.info()).collect();
        v.extend(self.kernel.removed_dma_heaps());
        v
    }

    /// Appends a lifecycle event to the log.
    pub(crate) fn log_lifecycle(&self, kind: EventKind, message: String, heap: Option<String>) {
        tracing::info!(kind = kind.name(), "{message}");
        let e = Event { kind, message, heap, ..Event::default() };
        self.events.push(e, self.kernel.platform(), self.host.world());
    }

    /// The generations of each protected use case, for log messages.
    fn generations(&self) -> String {
        let mut parts = Vec::new();
        for uc in UseCase::ALL {
            let Some(h) = self.kernel.tee_heap(uc) else { continue };
            for (id, g) in h.generations() {
                let what = if g.bound {
                    "bound".to_owned()
                } else {
                    format!("draining {} buffer{}", g.buffers, if g.buffers == 1 { "" } else { "s" })
                };
                parts.push(format!("{uc} generation {id} {what}"));
            }
        }
        if parts.is_empty() { "no generation".to_owned() } else { parts.join(", ") }
    }

    /// `teeheap backend bind|unbind`.
    pub fn backend_action(&self, action: BackendAction) -> Reply {
        let mut slot = self.backend_slot();
        match action {
            BackendAction::Unbind => {
                let Some(b) = slot.take() else { return Reply::error("not_bound", "no backend is bound") };
                drop(b);
                drop(slot);
                let msg = format!("backend {} unbound; {}", self.backend_name, self.generations());
                self.log_lifecycle(EventKind::Unbind, msg.clone(), None);
                Reply::Done { message: msg }
            }
            BackendAction::Bind => {
                if slot.is_some() {
                    return Reply::error("busy", "a backend is bound already");
                }
                match self.host.probe(&self.kernel) {
                    Ok(b) => {
                        *slot = Some(b);
                        drop(slot);
                        let msg = format!("backend {} bound; {}", self.backend_name, self.generations());
                        self.log_lifecycle(EventKind::Bind, msg.clone(), None);
                        Reply::Done { message: msg }
                    }
                    Err(e) => Reply::error("failed", format!("probe failed: {e}")),
                }
            }
        }
    }

    /// `teeheap heap rm NAME`.
    pub fn heap_rm(&self, name: &str) -> Reply {
        match self.kernel.dma_heap_remove(name) {
            Ok(()) => {
                for (session, run) in self.runs.lock().recover().iter() {
                    if let Err(e) = run.remove_heap(name) {
                        tracing::warn!(session, heap = name, error = %e, "cannot remove the node from a run's /dev");
                    }
                }
                let msg = format!("heap {name} removed");
                self.log_lifecycle(EventKind::HeapRm, msg.clone(), Some(name.to_owned()));
                Reply::Done { message: msg }
            }
            Err(e) if e.errno() == teeheap_kernel::Errno::ENOENT => {
                let listed: Vec<String> =
                    self.kernel.dma_heaps().list().iter().map(|h| h.name().as_str().to_owned()).collect();
                let removed: Vec<String> =
                    self.kernel.removed_dma_heaps().iter().map(|i| i.name.as_str().to_owned()).collect();
                let msg = if removed.iter().any(|r| r == name) {
                    format!("heap {name} is removed already (`teeheap heap add {name}` adds it back)")
                } else {
                    format!("no heap named {name:?}; the heaps are: {}", names(&listed))
                };
                Reply::error(e.errno().name(), msg)
            }
            Err(e) => Reply::error(e.errno().name(), format!("cannot remove heap {name}: {}", e.reason())),
        }
    }

    /// `teeheap heap add NAME`.
    pub fn heap_add(&self, name: &str) -> Reply {
        match self.kernel.dma_heap_readd(name) {
            Ok(()) => {
                for (session, run) in self.runs.lock().recover().iter() {
                    let node = crate::session::Node::open(&format!("dma_heap/{name}"), &self.kernel);
                    if let Err(e) = run.add_heap(name, node) {
                        tracing::warn!(session, heap = name, error = %e, "cannot add the node to a run's /dev");
                    }
                }
                let msg = format!("heap {name} added back");
                self.log_lifecycle(EventKind::HeapAdd, msg.clone(), Some(name.to_owned()));
                Reply::Done { message: msg }
            }
            Err(e) if e.errno() == teeheap_kernel::Errno::ENOENT => {
                let removed: Vec<String> =
                    self.kernel.removed_dma_heaps().iter().map(|i| i.name.as_str().to_owned()).collect();
                let msg = if self.kernel.dma_heaps().list().iter().any(|h| h.name().as_str() == name) {
                    format!("heap {name} is not removed; nothing to add back")
                } else {
                    format!("no removed heap named {name:?}; removed heaps: {}", names(&removed))
                };
                Reply::error(e.errno().name(), msg)
            }
            Err(e) => Reply::error(e.errno().name(), format!("cannot add heap {name} back: {}", e.reason())),
        }
    }

    /// `teeheap devmem`: `master` reads `len` bytes at `addr` (or writes
    /// `len` zero bytes) through the platform, as a bus access would; the
    /// firewall decides, and a refusal lands in the violation log. For a
    /// caller in this process; see [`Shared::devmem_as`].
    pub fn devmem(&self, master: &str, addr: u64, len: u64, write: bool) -> Reply {
        self.devmem_as(master, addr, len, write, &Caller::owner())
    }

    /// [`Shared::devmem`] on behalf of `caller` (whose rights were checked
    /// by the caller of this function). An access by a master other than
    /// the normal-world CPU that the firewall lets through is logged as a
    /// `devmem` event naming the caller: reading or writing protected
    /// memory from the normal world never goes unnoticed.
    pub(crate) fn devmem_as(&self, master: &str, addr: u64, len: u64, write: bool, caller: &Caller) -> Reply {
        let Ok(master) = master.parse::<Master>() else {
            let all: Vec<&str> = Master::ALL.iter().map(|m| m.name()).collect();
            return Reply::error(
                "bad_request",
                format!("unknown bus master {master:?}; the masters are: {}", all.join(", ")),
            );
        };
        if len == 0 || len > 1 << 16 {
            return Reply::error("bad_request", format!("a bus access of {len} bytes: the length must be 1 to 65536"));
        }
        let platform = self.kernel.platform();
        let mut data = vec![0u8; len as usize];
        let r = if write {
            platform.write(master, PhysAddr(addr), &data)
        } else {
            platform.read(master, PhysAddr(addr), &mut data)
        };
        self.events.catch_up(platform, self.host.world());
        if r.is_ok() && master != Master::NsCpu {
            let access = if write { "write" } else { "read" };
            let msg = format!(
                "{master} {access} of {len} bytes at {addr:#x} by {}",
                caller.describe(),
                master = master.name()
            );
            tracing::info!("devmem: {msg}");
            let e = Event {
                kind: EventKind::Devmem,
                message: msg,
                range: Some(crate::report::Range { start: addr, len }),
                master: Some(master.name().to_owned()),
                access: Some(access.to_owned()),
                pid: caller.pid,
                ..Event::default()
            };
            self.events.push(e, platform, self.host.world());
        }
        match r {
            Ok(()) => Reply::Devmem { allowed: true, message: "done".into(), data: if write { vec![] } else { data } },
            Err(e) => Reply::Devmem { allowed: false, message: e.to_string(), data: vec![] },
        }
    }
}
