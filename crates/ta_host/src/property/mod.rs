//! GP properties (`TEE_GetPropertyAs*`, property enumerators) of the three
//! sets: the current TA (its `user_ta_header_defines.h`: flags, sizes,
//! `TA_VERSION`, `TA_DESCRIPTION`, `TA_CURRENT_TA_EXT_PROPERTIES`, read
//! from the `.ta` once at load), the current client (its identity, asked
//! of the secure world during the call, so it is the caller of that call)
//! and the TEE implementation (fixed).
//!
//! Handles: the `TEE_PROPSET_*` constants, or enumerators from one table;
//! any other value panics the TA. Names and strings read from the TA are
//! bounded ([`MAX_NAME`], [`MAX_TEXT`]) before use.

mod value;

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void};
use std::sync::Mutex;
use teeheap_sync::Recover;

use crate::api::{TEE_ERROR_BAD_FORMAT, TEE_ERROR_BAD_PARAMETERS, TEE_Panic, TEE_SUCCESS};
use crate::wire::Up;
pub(crate) use value::Value;

/// `TEE_ERROR_ITEM_NOT_FOUND`, `TEE_ERROR_SHORT_BUFFER`.
const ITEM_NOT_FOUND: u32 = 0xFFFF_0008;
const SHORT_BUFFER: u32 = 0xFFFF_0010;

/// `TEE_PROPSET_TEE_IMPLEMENTATION`, `_CURRENT_CLIENT`, `_CURRENT_TA`.
const PROPSET_TEE: usize = 0xFFFF_FFFD;
const PROPSET_CLIENT: usize = 0xFFFF_FFFE;
const PROPSET_TA: usize = 0xFFFF_FFFF;

/// The longest property name looked up (longer: not found).
const MAX_NAME: usize = 256;
/// The longest string or base64 text read from a TA's header.
const MAX_TEXT: usize = 64 * 1024;
/// The most entries read from a TA's property table.
const MAX_PROPS: usize = 1024;

/// `TA_FLAG_SINGLE_INSTANCE`, `_MULTI_SESSION`, `_INSTANCE_KEEP_ALIVE`.
const FLAG_SINGLE_INSTANCE: u32 = 1 << 2;
const FLAG_MULTI_SESSION: u32 = 1 << 3;
const FLAG_KEEP_ALIVE: u32 = 1 << 4;

/// The TEE's device ID: one constant for every teeheap (not per machine).
const DEVICE_ID: [u8; 16] =
    [0x74, 0x65, 0x65, 0x68, 0x65, 0x61, 0x70, 0x00, 0x80, 0x00, 0x74, 0x65, 0x65, 0x68, 0x65, 0x61];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Ta,
    Client,
    Tee,
}

impl Set {
    fn of(h: usize) -> Option<Set> {
        match h {
            PROPSET_TA => Some(Set::Ta),
            PROPSET_CLIENT => Some(Set::Client),
            PROPSET_TEE => Some(Set::Tee),
            _ => None,
        }
    }
}

/// An enumerator: not started (`None`), or at `index` of a set.
#[derive(Clone, Copy, Default)]
struct Enumerator {
    at: Option<(Set, usize)>,
}

struct Props {
    ta: Vec<(String, Value)>,
    created: bool,
    enums: BTreeMap<usize, Enumerator>,
    next: usize,
}

static PROPS: Mutex<Props> = Mutex::new(Props { ta: Vec::new(), created: false, enums: BTreeMap::new(), next: 1 });

fn props() -> std::sync::MutexGuard<'static, Props> {
    PROPS.lock().recover()
}

