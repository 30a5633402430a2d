//! The GP cryptographic operations and transient objects a host-built TA
//! calls (GP TEE Internal Core API §5 and §6, the names and values of
//! OP-TEE's `tee_api.h`/`tee_api_defines.h`), exported with C linkage.
//!
//! Handles are opaque numbers into one table per TA process; a handle that
//! is not in it (freed, made up, of the other kind) makes the TA panic, as
//! GP says, so the session's client sees `TEEC_ERROR_TARGET_DEAD`. Lengths
//! the TA passes are bounded before any slice is made of its memory; keys
//! are wiped when an object or operation is reset or freed ([`object`],
//! [`operation`]). The algorithms: AES-ECB/CBC without padding and AES-CTR
//! ([`modes`]), AES-GCM ([`gcm`]), SHA-256 and HMAC-SHA256 on RustCrypto.

mod gcm;
mod modes;
mod object;
mod operation;

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Mutex;
use teeheap_sync::Recover;
use zeroize::Zeroizing;

use crate::api::{TEE_ERROR_BAD_PARAMETERS, TEE_ERROR_NOT_SUPPORTED, TEE_Panic, TEE_SUCCESS};
use object::{ATTR_FLAG_VALUE, ATTR_SECRET_VALUE, HANDLE_FLAG_INITIALIZED, KeyType, Object, Refused, USAGE_ALL};
use operation::{Io, MAC_INVALID, Operation, Refusal, SHORT_BUFFER};

const OBJECT_TAG: usize = 1;
const OPERATION_TAG: usize = 2;

/// The TA's objects and operations by handle.
struct Table {
    objects: BTreeMap<usize, Object>,
    ops: BTreeMap<usize, Operation>,
    next: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table { objects: BTreeMap::new(), ops: BTreeMap::new(), next: 1 });

impl Table {
    fn handle(&mut self, tag: usize) -> usize {
        let h = (self.next << 2) | tag;
        self.next += 1;
        h
    }

    fn object(&mut self, h: usize) -> &mut Object {
        self.objects.get_mut(&h).unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS))
    }

    fn op(&mut self, h: usize) -> &mut Operation {
        self.ops.get_mut(&h).unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS))
    }
}

fn table() -> std::sync::MutexGuard<'static, Table> {
    TABLE.lock().recover()
}

/// The result code of `r`; a [`Refusal::Panic`] ends the TA here.
fn code(r: Result<(), Refusal>) -> u32 {
    match r {
        Ok(()) => TEE_SUCCESS,
        Err(Refusal::Panic(c)) => TEE_Panic(c),
        Err(Refusal::Code(c)) => c,
        Err(Refusal::Short(_)) => SHORT_BUFFER,
    }
}

/// The value of `r`; a refusal ends the TA here (a result code where the
/// function has none to return, too).
fn must<T>(r: Result<T, Refusal>) -> T {
    match r {
        Ok(v) => v,
        Err(Refusal::Panic(c)) => TEE_Panic(c),
        Err(_) => TEE_Panic(TEE_ERROR_BAD_PARAMETERS),
    }
}

/// `n` bytes of the TA's memory at `p` (a NULL `p` with `n > 0` panics).
///
/// # Safety
/// `p` is valid for reading `n` bytes for `'a` (GP's contract).
unsafe fn input<'a>(p: *const c_void, n: usize) -> &'a [u8] {
    if n == 0 {
        return &[];
    }
    if p.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: the caller's contract; non-NULL and `n > 0`.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }
}

/// `n` writable bytes of the TA's memory at `p`.
///
/// # Safety
/// `p` is valid for writing `n` bytes for `'a` and no other live slice
/// covers them.
unsafe fn output<'a>(p: *mut c_void, n: usize) -> &'a mut [u8] {
    if n == 0 {
        return &mut [];
    }
    if p.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: the caller's contract; non-NULL and `n > 0`.
    unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) }
}

/// Reads `*len` (a NULL pointer panics).
///
/// # Safety
/// A non-NULL `len` points to a `size_t`.
unsafe fn read_len(len: *const usize) -> usize {
    if len.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: non-NULL; the caller's contract.
    unsafe { *len }
}

