//! The supplicant's queue (Linux `drivers/tee/optee/supp.c`): requests of
//! the secure world to tee-supplicant wait here until the supplicant takes
//! them with `TEE_IOC_SUPPL_RECV`; their askers wait until it answers with
//! `TEE_IOC_SUPPL_SEND`.
//!
//! One context at a time is the supplicant (the one that opened the
//! supplicant's node); closing it fails every request it took or that
//! waits with `TEEC_ERROR_COMMUNICATION`. No lock is held while anyone
//! waits: the asker waits on its own request's condition, the supplicant
//! on the queue's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use teeheap_sync::Recover;

use teeheap_uapi::tee::gp::TEEC_ERROR_COMMUNICATION;

use crate::error::{Errno, Error, Result, einval};
use crate::tee::driver::{Dir, TeeParam};
use crate::tee::shm::ContextId;

/// A request to the supplicant and, once answered, its result.
#[derive(Debug)]
struct Req {
    func: u32,
    state: Mutex<ReqState>,
    done: Condvar,
}

#[derive(Debug)]
struct ReqState {
    params: Vec<TeeParam>,
    ret: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    /// The supplicant's context, while one is open.
    ctx: Option<ContextId>,
    /// Waiting for the supplicant to take them.
    reqs: VecDeque<Arc<Req>>,
    /// Taken, waiting for an answer, by id (`supp->idr`).
    taken: BTreeMap<u32, Arc<Req>>,
    next_id: u32,
    /// The id of the request taken without a META parameter: the next
    /// SEND answers it (`supp->req_id`).
    req_id: Option<u32>,
    /// Whether the supplicant context has waited for requests at all.
    serving: bool,
    /// An injected `supplicant:gone` cut the supplicant off for good.
    gone: bool,
}

/// The supplicant's queue. See the module docs.
#[derive(Debug, Default)]
pub struct Supp {
    state: Mutex<State>,
    /// A request was queued.
    reqs_c: Condvar,
}

/// `TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT | META`: the parameter that
/// carries a request id to a supplicant that handles requests
/// asynchronously.
fn meta_id(id: u32) -> TeeParam {
    TeeParam::Value { dir: Dir::InOut, meta: true, a: u64::from(id), b: 0, c: 0 }
}

/// How often a waiting RECV checks whether its caller gave up.
const RECV_POLL: Duration = Duration::from_millis(50);