/// The TEE implementation's properties.
fn tee_props() -> Vec<(&'static str, Value)> {
    let version = env!("CARGO_PKG_VERSION");
    let binary = version.split('.').take(3).fold(0u32, |v, p| (v << 8) | p.parse::<u32>().unwrap_or(0));
    vec![
        ("gpd.tee.apiversion", Value::Str("1.1".into())),
        (
            "gpd.tee.description",
            Value::Str(format!("teeheap {version}: a TEE emulated on the host, no hardware isolation")),
        ),
        ("gpd.tee.deviceID", Value::Uuid(DEVICE_ID)),
        ("gpd.tee.systemTime.protectionLevel", Value::U32(100)),
        ("gpd.tee.cryptography.ecc", Value::Bool(false)),
        ("gpd.tee.trustedos.implementation.version", Value::Str(format!("teeheap {version}"))),
        ("gpd.tee.trustedos.implementation.binaryversion", Value::U32(binary)),
        ("gpd.tee.trustedos.manufacturer", Value::Str("teeheap".into())),
        ("gpd.tee.firmware.implementation.version", Value::Str(format!("teeheap {version}"))),
        ("gpd.tee.firmware.implementation.binaryversion", Value::U32(binary)),
        ("gpd.tee.firmware.manufacturer", Value::Str("teeheap".into())),
    ]
}

const CLIENT_NAMES: [&str; 2] = ["gpd.client.identity", "gpd.client.endian"];

/// The current client's property `name` (asked of the secure world).
fn client_value(name: &str) -> Option<Value> {
    match name {
        "gpd.client.identity" => {
            let (_, _, login, p) = crate::api::ask(&Up::ClientIdentity)?;
            let mut uuid = [0u8; 16];
            uuid[..8].copy_from_slice(&p[0].a.to_be_bytes());
            uuid[8..].copy_from_slice(&p[0].b.to_be_bytes());
            Some(Value::Identity(login, uuid))
        }
        "gpd.client.endian" => Some(Value::U32(0)),
        _ => None,
    }
}

/// The names of `set`, in order (the client's only once the TA is created:
/// `TA_CreateEntryPoint` has no client).
fn names(p: &Props, set: Set) -> Vec<String> {
    match set {
        Set::Ta => p.ta.iter().map(|(n, _)| n.clone()).collect(),
        Set::Client if p.created => CLIENT_NAMES.iter().map(|n| n.to_string()).collect(),
        Set::Client => Vec::new(),
        Set::Tee => tee_props().into_iter().map(|(n, _)| n.to_owned()).collect(),
    }
}

/// Property `name` of `set`.
fn value(set: Set, name: &str) -> Option<Value> {
    match set {
        Set::Ta => props().ta.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
        Set::Client => {
            if !props().created {
                return None;
            }
            client_value(name)
        }
        Set::Tee => tee_props().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v),
    }
}

/// Up to `max` bytes of the NUL-terminated string at `p` (`None` when
/// longer or not UTF-8).
///
/// # Safety
/// `p` is a NUL-terminated string (or one at least `max` bytes long).
unsafe fn bounded_str(p: *const c_char, max: usize) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut bytes = Vec::new();
    for i in 0..=max {
        // SAFETY: the caller's contract: every byte up to the NUL (or `max`)
        // is readable.
        let b = unsafe { *p.add(i) } as u8;
        if b == 0 {
            return String::from_utf8(bytes).ok();
        }
        bytes.push(b);
    }
    None
}

/// The property a getter names: `handle` is a set (then `name` is read) or
/// a started enumerator (then `name` is ignored).
///
/// # Safety
/// `name` is a NUL-terminated string when `handle` is a set.
unsafe fn lookup(handle: usize, name: *const c_char) -> Result<Value, u32> {
    if let Some(set) = Set::of(handle) {
        if name.is_null() {
            TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
        }
        // SAFETY: the caller's contract.
        let Some(n) = (unsafe { bounded_str(name, MAX_NAME) }) else { return Err(ITEM_NOT_FOUND) };
        return value(set, &n).ok_or(ITEM_NOT_FOUND);
    }
    let (set, name) = {
        let p = props();
        let e = p.enums.get(&handle).copied().unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS));
        let Some((set, i)) = e.at else { return Err(ITEM_NOT_FOUND) };
        (set, names(&p, set).into_iter().nth(i).ok_or(ITEM_NOT_FOUND)?)
    };
    value(set, &name).ok_or(ITEM_NOT_FOUND)
}