/// Writes `*len = v`.
///
/// # Safety
/// `len` was accepted by [`read_len`].
unsafe fn write_len(len: *mut usize, v: usize) {
    // SAFETY: the caller's contract.
    unsafe { *len = v };
}

/// Calls `f` with `n` input bytes at `src` and `out` output bytes at `dst`:
/// separate slices when the ranges do not overlap, the one buffer when
/// they start at the same address and `in_place` allows it, else a copy
/// of the input (wiped after).
///
/// # Safety
/// `src` is readable for `n` bytes and `dst` writable for `out` bytes.
unsafe fn with_io<T>(
    src: *const c_void,
    n: usize,
    dst: *mut c_void,
    out: usize,
    in_place: bool,
    f: impl FnOnce(Io<'_>) -> T,
) -> T {
    let (s, d) = (src as usize, dst as usize);
    let overlap = n > 0 && out > 0 && s < d.saturating_add(out) && d < s.saturating_add(n);
    if !overlap {
        // SAFETY: the caller's contract; the ranges are disjoint.
        return f(Io::Split(unsafe { input(src, n) }, unsafe { output(dst, out) }));
    }
    if s == d && in_place && out <= n {
        // SAFETY: one range, readable and writable for `n` bytes (the
        // output is the input's own memory); the only slice of it.
        return f(Io::InPlace(unsafe { output(dst, n) }));
    }
    // SAFETY: the caller's contract; the copy is taken before `dst` is
    // borrowed.
    let copy = Zeroizing::new(unsafe { input(src, n) }.to_vec());
    // SAFETY: the caller's contract; `copy` is our own memory.
    f(Io::Split(&copy, unsafe { output(dst, out) }))
}

/// `TEE_Attribute`.
#[repr(C)]
pub struct TeeAttribute {
    attribute_id: u32,
    content: AttrContent,
}

#[repr(C)]
#[derive(Clone, Copy)]
union AttrContent {
    reference: RefAttr,
    value: ValueAttr,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RefAttr {
    buffer: *mut c_void,
    length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ValueAttr {
    a: u32,
    b: u32,
}

/// `TEE_ObjectInfo`.
#[repr(C)]
pub struct TeeObjectInfo {
    object_type: u32,
    object_size: u32,
    max_object_size: u32,
    object_usage: u32,
    data_size: u32,
    data_position: u32,
    handle_flags: u32,
}

/// `TEE_OperationInfo`.
#[repr(C)]
pub struct TeeOperationInfo {
    algorithm: u32,
    operation_class: u32,
    mode: u32,
    digest_length: u32,
    max_key_size: u32,
    key_size: u32,
    required_key_usage: u32,
    handle_state: u32,
}

/// `TEE_AllocateTransientObject`: `NOT_SUPPORTED` for a type other than
/// AES, HMAC-SHA256 and generic secret, or a size the type does not take.
///
/// # Safety
/// `object` points to a `TEE_ObjectHandle` (NULL panics).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AllocateTransientObject(object_type: u32, max_size: u32, object: *mut usize) -> u32 {
    if object.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let made = KeyType::from_gp(object_type).and_then(|t| Object::new(t, max_size));
    let (h, ret) = match made {
        Some(o) => {
            let mut t = table();
            let h = t.handle(OBJECT_TAG);
            t.objects.insert(h, o);
            (h, TEE_SUCCESS)
        }
        None => (0, TEE_ERROR_NOT_SUPPORTED),
    };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *object = h };
    ret
}

/// `TEE_FreeTransientObject`: the key is wiped; `TEE_HANDLE_NULL` does
/// nothing.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_FreeTransientObject(object: usize) {
    if object != 0 && table().objects.remove(&object).is_none() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
}

/// `TEE_CloseObject`: for a transient object, as `TEE_FreeTransientObject`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_CloseObject(object: usize) {
    TEE_FreeTransientObject(object);
}

/// `TEE_ResetTransientObject`: back to uninitialised, key wiped.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_ResetTransientObject(object: usize) {
    if object != 0 {
        table().object(object).reset();
    }
}