impl Supp {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().recover()
    }

    /// `ctx` opens the supplicant's node.
    ///
    /// # Errors
    /// `EBUSY` while another context is the supplicant (`optee_open`).
    pub fn claim(&self, ctx: ContextId) -> Result<()> {
        let mut s = self.lock();
        if s.ctx.is_some() {
            return Err(Error::new(Errno::EBUSY, "the supplicant's node is open already"));
        }
        s.ctx = Some(ctx);
        s.serving = false;
        Ok(())
    }

    /// The supplicant's context, while one is attached.
    pub fn context(&self) -> Option<ContextId> {
        self.lock().ctx
    }

    /// Whether a supplicant is attached.
    pub fn attached(&self) -> bool {
        self.lock().ctx.is_some()
    }

    /// The supplicant's context `ctx` is gone (`optee_supp_release`):
    /// every request it took or that waits fails with
    /// `TEEC_ERROR_COMMUNICATION`.
    pub fn release(&self, ctx: ContextId) {
        let s = self.lock();
        if s.ctx != Some(ctx) {
            return;
        }
        Self::abort_all(s);
    }

    /// The supplicant process is gone for good (fault injection,
    /// `supplicant:gone`): as [`Self::release`] of whichever context is
    /// the supplicant, and from now on every request fails with
    /// `TEEC_ERROR_COMMUNICATION` at once and every `TEE_IOC_SUPPL_RECV`
    /// (a blocked one too) ends with `EINTR`, as the dead supplicant's
    /// interrupted wait did. Returns how many requests it failed.
    pub fn cut(&self) -> usize {
        let mut s = self.lock();
        s.gone = true;
        let n = Self::abort_all(s);
        self.reqs_c.notify_all();
        n
    }

    /// Fails every taken and queued request with
    /// `TEEC_ERROR_COMMUNICATION` and detaches the supplicant context.
    fn abort_all(mut s: MutexGuard<'_, State>) -> usize {
        let taken = std::mem::take(&mut s.taken);
        let queued = std::mem::take(&mut s.reqs);
        s.ctx = None;
        s.req_id = None;
        s.serving = false;
        drop(s);
        let n = taken.len() + queued.len();
        for r in taken.into_values().chain(queued) {
            r.answer(TEEC_ERROR_COMMUNICATION, None);
        }
        n
    }

    /// A request of the secure world (`optee_supp_thrd_req`): queues it,
    /// waits for the answer and returns its result, with `params` updated
    /// (output values, output memref sizes). A supplicant that goes away
    /// meanwhile, or one cut off by [`Self::cut`], answers
    /// `TEEC_ERROR_COMMUNICATION`.
    ///
    /// With no supplicant serving (none attached, or the context on the
    /// supplicant's node never asked for a request) it returns `None` at
    /// once (Linux answers `TEEC_ERROR_COMMUNICATION` to kernel clients;
    /// user clients would wait for a supplicant to start, which under
    /// teeheap is seldom coming; the caller decides).
    pub fn request(&self, func: u32, params: &mut [TeeParam]) -> Option<u32> {
        let req = Arc::new(Req {
            func,
            state: Mutex::new(ReqState { params: params.to_vec(), ret: None }),
            done: Condvar::new(),
        });
        {
            let mut s = self.lock();
            if s.gone {
                return Some(TEEC_ERROR_COMMUNICATION);
            }
            if s.ctx.is_none() || !s.serving {
                return None;
            }
            s.reqs.push_back(Arc::clone(&req));
        }
        self.reqs_c.notify_all();
        let mut st = req.state.lock().recover();
        while st.ret.is_none() {
            st = req.done.wait(st).recover();
        }
        params.clone_from_slice(&st.params);
        Some(st.ret.unwrap_or(TEEC_ERROR_COMMUNICATION))
    }

    /// `TEE_IOC_SUPPL_RECV` (`optee_supp_recv`): waits for a request and
    /// returns its function and parameters, with a first META value
    /// parameter carrying the request id if `params` began with a META
    /// parameter. `gave_up` is asked while waiting: once it says so, the
    /// call ends with `EINTR` (the kernel's `-ERESTARTSYS`), as it does
    /// once the supplicant was cut off ([`Self::cut`]).
    ///
    /// # Errors
    /// `EINVAL` for no parameters, a parameter other than NONE (with or
    /// without META), or fewer parameters than the request has (which
    /// stays queued).
    pub fn recv(&self, params: &[TeeParam], gave_up: &dyn Fn() -> bool) -> Result<(u32, Vec<TeeParam>)> {
        if params.is_empty() {
            return Err(einval("SUPPL_RECV needs parameters"));
        }
        if params.iter().any(|p| !matches!(p, TeeParam::None { .. })) {
            return Err(einval("SUPPL_RECV parameters must be NONE"));
        }
        let meta = usize::from(params[0].is_meta());
        let room = params.len() - meta;
        let mut s = self.lock();
        s.serving = true;
        let (id, req) = loop {
            if let Some(front) = s.reqs.front() {
                let n = front.state.lock().recover().params.len();
                if room < n {
                    return Err(einval("fewer parameters than the request has"));
                }
                let req = s.reqs.pop_front().expect("front exists");
                let id = loop {
                    s.next_id = s.next_id.wrapping_add(1);
                    if !s.taken.contains_key(&s.next_id) {
                        break s.next_id;
                    }
                };
                s.taken.insert(id, Arc::clone(&req));
                break (id, req);
            }
            if s.gone {
                return Err(Error::new(Errno::EINTR, "the supplicant is gone (injected)"));
            }
            if gave_up() {
                return Err(Error::new(Errno::EINTR, "interrupted while waiting for a request"));
            }
            s = self.reqs_c.wait_timeout(s, RECV_POLL).recover().0;
        };
        if meta == 0 {
            s.req_id = Some(id);
        }
        drop(s);
        let mut out = Vec::with_capacity(meta + room);
        if meta == 1 {
            out.push(meta_id(id));
        }
        out.extend(req.state.lock().recover().params.iter().cloned());
        Ok((req.func, out))
    }

    /// `TEE_IOC_SUPPL_SEND` (`optee_supp_send`): the answer `ret` with
    /// `params` (as `params_from_supp` read them) to the request taken last
    /// without META, or to the one the first (META) parameter names.
    ///
    /// # Errors
    /// `EINVAL` for no parameters, a missing META id where one is needed,
    /// or a parameter count other than the request's; `ENOENT` for an id
    /// no request has.
    pub fn send(&self, ret: u32, params: &[TeeParam]) -> Result<()> {
        let (req, meta) = {
            let mut s = self.lock();
            if params.is_empty() {
                return Err(einval("SUPPL_SEND needs parameters"));
            }
            let (id, meta) = match s.req_id {
                Some(id) => (id, 0),
                None => match params[0] {
                    TeeParam::Value { dir: Dir::InOut, meta: true, a, .. } => (a as u32, 1),
                    _ => return Err(einval("no request id")),
                },
            };
            let req = s.taken.get(&id).cloned().ok_or(Error::new(Errno::ENOENT, "no such request"))?;
            let n = req.state.lock().recover().params.len();
            if params.len() - meta != n {
                return Err(einval("parameter count differs from the request's"));
            }
            s.taken.remove(&id);
            s.req_id = None;
            (req, meta)
        };
        req.answer(ret, Some(&params[meta..]));
        Ok(())
    }
}

impl Req {
    /// Completes the request with `ret`, taking output values and memref
    /// sizes from `answer`.
    fn answer(&self, ret: u32, answer: Option<&[TeeParam]>) {
        let mut st = self.state.lock().recover();
        if let Some(answer) = answer {
            for (p, a) in st.params.iter_mut().zip(answer) {
                match (p, a) {
                    (TeeParam::Value { dir, a, b, c, .. }, TeeParam::Value { a: na, b: nb, c: nc, .. })
                        if dir.is_output() =>
                    {
                        (*a, *b, *c) = (*na, *nb, *nc);
                    }
                    (TeeParam::Memref { dir, size, .. }, TeeParam::Memref { size: ns, .. }) if dir.is_output() => {
                        *size = *ns;
                    }
                    _ => {}
                }
            }
        }
        st.ret = Some(ret);
        self.done.notify_all();
    }
}