/// Writes `bytes` (and a NUL when `nul`) into `buf` of `*len` bytes, or
/// `SHORT_BUFFER` with the size needed.
///
/// # Safety
/// `len` points to a `size_t`; `buf` is writable for `*len` bytes.
unsafe fn put_bytes(bytes: &[u8], nul: bool, buf: *mut c_void, len: *mut usize) -> u32 {
    if len.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let need = bytes.len() + usize::from(nul);
    // SAFETY: checked non-NULL; the caller's contract.
    let cap = unsafe { *len };
    // SAFETY: as above.
    unsafe { *len = need };
    if cap < need || (need > 0 && buf.is_null()) {
        return SHORT_BUFFER;
    }
    // SAFETY: `buf` is writable for `cap >= need` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        if nul {
            *buf.cast::<u8>().add(bytes.len()) = 0;
        }
    }
    TEE_SUCCESS
}

/// Writes a typed result through `out` (NULL panics).
///
/// # Safety
/// A non-NULL `out` points to a `T`.
unsafe fn put<T>(r: Result<Option<T>, u32>, out: *mut T) -> u32 {
    if out.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    match r {
        Ok(Some(v)) => {
            // SAFETY: checked non-NULL; the caller's contract.
            unsafe { out.write(v) };
            TEE_SUCCESS
        }
        Ok(None) => TEE_ERROR_BAD_FORMAT,
        Err(e) => e,
    }
}

/// `TEE_UUID` as the C side lays it out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUuid {
    time_low: u32,
    time_mid: u16,
    time_hi_and_version: u16,
    clock_seq_and_node: [u8; 8],
}

impl CUuid {
    fn of(u: [u8; 16]) -> CUuid {
        CUuid {
            time_low: u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
            time_mid: u16::from_be_bytes([u[4], u[5]]),
            time_hi_and_version: u16::from_be_bytes([u[6], u[7]]),
            clock_seq_and_node: [u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]],
        }
    }

    fn bytes(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[..4].copy_from_slice(&self.time_low.to_be_bytes());
        u[4..6].copy_from_slice(&self.time_mid.to_be_bytes());
        u[6..8].copy_from_slice(&self.time_hi_and_version.to_be_bytes());
        u[8..].copy_from_slice(&self.clock_seq_and_node);
        u
    }
}

/// `TEE_Identity`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CIdentity {
    login: u32,
    uuid: CUuid,
}

/// `TEE_GetPropertyAsString`: any property, as text (NUL-terminated;
/// `SHORT_BUFFER` with the size needed, NUL included).
///
/// # Safety
/// GP's contract for `name`, `buf` and `len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsString(
    handle: usize,
    name: *const c_char,
    buf: *mut c_char,
    len: *mut usize,
) -> u32 {
    // SAFETY: the caller's contract.
    match unsafe { lookup(handle, name) } {
        // SAFETY: the caller's contract.
        Ok(v) => unsafe { put_bytes(v.as_string().as_bytes(), true, buf.cast(), len) },
        Err(e) => e,
    }
}

/// `TEE_GetPropertyAsBool`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsBool(handle: usize, name: *const c_char, out: *mut bool) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { put(lookup(handle, name).map(|v| v.as_bool()), out) }
}

/// `TEE_GetPropertyAsU32`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsU32(handle: usize, name: *const c_char, out: *mut u32) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { put(lookup(handle, name).map(|v| v.as_u32()), out) }
}

/// `TEE_GetPropertyAsU64`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsU64(handle: usize, name: *const c_char, out: *mut u64) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { put(lookup(handle, name).map(|v| v.as_u64()), out) }
}

/// `TEE_GetPropertyAsUUID`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsUUID(handle: usize, name: *const c_char, out: *mut CUuid) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { put(lookup(handle, name).map(|v| v.as_uuid().map(CUuid::of)), out) }
}

/// `TEE_GetPropertyAsIdentity`.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsIdentity(handle: usize, name: *const c_char, out: *mut CIdentity) -> u32 {
    // SAFETY: the caller's contract.
    let r = unsafe { lookup(handle, name) }
        .map(|v| v.as_identity().map(|(login, u)| CIdentity { login, uuid: CUuid::of(u) }));
    // SAFETY: the caller's contract.
    unsafe { put(r, out) }
}