/// `TEE_InitRefAttribute`: panics for a value attribute id.
///
/// # Safety
/// `attr` points to a `TEE_Attribute`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_InitRefAttribute(attr: *mut TeeAttribute, id: u32, buffer: *const c_void, length: usize) {
    if attr.is_null() || id & ATTR_FLAG_VALUE != 0 {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let content = AttrContent { reference: RefAttr { buffer: buffer.cast_mut(), length } };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *attr = TeeAttribute { attribute_id: id, content } };
}

/// `TEE_InitValueAttribute`: panics for a buffer attribute id.
///
/// # Safety
/// `attr` points to a `TEE_Attribute`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_InitValueAttribute(attr: *mut TeeAttribute, id: u32, a: u32, b: u32) {
    if attr.is_null() || id & ATTR_FLAG_VALUE == 0 {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let content = AttrContent { value: ValueAttr { a, b } };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *attr = TeeAttribute { attribute_id: id, content } };
}

/// `TEE_PopulateTransientObject`: takes `TEE_ATTR_SECRET_VALUE` (exactly
/// once; anything else panics). `BAD_PARAMETERS` for a key length the type
/// does not take or above the object's maximum (checked before the key is
/// read); panics when the object holds a key already.
///
/// # Safety
/// `attrs` points to `count` attributes whose buffers are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_PopulateTransientObject(object: usize, attrs: *const TeeAttribute, count: u32) -> u32 {
    let mut t = table();
    let obj = t.object(object);
    if count != 1 || attrs.is_null() {
        // None, or more than one: the secret is missing or given twice, or
        // an attribute the type does not define is there.
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: checked non-NULL; `count` is 1.
    let a = unsafe { &*attrs };
    if a.attribute_id != ATTR_SECRET_VALUE {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: a SECRET_VALUE attribute is a reference (TEE_InitRefAttribute).
    let r = unsafe { a.content.reference };
    if r.length > obj.max_bits() as usize / 8 {
        return TEE_ERROR_BAD_PARAMETERS;
    }
    // SAFETY: bounded above; the TA's contract for the attribute's buffer.
    let secret = unsafe { input(r.buffer, r.length) };
    match obj.populate(secret) {
        Ok(()) => TEE_SUCCESS,
        Err(Refused::BadSize) => TEE_ERROR_BAD_PARAMETERS,
        Err(Refused::Initialized) => TEE_Panic(operation::BAD_STATE),
    }
}

/// `TEE_GenerateKey`: a random key of `key_size` bits (the host's
/// `getrandom`). Secret types take no parameters; a size the object does
/// not take panics, as GP says.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_GenerateKey(object: usize, key_size: u32, _params: *const TeeAttribute, count: u32) -> u32 {
    let mut t = table();
    let obj = t.object(object);
    if count != 0 {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: `k` is a buffer of its own length.
    let fill = |k: &mut [u8]| unsafe { crate::api::TEE_GenerateRandom(k.as_mut_ptr().cast(), k.len()) };
    match obj.generate(key_size, fill) {
        Ok(()) => TEE_SUCCESS,
        Err(Refused::BadSize) => TEE_Panic(TEE_ERROR_NOT_SUPPORTED),
        Err(Refused::Initialized) => TEE_Panic(operation::BAD_STATE),
    }
}

/// `TEE_GetObjectInfo1`.
///
/// # Safety
/// `info` points to a `TEE_ObjectInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetObjectInfo1(object: usize, info: *mut TeeObjectInfo) -> u32 {
    let mut t = table();
    let o = t.object(object);
    if info.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let bits = o.key().map_or(0, |k| k.len() as u32 * 8);
    let v = TeeObjectInfo {
        object_type: o.ktype().gp(),
        object_size: bits,
        max_object_size: o.max_bits(),
        object_usage: USAGE_ALL,
        data_size: 0,
        data_position: 0,
        handle_flags: if o.key().is_some() { HANDLE_FLAG_INITIALIZED } else { 0 },
    };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *info = v };
    TEE_SUCCESS
}

