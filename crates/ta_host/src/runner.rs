//! The TA process: loads one `<uuid>.ta`, locks itself into its sandbox and
//! serves the calls of one TA instance, for as many sessions as the secure
//! world opens on it (see [`run`]), one call at a time.
//!
//! Memref parameters arrive as windows: a descriptor of the memory that
//! holds the bytes (platform DRAM, or a bounce file) and the offset of the
//! memref's first page in it. The process maps the window for the call,
//! closes the descriptor at once, gives the TA the pointer, and unmaps the
//! window when the entry point returns.

use std::ffi::{CString, c_void};
use std::os::fd::OwnedFd;
use teeheap_sync::Recover;

use rustix::mm::{MapFlags, ProtFlags};

use crate::api::{Param, STATE, State, TEE_ERROR_BAD_FORMAT, TEE_ERROR_BAD_PARAMETERS, TEE_ERROR_GENERIC, Window};
use crate::sandbox;
use crate::wire::{Channel, Down, NUM_PARAMS, Up, WireParam, ptype};

type CreateFn = unsafe extern "C" fn() -> u32;
type DestroyFn = unsafe extern "C" fn();
type OpenFn = unsafe extern "C" fn(u32, *mut Param, *mut *mut c_void) -> u32;
type CloseFn = unsafe extern "C" fn(*mut c_void);
type InvokeFn = unsafe extern "C" fn(*mut c_void, u32, u32, *mut Param) -> u32;

struct Entries {
    create: CreateFn,
    destroy: DestroyFn,
    open: OpenFn,
    close: CloseFn,
    invoke: InvokeFn,
}

/// Looks up `name` in the library `lib`.
fn sym(lib: *mut c_void, name: &str) -> Option<*mut c_void> {
    let c = CString::new(name).ok()?;
    // SAFETY: `lib` is a handle from `dlopen` that is never closed; `c` is
    // a NUL-terminated string that outlives the call.
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn die(msg: &str) -> ! {
    eprintln!("teeheap TA process: {msg}");
    std::process::exit(2)
}

/// Runs the TA process: `ta` is the shared object, `chan` (standard input)
/// the socket to the secure world. Never returns.
pub fn run(ta: &std::path::Path) -> ! {
    // SAFETY: fd 0 is the socket the secure world gave us as standard input;
    // nothing else in this process owns it.
    let chan = Channel::from_fd(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(0) });
    let Some(path) = ta.to_str().and_then(|p| CString::new(p).ok()) else { die("bad TA path") };
    // SAFETY: `path` is NUL-terminated; loading runs the object's
    // constructors, which is what loading a TA means.
    let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        // SAFETY: dlerror returns a thread-local string or NULL.
        let err = unsafe { libc::dlerror() };
        let text = if err.is_null() {
            "unknown".to_owned()
        } else {
            // SAFETY: non-NULL dlerror results are NUL-terminated strings.
            unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
        };
        die(&format!("cannot load {}: {text}", ta.display()));
    }
    let get = |n: &str| sym(lib, n).unwrap_or_else(|| die(&format!("{} has no {n}", ta.display())));
    // SAFETY: the five entry points have the prototypes of tee_ta_api.h,
    // which the TA was compiled against; a symbol is a function address.
    let entries = unsafe {
        Entries {
            create: std::mem::transmute::<*mut c_void, CreateFn>(get("TA_CreateEntryPoint")),
            destroy: std::mem::transmute::<*mut c_void, DestroyFn>(get("TA_DestroyEntryPoint")),
            open: std::mem::transmute::<*mut c_void, OpenFn>(get("TA_OpenSessionEntryPoint")),
            close: std::mem::transmute::<*mut c_void, CloseFn>(get("TA_CloseSessionEntryPoint")),
            invoke: std::mem::transmute::<*mut c_void, InvokeFn>(get("TA_InvokeCommandEntryPoint")),
        }
    };
    let uuid_p = get("teeheap_ta_uuid");
    let flags_p = get("teeheap_ta_flags");
    // SAFETY: the dev kit's header file defines `teeheap_ta_uuid` as a
    // TEE_UUID and `teeheap_ta_flags` as a uint32_t.
    let (uuid, flags) = unsafe {
        (crate::api::uuid_bytes(&*uuid_p.cast::<crate::api::TeeUuid>()), std::ptr::read(flags_p.cast::<u32>()))
    };

    // SAFETY: `lib` stays loaded for the life of the process.
    unsafe { crate::property::load(lib, uuid, flags) };
    let Ok(api_chan) = chan.try_clone() else { die("cannot keep the socket") };
    *STATE.lock().recover() = Some(State::new(api_chan));
    if let Err(e) = sandbox::enter() {
        die(&format!("cannot enter the sandbox: {e}"));
    }
    // SAFETY: the TA's own entry point, called once, before any other.
    let ret = unsafe { (entries.create)() };
    crate::property::created();
    if chan.send(&Up::Hello { uuid, flags, ret }.encode(), &[]).is_err() || ret != 0 {
        std::process::exit(0);
    }
    serve(&chan, &entries)
}