/// `TEE_GetPropertyAsBinaryBlock`: the bytes of a binary block (or of a
/// string holding base64); `SHORT_BUFFER` with the size needed.
///
/// # Safety
/// GP's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyAsBinaryBlock(
    handle: usize,
    name: *const c_char,
    buf: *mut c_void,
    len: *mut usize,
) -> u32 {
    // SAFETY: the caller's contract.
    match unsafe { lookup(handle, name) }.map(|v| v.as_binary()) {
        // SAFETY: the caller's contract.
        Ok(Some(b)) => unsafe { put_bytes(&b, false, buf, len) },
        Ok(None) => TEE_ERROR_BAD_FORMAT,
        Err(e) => e,
    }
}

/// `TEE_AllocatePropertyEnumerator`.
///
/// # Safety
/// `out` points to a `TEE_PropSetHandle`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AllocatePropertyEnumerator(out: *mut usize) -> u32 {
    if out.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let mut p = props();
    // Small multiples of 16: never a TEE_PROPSET_* value.
    let h = p.next << 4;
    p.next += 1;
    p.enums.insert(h, Enumerator::default());
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *out = h };
    TEE_SUCCESS
}

fn with_enum<T>(h: usize, f: impl FnOnce(&mut Enumerator) -> T) -> T {
    let mut p = props();
    f(p.enums.get_mut(&h).unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS)))
}

/// `TEE_FreePropertyEnumerator`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_FreePropertyEnumerator(h: usize) {
    if props().enums.remove(&h).is_none() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
}

/// `TEE_StartPropertyEnumerator`: at the first property of `set`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_StartPropertyEnumerator(h: usize, set: usize) {
    let set = Set::of(set).unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS));
    with_enum(h, |e| e.at = Some((set, 0)));
}

/// `TEE_ResetPropertyEnumerator`: back to not started.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_ResetPropertyEnumerator(h: usize) {
    with_enum(h, |e| e.at = None);
}

/// `TEE_GetPropertyName`: the current property's name (NUL-terminated);
/// `ITEM_NOT_FOUND` when not started or past the end.
///
/// # Safety
/// GP's contract for `buf` and `len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetPropertyName(h: usize, buf: *mut c_void, len: *mut usize) -> u32 {
    let name = {
        let p = props();
        let e = p.enums.get(&h).copied().unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS));
        e.at.and_then(|(set, i)| names(&p, set).into_iter().nth(i))
    };
    match name {
        // SAFETY: the caller's contract.
        Some(n) => unsafe { put_bytes(n.as_bytes(), true, buf, len) },
        None => ITEM_NOT_FOUND,
    }
}

/// `TEE_GetNextProperty`: `ITEM_NOT_FOUND` when not started or when there
/// is no next property.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_GetNextProperty(h: usize) -> u32 {
    let mut p = props();
    let e = p.enums.get(&h).copied().unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS));
    let Some((set, i)) = e.at else { return ITEM_NOT_FOUND };
    let n = names(&p, set).len();
    let next = (i + 1).min(n);
    if let Some(x) = p.enums.get_mut(&h) {
        x.at = Some((set, next));
    }
    if next < n { TEE_SUCCESS } else { ITEM_NOT_FOUND }
}

/// One entry of the dev kit's `teeheap_ta_props` (OP-TEE's
/// `struct user_ta_property`).
#[repr(C)]
struct UserTaProperty {
    name: *const c_char,
    ptype: u32,
    value: *const c_void,
}

/// Converts one header entry (`None` for an unknown type or a string
/// past [`MAX_TEXT`]).
///
/// # Safety
/// `p.value` points to a value of the type `p.ptype` says.
unsafe fn header_value(p: &UserTaProperty) -> Option<Value> {
    if p.value.is_null() {
        return None;
    }
    // SAFETY: the caller's contract, per type (OP-TEE's user_ta_prop_type).
    unsafe {
        Some(match p.ptype {
            0 => Value::Bool(*p.value.cast::<u8>() != 0),
            1 => Value::U32(p.value.cast::<u32>().read_unaligned()),
            2 => Value::Uuid(p.value.cast::<CUuid>().read_unaligned().bytes()),
            3 => {
                let id = p.value.cast::<CIdentity>().read_unaligned();
                Value::Identity(id.login, id.uuid.bytes())
            }
            4 => Value::Str(bounded_str(p.value.cast(), MAX_TEXT)?),
            5 => Value::Binary(bounded_str(p.value.cast(), MAX_TEXT)?),
            6 => Value::U64(p.value.cast::<u64>().read_unaligned()),
            _ => return None,
        })
    }
}