/// `TEE_AllocateOperation`: `NOT_SUPPORTED` for an algorithm, mode or key
/// size teeheap does not implement (`*operation` is then
/// `TEE_HANDLE_NULL`).
///
/// # Safety
/// `operation` points to a `TEE_OperationHandle` (NULL panics).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AllocateOperation(operation: *mut usize, algorithm: u32, mode: u32, max_key: u32) -> u32 {
    if operation.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let (h, ret) = match Operation::new(algorithm, mode, max_key) {
        Ok(op) => {
            let mut t = table();
            let h = t.handle(OPERATION_TAG);
            t.ops.insert(h, op);
            (h, TEE_SUCCESS)
        }
        Err(e) => (0, e),
    };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *operation = h };
    ret
}

/// `TEE_FreeOperation`: key and state wiped; `TEE_HANDLE_NULL` does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_FreeOperation(operation: usize) {
    if operation != 0 && table().ops.remove(&operation).is_none() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
}

/// `TEE_GetOperationInfo`.
///
/// # Safety
/// `info` points to a `TEE_OperationInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_GetOperationInfo(operation: usize, info: *mut TeeOperationInfo) {
    let i = table().op(operation).info();
    if info.is_null() {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let v = TeeOperationInfo {
        algorithm: i.algorithm,
        operation_class: i.class,
        mode: i.mode,
        digest_length: i.digest_len,
        max_key_size: i.max_key_bits,
        key_size: i.key_bits,
        required_key_usage: i.required_usage,
        handle_state: i.handle_state,
    };
    // SAFETY: checked non-NULL; the caller's contract.
    unsafe { *info = v };
}

/// `TEE_ResetOperation`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_ResetOperation(operation: usize) {
    must(table().op(operation).reset());
}

/// `TEE_SetOperationKey`: a copy of the object's key (`TEE_HANDLE_NULL`
/// clears it). Panics on the misuses GP lists.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_SetOperationKey(operation: usize, key: usize) -> u32 {
    let mut t = table();
    if key != 0 && !t.objects.contains_key(&key) {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    let Table { objects, ops, .. } = &mut *t;
    let op = ops.get_mut(&operation).unwrap_or_else(|| TEE_Panic(TEE_ERROR_BAD_PARAMETERS));
    code(op.set_key(objects.get(&key)))
}

/// `TEE_CipherInit` (the IV is ignored for ECB).
///
/// # Safety
/// `iv` is readable for `iv_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_CipherInit(operation: usize, iv: *const c_void, iv_len: usize) {
    let mut t = table();
    let op = t.op(operation);
    if iv_len > modes::BLOCK {
        TEE_Panic(TEE_ERROR_BAD_PARAMETERS);
    }
    // SAFETY: bounded above; the caller's contract.
    must(op.cipher_init(unsafe { input(iv, iv_len) }));
}

/// `TEE_CipherUpdate` and `TEE_CipherDoFinal`.
///
/// # Safety
/// GP's contract for the buffers.
unsafe fn cipher(op: usize, src: *const c_void, n: usize, dst: *mut c_void, dst_len: *mut usize, last: bool) -> u32 {
    let mut t = table();
    let op = t.op(op);
    // SAFETY: the caller's contract.
    let cap = unsafe { read_len(dst_len) };
    let need = match op.cipher_out_len(n, last) {
        Ok(need) => need,
        Err(e) => return code(Err(e)),
    };
    if cap < need {
        // SAFETY: accepted by read_len.
        unsafe { write_len(dst_len, need) };
        return SHORT_BUFFER;
    }
    let in_place = op.pending() == 0;
    // SAFETY: the caller's contract: `n` bytes at `src`, `cap >= need`
    // bytes at `dst`.
    let r = unsafe { with_io(src, n, dst, need, in_place, |io| op.cipher_update(io, last)) };
    let done = must(r);
    // SAFETY: accepted by read_len.
    unsafe { write_len(dst_len, done) };
    TEE_SUCCESS
}