/// Maps the windows of `params` (their descriptors in `fds`, in order) and
/// builds the TA's parameter array.
fn map_params(params: &[WireParam; NUM_PARAMS], fds: Vec<OwnedFd>) -> Result<([Param; NUM_PARAMS], Vec<Window>), u32> {
    let mut out = [Param::default(); NUM_PARAMS];
    let mut windows = Vec::new();
    let mut fds = fds.into_iter();
    for (i, p) in params.iter().enumerate() {
        if ptype::is_value(p.ptype) {
            out[i] = Param::value(p.a as u32, p.b as u32);
        } else if p.has_window() {
            let fd = fds.next().ok_or(TEE_ERROR_BAD_PARAMETERS)?;
            let writable = p.ptype != ptype::MEMREF_INPUT;
            let len = (p.page_offset + p.size).next_multiple_of(4096) as usize;
            let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
            // SAFETY: a fresh shared mapping at an address the kernel picks;
            // it aliases no Rust object and is unmapped by `Window::drop`.
            let base = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    MapFlags::SHARED | MapFlags::POPULATE,
                    &fd,
                    p.file_offset,
                )
            }
            .map_err(|_| TEE_ERROR_GENERIC)?;
            drop(fd);
            let w = Window {
                base: base as usize,
                len,
                offset: p.page_offset as usize,
                size: p.size as usize,
                writable,
                secure: p.a == 1,
                index: i,
            };
            out[i] = Param::memref(w.ptr(), w.size);
            windows.push(w);
        } else if ptype::is_memref(p.ptype) {
            out[i] = Param::memref(std::ptr::null_mut(), 0);
        }
    }
    Ok((out, windows))
}

fn types_of(params: &[WireParam; NUM_PARAMS]) -> u32 {
    params.iter().enumerate().fold(0, |t, (i, p)| t | ((p.ptype & 0xf) << (4 * i)))
}

/// Output values and sizes of `out` for the params `inp`.
fn results(inp: &[WireParam; NUM_PARAMS], out: &[Param; NUM_PARAMS]) -> [WireParam; NUM_PARAMS] {
    let mut r = *inp;
    for (i, p) in r.iter_mut().enumerate() {
        if ptype::is_value(p.ptype) {
            let (a, b) = out[i].get_value();
            (p.a, p.b) = (u64::from(a), u64::from(b));
        } else if ptype::is_memref(p.ptype) {
            p.size = out[i].get_memref().1 as u64;
        }
    }
    r
}

fn set_windows(w: Vec<Window>) -> Vec<Window> {
    let mut g = STATE.lock().recover();
    match g.as_mut() {
        Some(s) => std::mem::replace(&mut s.windows, w),
        None => Vec::new(),
    }
}

fn serve(chan: &Channel, e: &Entries) -> ! {
    // Each open session's context, as its open entry point returned it.
    let mut sessions: std::collections::BTreeMap<u32, *mut c_void> = std::collections::BTreeMap::new();
    loop {
        let msg = match chan.recv(None) {
            Ok(Some((b, fds))) => Down::decode(&b).map(|d| (d, fds)),
            _ => std::process::exit(0),
        };
        let (ret, params) = match msg {
            Err(_) => (TEE_ERROR_BAD_FORMAT, [WireParam::default(); NUM_PARAMS]),
            Ok((Down::Destroy, _)) => {
                // SAFETY: the TA's own entry point; the last call.
                unsafe { (e.destroy)() };
                let _ = chan.send(&Up::Done { ret: 0, params: [WireParam::default(); NUM_PARAMS] }.encode(), &[]);
                std::process::exit(0);
            }
            Ok((Down::Close { session }, _)) => {
                if let Some(ctx) = sessions.remove(&session) {
                    // SAFETY: the TA's close entry point with the context its
                    // open returned, once per opened session.
                    unsafe { (e.close)(ctx) };
                }
                (0, [WireParam::default(); NUM_PARAMS])
            }
            Ok((Down::Reply { .. }, _)) => (TEE_ERROR_BAD_FORMAT, [WireParam::default(); NUM_PARAMS]),
            Ok((Down::Open { session, params }, fds)) => {
                let mut ctx: *mut c_void = std::ptr::null_mut();
                let r = call(&params, fds, |types, p| {
                    // SAFETY: the TA's open entry point with a 4-element
                    // array and a place for its session context.
                    unsafe { (e.open)(types, p, &mut ctx) }
                });
                if r.0 == 0 {
                    sessions.insert(session, ctx);
                }
                r
            }
            Ok((Down::Invoke { session, cmd, params }, fds)) => match sessions.get(&session).copied() {
                None => (TEE_ERROR_BAD_PARAMETERS, params),
                Some(ctx) => call(&params, fds, |types, p| {
                    // SAFETY: the TA's invoke entry point with the session's
                    // context and a 4-element array.
                    unsafe { (e.invoke)(ctx, cmd, types, p) }
                }),
            },
        };
        if chan.send(&Up::Done { ret, params }.encode(), &[]).is_err() {
            std::process::exit(0);
        }
    }
}

fn call(
    params: &[WireParam; NUM_PARAMS],
    fds: Vec<OwnedFd>,
    f: impl FnOnce(u32, *mut Param) -> u32,
) -> (u32, [WireParam; NUM_PARAMS]) {
    let (mut p, windows) = match map_params(params, fds) {
        Ok(x) => x,
        Err(r) => return (r, *params),
    };
    set_windows(windows);
    crate::api::reset_cancel_mask();
    let ret = f(types_of(params), p.as_mut_ptr());
    drop(set_windows(Vec::new()));
    (ret, results(params, &p))
}