/// Reads the TA's properties from its header (`lib` is its `dlopen`
/// handle). A TA built with an older kit (no table) gets its flags as
/// properties. `gpd.ta.appID` is always there.
///
/// # Safety
/// `lib` is a live `dlopen` handle of a TA built with the dev kit.
pub(crate) unsafe fn load(lib: *mut c_void, uuid: [u8; 16], flags: u32) {
    let sym = |n: &std::ffi::CStr| {
        // SAFETY: `lib` is live; `n` is NUL-terminated.
        let p = unsafe { libc::dlsym(lib, n.as_ptr()) };
        (!p.is_null()).then_some(p)
    };
    let mut ta = vec![("gpd.ta.appID".to_owned(), Value::Uuid(uuid))];
    if let (Some(table), Some(count)) = (sym(c"teeheap_ta_props"), sym(c"teeheap_ta_num_props")) {
        // SAFETY: the dev kit defines the count as a `size_t`.
        let n = unsafe { count.cast::<usize>().read() }.min(MAX_PROPS);
        for i in 0..n {
            // SAFETY: the dev kit's table has `n` entries of this layout.
            let p = unsafe { &*table.cast::<UserTaProperty>().add(i) };
            // SAFETY: the TA's own header; names and values as declared.
            let (Some(name), Some(v)) = (unsafe { bounded_str(p.name, MAX_NAME) }, unsafe { header_value(p) }) else {
                continue;
            };
            if !ta.iter().any(|(n, _)| *n == name) {
                ta.push((name, v));
            }
        }
    } else {
        ta.push(("gpd.ta.singleInstance".into(), Value::Bool(flags & FLAG_SINGLE_INSTANCE != 0)));
        ta.push(("gpd.ta.multiSession".into(), Value::Bool(flags & FLAG_MULTI_SESSION != 0)));
        ta.push(("gpd.ta.instanceKeepAlive".into(), Value::Bool(flags & FLAG_KEEP_ALIVE != 0)));
    }
    props().ta = ta;
}

/// `TA_CreateEntryPoint` returned: client properties exist from now on.
pub(crate) fn created() {
    props().created = true;
}

/// Every exported function (see [`crate::exports`]).
pub(crate) const EXPORTS: &[*const ()] = &[
    TEE_GetPropertyAsString as *const (),
    TEE_GetPropertyAsBool as *const (),
    TEE_GetPropertyAsU32 as *const (),
    TEE_GetPropertyAsU64 as *const (),
    TEE_GetPropertyAsUUID as *const (),
    TEE_GetPropertyAsIdentity as *const (),
    TEE_GetPropertyAsBinaryBlock as *const (),
    TEE_AllocatePropertyEnumerator as *const (),
    TEE_FreePropertyEnumerator as *const (),
    TEE_StartPropertyEnumerator as *const (),
    TEE_ResetPropertyEnumerator as *const (),
    TEE_GetPropertyName as *const (),
    TEE_GetNextProperty as *const (),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_layout_round_trips() {
        let u = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        let c = CUuid::of(u);
        assert_eq!((c.time_low, c.time_mid, c.time_hi_and_version), (0x0102_0304, 0x0506, 0x0708));
        assert_eq!(c.bytes(), u);
        assert_eq!(std::mem::size_of::<CIdentity>(), 20);
        assert_eq!(std::mem::size_of::<UserTaProperty>(), 24);
    }

    #[test]
    fn tee_set_has_the_standard_names() {
        let names: Vec<&str> = tee_props().iter().map(|(n, _)| *n).collect();
        for n in ["gpd.tee.apiversion", "gpd.tee.description", "gpd.tee.deviceID"] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(matches!(value(Set::Tee, "gpd.tee.deviceID"), Some(Value::Uuid(DEVICE_ID))));
        assert_eq!(value(Set::Tee, "gpd.tee.nothing"), None);
        assert_eq!(value(Set::Client, "gpd.client.endian"), None, "no client before the TA is created");
    }
}