/// `TEE_CipherUpdate`: output in whole blocks for ECB/CBC (the rest is
/// kept for the next call), byte for byte for CTR; `SHORT_BUFFER` with
/// the size needed in `*dest_len`. In place (`src == dest`) is allowed.
///
/// # Safety
/// `src` readable for `src_len` bytes, `dest` writable for `*dest_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_CipherUpdate(
    operation: usize,
    src: *const c_void,
    src_len: usize,
    dest: *mut c_void,
    dest_len: *mut usize,
) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { cipher(operation, src, src_len, dest, dest_len, false) }
}

/// `TEE_CipherDoFinal`: as `TEE_CipherUpdate`, then the operation is back
/// in its initial state; `BAD_PARAMETERS` when ECB/CBC input is not whole
/// blocks.
///
/// # Safety
/// As `TEE_CipherUpdate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_CipherDoFinal(
    operation: usize,
    src: *const c_void,
    src_len: usize,
    dest: *mut c_void,
    dest_len: *mut usize,
) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { cipher(operation, src, src_len, dest, dest_len, true) }
}

/// `TEE_DigestUpdate`.
///
/// # Safety
/// `chunk` readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_DigestUpdate(operation: usize, chunk: *const c_void, len: usize) {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    must(op.digest_update(unsafe { input(chunk, len) }));
}

/// `TEE_DigestDoFinal`: `SHORT_BUFFER` (size needed in `*hash_len`,
/// nothing consumed) when the hash does not fit.
///
/// # Safety
/// `chunk` readable for `len` bytes, `hash` writable for `*hash_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_DigestDoFinal(
    operation: usize,
    chunk: *const c_void,
    len: usize,
    hash: *mut c_void,
    hash_len: *mut usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    let cap = unsafe { read_len(hash_len) };
    let mut out = Zeroizing::new([0u8; 64]);
    // SAFETY: the caller's contract.
    let r = op.digest_final(unsafe { input(chunk, len) }, &mut out[..cap.min(64)]);
    // SAFETY: the caller's contract.
    unsafe { finish_out(r, &out[..], hash, hash_len) }
}

/// Copies `r`'s output into the TA's buffer and sets its length, or
/// reports the size needed.
///
/// # Safety
/// `dst` writable for the `*dst_len` accepted by [`read_len`].
unsafe fn finish_out(r: Result<usize, Refusal>, out: &[u8], dst: *mut c_void, dst_len: *mut usize) -> u32 {
    match r {
        Ok(n) => {
            // SAFETY: `n <= *dst_len` (the output was bounded by it).
            unsafe { output(dst, n) }.copy_from_slice(&out[..n]);
            // SAFETY: accepted by read_len.
            unsafe { write_len(dst_len, n) };
            TEE_SUCCESS
        }
        Err(Refusal::Short(need)) => {
            // SAFETY: accepted by read_len.
            unsafe { write_len(dst_len, need) };
            SHORT_BUFFER
        }
        Err(e) => code(Err(e)),
    }
}

/// `TEE_MACInit` (HMAC takes no IV; any given is ignored).
#[unsafe(no_mangle)]
pub extern "C" fn TEE_MACInit(operation: usize, _iv: *const c_void, _iv_len: usize) {
    must(table().op(operation).mac_init());
}

/// `TEE_MACUpdate`.
///
/// # Safety
/// `chunk` readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MACUpdate(operation: usize, chunk: *const c_void, len: usize) {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    must(op.mac_update(unsafe { input(chunk, len) }));
}

/// `TEE_MACComputeFinal`: `SHORT_BUFFER` (size needed in `*mac_len`,
/// nothing consumed) when the MAC does not fit.
///
/// # Safety
/// `message` readable for `len` bytes, `mac` writable for `*mac_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MACComputeFinal(
    operation: usize,
    message: *const c_void,
    len: usize,
    mac: *mut c_void,
    mac_len: *mut usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    let cap = unsafe { read_len(mac_len) };
    let mut out = Zeroizing::new([0u8; 64]);
    // SAFETY: the caller's contract.
    let r = op.mac_compute(unsafe { input(message, len) }, &mut out[..cap.min(64)]);
    // SAFETY: the caller's contract.
    unsafe { finish_out(r, &out[..], mac, mac_len) }
}

