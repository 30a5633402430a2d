//! The GP TEE Internal Core API functions a host-built TA calls, exported
//! from the TA process with C linkage and the specification's names (the
//! prototypes are in the dev kit's headers, `include/`).
//!
//! Pointers handed in by the TA are the TA's own: the API trusts them as
//! OP-TEE's libutee does (a TA can only corrupt its own process).

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::time::Duration;
use teeheap_sync::Recover;

use crate::wire::{Channel, Down, NUM_PARAMS, Up, WireParam, ptype};

/// `TEE_SUCCESS`.
pub const TEE_SUCCESS: u32 = 0;
/// `TEE_ERROR_GENERIC`.
pub const TEE_ERROR_GENERIC: u32 = 0xffff_0000;
/// `TEE_ERROR_ACCESS_DENIED`.
pub const TEE_ERROR_ACCESS_DENIED: u32 = 0xffff_0001;
/// `TEE_ERROR_CANCEL`.
pub const TEE_ERROR_CANCEL: u32 = 0xffff_0002;
/// `TEE_ERROR_BAD_FORMAT`.
pub const TEE_ERROR_BAD_FORMAT: u32 = 0xffff_0005;
/// `TEE_ERROR_BAD_PARAMETERS`.
pub const TEE_ERROR_BAD_PARAMETERS: u32 = 0xffff_0006;
/// `TEE_ERROR_NOT_SUPPORTED`.
pub const TEE_ERROR_NOT_SUPPORTED: u32 = 0xffff_000a;
/// `TEE_ERROR_COMMUNICATION`.
pub const TEE_ERROR_COMMUNICATION: u32 = 0xffff_000e;
/// `TEE_ERROR_OUT_OF_MEMORY`.
pub const TEE_ERROR_OUT_OF_MEMORY: u32 = 0xffff_000c;
/// `TEE_ERROR_TARGET_DEAD`.
pub const TEE_ERROR_TARGET_DEAD: u32 = 0xffff_3024;
/// `TEE_ORIGIN_TEE`.
pub const TEE_ORIGIN_TEE: u32 = 3;
/// `TEE_ORIGIN_TRUSTED_APP`.
pub const TEE_ORIGIN_TRUSTED_APP: u32 = 4;

const ACCESS_WRITE: u32 = 0x2;
const ACCESS_NONSECURE: u32 = 0x1000_0000;
const ACCESS_SECURE: u32 = 0x2000_0000;
const MALLOC_NO_FILL: u32 = 0x1;