/// `TEE_MACCompareFinal`: `TEE_ERROR_MAC_INVALID` unless `mac` is the MAC.
///
/// # Safety
/// `message` readable for `len` bytes, `mac` for `mac_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_MACCompareFinal(
    operation: usize,
    message: *const c_void,
    len: usize,
    mac: *const c_void,
    mac_len: usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    // A MAC longer than any is compared as an empty one (MAC_INVALID).
    // SAFETY: the caller's contract; `mac_len` bounded first.
    let given = if mac_len <= 64 { unsafe { input(mac, mac_len) } } else { &[] };
    // SAFETY: the caller's contract.
    code(op.mac_compare(unsafe { input(message, len) }, given))
}

/// `TEE_AEInit` for AES-GCM: `tag_len` in bits (128, 120, 112, 104 or 96,
/// else `NOT_SUPPORTED`); the AAD and payload lengths are not needed.
///
/// # Safety
/// `nonce` readable for `nonce_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AEInit(
    operation: usize,
    nonce: *const c_void,
    nonce_len: usize,
    tag_len: u32,
    _aad_len: usize,
    _payload_len: usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    code(op.ae_init(unsafe { input(nonce, nonce_len) }, tag_len))
}

/// `TEE_AEUpdateAAD`: panics once payload was given.
///
/// # Safety
/// `data` readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AEUpdateAAD(operation: usize, data: *const c_void, len: usize) {
    let mut t = table();
    let op = t.op(operation);
    // SAFETY: the caller's contract.
    must(op.ae_aad(unsafe { input(data, len) }));
}

/// `TEE_AEUpdate`: output as long as the input (`SHORT_BUFFER` with the
/// size needed otherwise).
///
/// # Safety
/// `src` readable for `src_len` bytes, `dest` writable for `*dest_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AEUpdate(
    operation: usize,
    src: *const c_void,
    src_len: usize,
    dest: *mut c_void,
    dest_len: *mut usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    must(op.ae_tag_len());
    // SAFETY: the caller's contract.
    let cap = unsafe { read_len(dest_len) };
    if cap < src_len {
        // SAFETY: accepted by read_len.
        unsafe { write_len(dest_len, src_len) };
        return SHORT_BUFFER;
    }
    // SAFETY: the caller's contract; `cap >= src_len`.
    let n = must(unsafe { with_io(src, src_len, dest, src_len, true, |io| op.ae_update(io)) });
    // SAFETY: accepted by read_len.
    unsafe { write_len(dest_len, n) };
    TEE_SUCCESS
}

/// `TEE_AEEncryptFinal`: the last payload and the tag (`SHORT_BUFFER`
/// with the size needed in `*dest_len` or `*tag_len`, nothing consumed).
///
/// # Safety
/// GP's contract for the buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AEEncryptFinal(
    operation: usize,
    src: *const c_void,
    src_len: usize,
    dest: *mut c_void,
    dest_len: *mut usize,
    tag: *mut c_void,
    tag_len: *mut usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    let need_tag = must(op.ae_tag_len());
    // SAFETY: the caller's contract.
    let (cap, tag_cap) = unsafe { (read_len(dest_len), read_len(tag_len)) };
    if cap < src_len {
        // SAFETY: accepted by read_len.
        unsafe { write_len(dest_len, src_len) };
        return SHORT_BUFFER;
    }
    if tag_cap < need_tag {
        // SAFETY: accepted by read_len.
        unsafe { write_len(tag_len, need_tag) };
        return SHORT_BUFFER;
    }
    // SAFETY: the caller's contract; `cap >= src_len`.
    let n = must(unsafe { with_io(src, src_len, dest, src_len, true, |io| op.ae_update(io)) });
    let full = must(op.ae_finish());
    // SAFETY: `tag` writable for `tag_cap >= need_tag` bytes.
    unsafe { output(tag, need_tag) }.copy_from_slice(&full[..need_tag]);
    // SAFETY: accepted by read_len.
    unsafe {
        write_len(dest_len, n);
        write_len(tag_len, need_tag);
    }
    TEE_SUCCESS
}

/// `TEE_AEDecryptFinal`: the last payload, released only when `tag`
/// matches (`TEE_ERROR_MAC_INVALID` otherwise; earlier `TEE_AEUpdate`
/// output was already released, as GP allows).
///
/// # Safety
/// GP's contract for the buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn TEE_AEDecryptFinal(
    operation: usize,
    src: *const c_void,
    src_len: usize,
    dest: *mut c_void,
    dest_len: *mut usize,
    tag: *const c_void,
    tag_len: usize,
) -> u32 {
    let mut t = table();
    let op = t.op(operation);
    let need_tag = must(op.ae_tag_len());
    // SAFETY: the caller's contract.
    let cap = unsafe { read_len(dest_len) };
    if cap < src_len {
        // SAFETY: accepted by read_len.
        unsafe { write_len(dest_len, src_len) };
        return SHORT_BUFFER;
    }
    // SAFETY: the caller's contract.
    let src_bytes = unsafe { input(src, src_len) };
    let mut plain = Zeroizing::new(vec![0u8; src_len]);
    must(op.ae_update(Io::Split(src_bytes, &mut plain)));
    let full = must(op.ae_finish());
    let given = if tag_len == need_tag {
        // SAFETY: the caller's contract; `tag_len` is at most 16.
        unsafe { input(tag, tag_len) }
    } else {
        &[]
    };
    if !operation::same(given, &full[..need_tag]) {
        return MAC_INVALID;
    }
    // SAFETY: `dest` writable for `cap >= src_len` bytes; `plain` is ours.
    unsafe { std::ptr::copy(plain.as_ptr(), dest.cast::<u8>(), src_len) };
    // SAFETY: accepted by read_len.
    unsafe { write_len(dest_len, src_len) };
    TEE_SUCCESS
}

/// `TEE_IsAlgorithmSupported` (GP 1.1.1): `element` must be
/// `TEE_CRYPTO_ELEMENT_NONE`.
#[unsafe(no_mangle)]
pub extern "C" fn TEE_IsAlgorithmSupported(algorithm: u32, element: u32) -> u32 {
    let ok = element == 0
        && [
            (operation::ALG_AES_ECB_NOPAD, 0, 128),
            (operation::ALG_AES_CBC_NOPAD, 0, 128),
            (operation::ALG_AES_CTR, 0, 128),
            (operation::ALG_AES_GCM, 0, 128),
            (operation::ALG_SHA256, 5, 0),
            (operation::ALG_HMAC_SHA256, 4, 256),
        ]
        .iter()
        .any(|&(a, m, k)| a == algorithm && Operation::new(a, m, k).is_ok());
    if ok { TEE_SUCCESS } else { TEE_ERROR_NOT_SUPPORTED }
}

/// Every exported function (see [`crate::exports`]).
pub(crate) const EXPORTS: &[*const ()] = &[
    TEE_AllocateTransientObject as *const (),
    TEE_FreeTransientObject as *const (),
    TEE_CloseObject as *const (),
    TEE_ResetTransientObject as *const (),
    TEE_InitRefAttribute as *const (),
    TEE_InitValueAttribute as *const (),
    TEE_PopulateTransientObject as *const (),
    TEE_GenerateKey as *const (),
    TEE_GetObjectInfo1 as *const (),
    TEE_AllocateOperation as *const (),
    TEE_FreeOperation as *const (),
    TEE_GetOperationInfo as *const (),
    TEE_ResetOperation as *const (),
    TEE_SetOperationKey as *const (),
    TEE_CipherInit as *const (),
    TEE_CipherUpdate as *const (),
    TEE_CipherDoFinal as *const (),
    TEE_DigestUpdate as *const (),
    TEE_DigestDoFinal as *const (),
    TEE_MACInit as *const (),
    TEE_MACUpdate as *const (),
    TEE_MACComputeFinal as *const (),
    TEE_MACCompareFinal as *const (),
    TEE_AEInit as *const (),
    TEE_AEUpdateAAD as *const (),
    TEE_AEUpdate as *const (),
    TEE_AEEncryptFinal as *const (),
    TEE_AEDecryptFinal as *const (),
    TEE_IsAlgorithmSupported as *const (),
];