/// `TEE_Param` (a union of a memref and a value).
#[repr(C)]
#[derive(Clone, Copy)]
pub union Param {
    memref: Memref,
    value: Value,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Memref {
    buffer: *mut c_void,
    size: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Value {
    a: u32,
    b: u32,
}

impl Default for Param {
    fn default() -> Self {
        Param { memref: Memref { buffer: std::ptr::null_mut(), size: 0 } }
    }
}

impl Param {
    pub(crate) fn value(a: u32, b: u32) -> Param {
        let mut p = Param::default();
        p.value = Value { a, b };
        p
    }

    pub(crate) fn memref(buffer: *mut c_void, size: usize) -> Param {
        Param { memref: Memref { buffer, size } }
    }

    pub(crate) fn get_value(&self) -> (u32, u32) {
        // SAFETY: every bit pattern is a valid `Value`; the union is at
        // least as large and fully initialised by its constructors.
        let v = unsafe { self.value };
        (v.a, v.b)
    }

    pub(crate) fn get_memref(&self) -> (*mut c_void, usize) {
        // SAFETY: as in `get_value`: plain integers and a raw pointer.
        let m = unsafe { self.memref };
        (m.buffer, m.size)
    }
}

/// A memref window mapped for the current call.
#[derive(Debug)]
pub(crate) struct Window {
    pub(crate) base: usize,
    pub(crate) len: usize,
    pub(crate) offset: usize,
    pub(crate) size: usize,
    pub(crate) writable: bool,
    pub(crate) secure: bool,
    pub(crate) index: usize,
}

impl Window {
    pub(crate) fn ptr(&self) -> *mut c_void {
        (self.base + self.offset) as *mut c_void
    }

    /// Whether `[p, p + n)` lies in the memref.
    fn holds(&self, p: usize, n: usize) -> bool {
        let start = self.base + self.offset;
        p >= start && n <= self.size && p - start <= self.size - n
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` is the mapping made for this window; the call
        // that used it has returned.
        let _ = unsafe { rustix::mm::munmap(self.base as *mut c_void, self.len) };
    }
}

/// The process-wide state the GP API functions use (set up by the runner
/// before the TA's first entry point).
pub(crate) static STATE: std::sync::Mutex<Option<State>> = std::sync::Mutex::new(None);

/// What the API functions share.
#[derive(Debug)]
pub(crate) struct State {
    chan: Channel,
    pub(crate) windows: Vec<Window>,
    heap: BTreeMap<usize, usize>,
    cancel_masked: bool,
}

impl State {
    pub(crate) fn new(chan: Channel) -> State {
        State { chan, windows: Vec::new(), heap: BTreeMap::new(), cancel_masked: true }
    }
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    STATE.lock().recover().as_mut().map(f)
}

/// Cancellation is masked when an entry point is called.
pub(crate) fn reset_cancel_mask() {
    with(|s| s.cancel_masked = true);
}

/// Sends `up` and waits for its [`Down::Reply`].
pub(crate) fn ask(up: &Up) -> Option<(u32, u32, u32, [WireParam; NUM_PARAMS])> {
    let g = STATE.lock().recover();
    let chan = &g.as_ref()?.chan;
    chan.send(&up.encode(), &[]).ok()?;
    match chan.recv(None) {
        Ok(Some((b, _))) => match Down::decode(&b) {
            Ok(Down::Reply { ret, origin, handle, params }) => Some((ret, origin, handle, params)),
            _ => None,
        },
        _ => None,
    }
}

fn send(up: &Up) {
    with(|s| s.chan.send(&up.encode(), &[]));
}

/// `TEE_Malloc`: zero-filled unless `hint` has `TEE_MALLOC_NO_FILL`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_Malloc(size: usize, hint: u32) -> *mut c_void {
    let n = size.max(1);
    // SAFETY: plain C allocations, freed by TEE_Free.
    let p = unsafe { if hint & MALLOC_NO_FILL != 0 { libc::malloc(n) } else { libc::calloc(1, n) } };
    if !p.is_null() {
        with(|s| s.heap.insert(p as usize, n));
    }
    p
}

/// `TEE_Realloc`.
///
/// # Safety
/// `buffer` is NULL or from `TEE_Malloc`/`TEE_Realloc` and not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_Realloc(buffer: *mut c_void, size: usize) -> *mut c_void {
    let n = size.max(1);
    // SAFETY: the caller's contract: `buffer` is ours or NULL.
    let p = unsafe { libc::realloc(buffer, n) };
    if !p.is_null() {
        with(|s| {
            s.heap.remove(&(buffer as usize));
            s.heap.insert(p as usize, n);
        });
    }
    p
}

/// `TEE_Free`.
///
/// # Safety
/// `buffer` is NULL or from `TEE_Malloc`/`TEE_Realloc` and not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_Free(buffer: *mut c_void) {
    if !buffer.is_null() {
        with(|s| s.heap.remove(&(buffer as usize)));
        // SAFETY: the caller's contract.
        unsafe { libc::free(buffer) };
    }
}

/// `TEE_MemMove` (overlap allowed).
///
/// # Safety
/// Both ranges are valid for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MemMove(dest: *mut c_void, src: *const c_void, size: usize) {
    if size > 0 {
        // SAFETY: the caller's contract; `copy` allows overlap.
        unsafe { std::ptr::copy(src.cast::<u8>(), dest.cast::<u8>(), size) };
    }
}

/// `TEE_MemCompare`.
///
/// # Safety
/// Both ranges are valid for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MemCompare(a: *const c_void, b: *const c_void, size: usize) -> i32 {
    if size == 0 {
        return 0;
    }
    // SAFETY: the caller's contract.
    let (x, y) =
        unsafe { (std::slice::from_raw_parts(a.cast::<u8>(), size), std::slice::from_raw_parts(b.cast::<u8>(), size)) };
    x.cmp(y) as i32
}

/// `TEE_MemFill`.
///
/// # Safety
/// `buffer` is valid for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MemFill(buffer: *mut c_void, x: u32, size: usize) {
    if size > 0 {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_bytes(buffer.cast::<u8>(), x as u8, size) };
    }
}

/// `TEE_CheckMemoryAccessRights`: answers from what the process knows of
/// the range: a memref window of this call (secure or not, writable or
/// not), or TA-private heap memory (secure, read-write); size 0 succeeds.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CheckMemoryAccessRights(flags: u32, buffer: *mut c_void, size: usize) -> u32 {
    // As OP-TEE's libutee: an empty range is always accessible.
    if size == 0 {
        return TEE_SUCCESS;
    }
    let p = buffer as usize;
    let verdict = with(|s| {
        let (secure, writable) = if let Some(w) = s.windows.iter().find(|w| w.holds(p, size)) {
            (w.secure, w.writable)
        } else if s.heap.range(..=p).next_back().is_some_and(|(&b, &n)| p - b <= n && size <= n - (p - b)) {
            (true, true)
        } else {
            return TEE_ERROR_ACCESS_DENIED;
        };
        // Reading is always allowed: every window and heap block is readable.
        let want_write = flags & ACCESS_WRITE != 0;
        let want_secure = flags & ACCESS_SECURE != 0;
        let want_nonsecure = flags & ACCESS_NONSECURE != 0;
        let ok = (!want_write || writable) && (!want_secure || secure) && (!want_nonsecure || !secure);
        if ok { TEE_SUCCESS } else { TEE_ERROR_ACCESS_DENIED }
    });
    verdict.unwrap_or(TEE_ERROR_ACCESS_DENIED)
}

/// `TEE_CacheFlush` (OP-TEE extension): memory is coherent here.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CacheFlush(_buf: *mut c_char, _len: usize) -> u32 {
    TEE_SUCCESS
}

/// `TEE_CacheClean` (OP-TEE extension).
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CacheClean(_buf: *mut c_char, _len: usize) -> u32 {
    TEE_SUCCESS
}

/// `TEE_CacheInvalidate` (OP-TEE extension).
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CacheInvalidate(_buf: *mut c_char, _len: usize) -> u32 {
    TEE_SUCCESS
}

/// `TEE_Panic`: the secure world learns the code; the process ends.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_Panic(code: u32) -> ! {
    send(&Up::Panic { code });
    std::process::exit(101)
}

/// The trace sink behind `EMSG`/`IMSG`/`DMSG`/`FMSG` (trace.h formats).
///
/// # Safety
/// `func` and `msg` are NUL-terminated strings or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn teeheap_trace(level: i32, func: *const c_char, line: i32, msg: *const c_char) {
    let s = |p: *const c_char| {
        // SAFETY: the caller's contract.
        if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() }
    };
    send(&Up::Log { level: level as u32, text: format!("{}:{line} {}", s(func), s(msg)) });
}

/// `TEE_UUID`.
#[repr(C)]
pub struct TeeUuid {
    time_low: u32,
    time_mid: u16,
    time_hi_and_version: u16,
    clock_seq_and_node: [u8; 8],
}

/// The 16 bytes of `d` in RFC 4122 (big-endian) order.
pub(crate) fn uuid_bytes(d: &TeeUuid) -> [u8; 16] {
    let mut uuid = [0u8; 16];
    uuid[..4].copy_from_slice(&d.time_low.to_be_bytes());
    uuid[4..6].copy_from_slice(&d.time_mid.to_be_bytes());
    uuid[6..8].copy_from_slice(&d.time_hi_and_version.to_be_bytes());
    uuid[8..].copy_from_slice(&d.clock_seq_and_node);
    uuid
}

fn to_wire(types: u32, params: *mut Param) -> Result<[WireParam; NUM_PARAMS], u32> {
    let mut out = [WireParam::default(); NUM_PARAMS];
    for (i, w) in out.iter_mut().enumerate() {
        let t = (types >> (4 * i)) & 0xf;
        w.ptype = t;
        if t == ptype::NONE {
            continue;
        }
        if params.is_null() {
            return Err(TEE_ERROR_BAD_PARAMETERS);
        }
        // SAFETY: GP: a non-NULL params array has TEE_NUM_PARAMS entries.
        let p = unsafe { *params.add(i) };
        if ptype::is_value(t) {
            let (a, b) = p.get_value();
            (w.a, w.b) = (u64::from(a), u64::from(b));
        } else if ptype::is_memref(t) {
            let (buf, size) = p.get_memref();
            w.size = size as u64;
            if size == 0 {
                continue;
            }
            let found = with(|s| {
                s.windows
                    .iter()
                    .find(|x| x.holds(buf as usize, size))
                    .map(|x| (x.index, buf as usize - (x.base + x.offset)))
            });
            let Some(Some((index, off))) = found else {
                // Memory of the TA's own (heap, stack) is not forwarded yet.
                return Err(TEE_ERROR_NOT_SUPPORTED);
            };
            (w.page_offset, w.file_offset) = (index as u64, off as u64);
        } else {
            return Err(TEE_ERROR_BAD_PARAMETERS);
        }
    }
    Ok(out)
}

fn from_wire(types: u32, params: *mut Param, back: &[WireParam; NUM_PARAMS]) {
    if params.is_null() {
        return;
    }
    for (i, w) in back.iter().enumerate() {
        let t = (types >> (4 * i)) & 0xf;
        // SAFETY: as in `to_wire`.
        let p = unsafe { &mut *params.add(i) };
        if t == ptype::VALUE_OUTPUT || t == ptype::VALUE_INOUT {
            *p = Param::value(w.a as u32, w.b as u32);
        } else if t == ptype::MEMREF_OUTPUT || t == ptype::MEMREF_INOUT {
            *p = Param::memref(p.get_memref().0, w.size as usize);
        }
    }
}

fn set_origin(origin: *mut u32, v: u32) {
    if !origin.is_null() {
        // SAFETY: GP: a non-NULL returnOrigin points to a uint32_t.
        unsafe { *origin = v };
    }
}

/// `TEE_OpenTASession`. Memrefs must lie in this call's memrefs.
///
/// # Safety
/// GP's contract: valid pointers or NULL where allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_OpenTASession(
    dest: *const TeeUuid,
    _timeout: u32,
    types: u32,
    params: *mut Param,
    session: *mut usize,
    origin: *mut u32,
) -> u32 {
    if dest.is_null() || session.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: checked non-NULL; GP's contract.
    let uuid = uuid_bytes(unsafe { &*dest });
    let w = match to_wire(types, params) {
        Ok(w) => w,
        Err(e) => {
            set_origin(origin, TEE_ORIGIN_TEE);
            return e;
        }
    };
    let Some((ret, org, handle, back)) = ask(&Up::OpenTa { uuid, params: w }) else {
        set_origin(origin, TEE_ORIGIN_TEE);
        return TEE_ERROR_COMMUNICATION;
    };
    from_wire(types, params, &back);
    set_origin(origin, org);
    // SAFETY: checked non-NULL.
    unsafe { *session = if ret == TEE_SUCCESS { handle as usize } else { 0 } };
    ret
}

/// `TEE_InvokeTACommand`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_InvokeTACommand(
    session: usize,
    _timeout: u32,
    cmd: u32,
    types: u32,
    params: *mut Param,
    origin: *mut u32,
) -> u32 {
    let w = match to_wire(types, params) {
        Ok(w) => w,
        Err(e) => {
            set_origin(origin, TEE_ORIGIN_TEE);
            return e;
        }
    };
    let Some((ret, org, _, back)) = ask(&Up::InvokeTa { session: session as u32, cmd, params: w }) else {
        set_origin(origin, TEE_ORIGIN_TEE);
        TEE_Panic(TEE_ERROR_COMMUNICATION);
    };
    from_wire(types, params, &back);
    set_origin(origin, org);
    // As OP-TEE's libutee: an error not from the called TA other than
    // OUT_OF_MEMORY and TARGET_DEAD panics the caller.
    if org != TEE_ORIGIN_TRUSTED_APP && !matches!(ret, TEE_SUCCESS | TEE_ERROR_OUT_OF_MEMORY | TEE_ERROR_TARGET_DEAD) {
        TEE_Panic(ret);
    }
    ret
}

/// `TEE_CloseTASession`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CloseTASession(session: usize) {
    if session != 0 {
        let _ = ask(&Up::CloseTa { session: session as u32 });
    }
}

/// `TEE_GetCancellationFlag`: false while cancellation is masked.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_GetCancellationFlag() -> bool {
    if with(|s| s.cancel_masked).unwrap_or(true) {
        return false;
    }
    ask(&Up::IsCancelled).is_some_and(|(_, _, flag, _)| flag != 0)
}

/// `TEE_UnmaskCancellation`: returns whether it was masked.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_UnmaskCancellation() -> bool {
    with(|s| std::mem::replace(&mut s.cancel_masked, false)).unwrap_or(true)
}

/// `TEE_MaskCancellation`: returns whether it was masked.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_MaskCancellation() -> bool {
    with(|s| std::mem::replace(&mut s.cancel_masked, true)).unwrap_or(true)
}

/// `TEE_Wait`: sleeps `ms` milliseconds (`TEE_TIMEOUT_INFINITE` for ever);
/// `TEE_ERROR_CANCEL` as soon as an unmasked cancellation is seen.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_Wait(ms: u32) -> u32 {
    // How often a wait asks for the cancellation flag: a request to cancel
    // ends the wait within about this (plus the round trip).
    const WAIT_POLL: Duration = Duration::from_millis(2);
    let end = (ms != u32::MAX).then(|| std::time::Instant::now() + Duration::from_millis(u64::from(ms)));
    loop {
        if TEE_GetCancellationFlag() {
            return TEE_ERROR_CANCEL;
        }
        let left = end.map(|e| e.saturating_duration_since(std::time::Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return TEE_SUCCESS;
        }
        std::thread::sleep(left.map_or(WAIT_POLL, |l| l.min(WAIT_POLL)));
    }
}

/// `TEE_Time`.
#[repr(C)]
pub struct TeeTime {
    seconds: u32,
    millis: u32,
}

fn put_time(t: *mut TeeTime, clock: rustix::time::ClockId) {
    let now = rustix::time::clock_gettime(clock);
    if !t.is_null() {
        // SAFETY: GP: `time` points to a TEE_Time.
        unsafe { *t = TeeTime { seconds: now.tv_sec as u32, millis: (now.tv_nsec / 1_000_000) as u32 } };
    }
}

/// `TEE_GetSystemTime` (monotonic, since an arbitrary point).
#[unsafe(no_mangle)]
pub extern "C" fn TEE_GetSystemTime(time: *mut TeeTime) {
    put_time(time, rustix::time::ClockId::Monotonic);
}

/// `TEE_GetREETime` (the host's wall clock).
#[unsafe(no_mangle)]
pub extern "C" fn TEE_GetREETime(time: *mut TeeTime) {
    put_time(time, rustix::time::ClockId::Realtime);
}

/// `TEE_GenerateRandom` (the host's `getrandom`).
///
/// # Safety
/// `buf` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GenerateRandom(buf: *mut c_void, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut done = 0;
    while done < len {
        match rustix::rand::getrandom(&mut out[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(_) => TEE_Panic(TEE_ERROR_GENERIC),
        }
    }
}

/// Every exported function, so that a binary linking this crate keeps
/// them for the TAs it loads (see [`crate::exports`]).
pub(crate) const EXPORTS: &[*const ()] = &[
    TEE_Malloc as *const (),
    TEE_Realloc as *const (),
    TEE_Free as *const (),
    TEE_MemMove as *const (),
    TEE_MemCompare as *const (),
    TEE_MemFill as *const (),
    TEE_CheckMemoryAccessRights as *const (),
    TEE_CacheFlush as *const (),
    TEE_CacheClean as *const (),
    TEE_CacheInvalidate as *const (),
    TEE_Panic as *const (),
    teeheap_trace as *const (),
    TEE_OpenTASession as *const (),
    TEE_InvokeTACommand as *const (),
    TEE_CloseTASession as *const (),
    TEE_GetCancellationFlag as *const (),
    TEE_UnmaskCancellation as *const (),
    TEE_MaskCancellation as *const (),
    TEE_Wait as *const (),
    TEE_GetSystemTime as *const (),
    TEE_GetREETime as *const (),
    TEE_GenerateRandom as *const (),
];
