//! The content-decryption TA: decrypts AES-128-CTR protected samples (the
//! CENC `cenc` scheme) from normal memory straight into protected memory,
//! with content keys provisioned in the secure world and never returned.
//!
//! UUID `74656568-6561-7001-8000-000000000001`. One command:
//!
//! DECRYPT 0:
//! - p0 value in: a = key id, b = offset in the destination;
//! - p1 memref in: the sample info, little-endian: 16 bytes IV (the initial
//!   counter block; an 8-byte CENC IV is padded with 8 zero bytes), then
//!   zero or more subsample entries of 8 bytes each, `u32` clear bytes then
//!   `u32` encrypted bytes. No entries: the whole sample is encrypted.
//!   [`encode_sample_info`] builds it;
//! - p2 memref in: the sample (clear and encrypted parts, in order);
//! - p3 memref out, protected: receives the plaintext at offset p0.b.
//!
//! The keystream runs over the concatenation of the encrypted parts only
//! (the counter continues across subsamples), with a 64-bit big-endian block
//! counter in the low half of the counter block (`Ctr64BE`), as CENC does.
//! Errors (origin TRUSTED_APP): wrong types or an inconsistent map →
//! BAD_PARAMETERS; unknown key → ITEM_NOT_FOUND; destination not protected →
//! SECURITY; destination too small → SHORT_BUFFER with p3 size = offset +
//! sample size. On success p3's size is left as given.

use crate::TaMemref;
use std::collections::BTreeMap;
use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroize;

use crate::abi::Uuid;
use crate::config::Key128;
use crate::error::{TeeError, TeeResult};
use crate::ta::{ParamType, TaEnv, TaParam, TrustedApp, check_types};

/// `74656568-6561-7001-8000-000000000001`.
pub const UUID: Uuid = Uuid::from_fields(0x7465_6568, 0x6561, 0x7001, [0x80, 0, 0, 0, 0, 0, 0, 0x01]);

/// Decrypt one sample into protected memory.
pub const CMD_DECRYPT: u32 = 0;

/// Largest sample accepted.
pub const MAX_SAMPLE: u64 = 64 << 20;

/// Length of the IV at the start of the sample info.
pub const IV_LEN: usize = 16;

type Aes128Ctr = ctr::Ctr64BE<aes::Aes128>;

/// Builds the sample info of DECRYPT from an IV and `(clear, encrypted)`
/// byte counts.
pub fn encode_sample_info(iv: &[u8; 16], subsamples: &[(u32, u32)]) -> Vec<u8> {
    let mut v = iv.to_vec();
    for (clear, enc) in subsamples {
        v.extend_from_slice(&clear.to_le_bytes());
        v.extend_from_slice(&enc.to_le_bytes());
    }
    v
}

/// An IV and the `(clear, encrypted)` subsample map.
type SampleInfo = ([u8; 16], Vec<(u32, u32)>);

/// Parses sample info into the IV and the subsample map.
fn parse_sample_info(info: &[u8]) -> TeeResult<SampleInfo> {
    let (iv, rest) = info.split_first_chunk::<IV_LEN>().ok_or(TeeError::BAD_PARAMETERS)?;
    if rest.len() % 8 != 0 {
        return Err(TeeError::BAD_PARAMETERS);
    }
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Ok((*iv, rest.chunks_exact(8).map(|e| (le(&e[..4]), le(&e[4..]))).collect()))
}

/// Bytes decrypted per step: small enough that the step's data stays in
/// the CPU cache between reading the sample, decrypting and writing the
/// protected destination.
const CHUNK: usize = 8 << 10;

/// The sample as `(start, end, encrypted)` segments covering `[0, len)`:
/// the subsample map, or all of it encrypted if the map is empty.
///
/// # Errors
/// BAD_PARAMETERS if the map does not add up to `len`.
fn segments(subsamples: &[(u32, u32)], len: u64) -> TeeResult<Vec<(u64, u64, bool)>> {
    if subsamples.is_empty() {
        return Ok(vec![(0, len, true)]);
    }
    let mut out = Vec::with_capacity(subsamples.len() * 2);
    let mut pos = 0u64;
    for &(clear, enc) in subsamples {
        for (n, encrypted) in [(u64::from(clear), false), (u64::from(enc), true)] {
            if n > 0 {
                out.push((pos, pos + n, encrypted));
                pos += n;
            }
        }
    }
    if pos != len {
        return Err(TeeError::BAD_PARAMETERS);
    }
    Ok(out)
}

/// Decrypts `len` bytes of `sample` into `dst` at `dst_off`, chunk by chunk
/// through a scratch buffer that is wiped afterwards: the encrypted parts
/// under one continuous keystream, the clear parts copied as they are.
fn decrypt_into(
    env: &TaEnv<'_>,
    key: &[u8; 16],
    iv: &[u8; 16],
    segs: &[(u64, u64, bool)],
    sample: &TaMemref,
    dst: &TaMemref,
    dst_off: u64,
) -> TeeResult {
    let mut cipher = Aes128Ctr::new(key.into(), iv.into());
    let len = segs.last().map_or(0, |s| s.1);
    let mut scratch = [0u8; CHUNK];
    let mut seg = 0;
    let mut pos = 0u64;
    let result = (|| {
        while pos < len {
            let n = (len - pos).min(CHUNK as u64);
            let buf = &mut scratch[..n as usize];
            env.memory.read(sample, pos, buf)?;
            let mut p = pos;
            while p < pos + n {
                let (_, end, encrypted) = segs[seg];
                let upto = end.min(pos + n);
                if encrypted {
                    cipher.apply_keystream(&mut buf[(p - pos) as usize..(upto - pos) as usize]);
                }
                p = upto;
                if upto == end {
                    seg += 1;
                }
            }
            env.memory.write(dst, dst_off + pos, buf)?;
            pos += n;
        }
        Ok(())
    })();
    scratch.zeroize();
    result
}

/// The content-decryption TA, holding the provisioned keys.
pub struct ContentDecrypt {
    keys: BTreeMap<u32, Key128>,
}

impl fmt::Debug for ContentDecrypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentDecrypt").field("key_ids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl ContentDecrypt {
    /// A TA instance with `keys`.
    pub fn new(keys: BTreeMap<u32, Key128>) -> ContentDecrypt {
        ContentDecrypt { keys }
    }

    fn decrypt(&self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        check_types(params, &[ParamType::ValueIn, ParamType::MemrefIn, ParamType::MemrefIn, ParamType::MemrefOut])?;
        let (key_id, dst_off, _) = params[0].values().ok_or(TeeError::BAD_PARAMETERS)?;
        let key_id = u32::try_from(key_id).map_err(|_| TeeError::ITEM_NOT_FOUND)?;
        let (inputs, output) = params.split_at_mut(3);
        let (info, sample) = match (inputs[1].memref(), inputs[2].memref()) {
            (Some(i), Some(s)) => (i, s),
            _ => return Err(TeeError::BAD_PARAMETERS),
        };
        if info.size() > IV_LEN as u64 + 8 * 4096 || sample.size() > MAX_SAMPLE {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let (iv, subsamples) = parse_sample_info(&env.memory.read_vec(info, 0, info.size())?)?;
        let key = self.keys.get(&key_id).ok_or(TeeError::ITEM_NOT_FOUND)?;
        let len = sample.size();
        let segs = segments(&subsamples, len)?;
        let dst = output[0].memref_mut().ok_or(TeeError::BAD_PARAMETERS)?;
        if !dst.is_protected() {
            return Err(TeeError::SECURITY);
        }
        let end = dst_off.checked_add(len).ok_or(TeeError::BAD_PARAMETERS)?;
        if end > dst.size() {
            dst.set_out_size(end);
            return Err(TeeError::SHORT_BUFFER);
        }
        decrypt_into(env, &key.0, &iv, &segs, sample, dst, dst_off)
    }
}

impl TrustedApp for ContentDecrypt {
    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        match cmd {
            CMD_DECRYPT => self.decrypt(env, params),
            _ => Err(TeeError::BAD_PARAMETERS),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The whole-buffer form of the TA's decryption, for known answers.
    fn decrypt_in_place(key: &[u8; 16], iv: &[u8; 16], subsamples: &[(u32, u32)], data: &mut [u8]) -> TeeResult {
        let mut cipher = Aes128Ctr::new(key.into(), iv.into());
        for (start, end, encrypted) in segments(subsamples, data.len() as u64)? {
            if encrypted {
                cipher.apply_keystream(&mut data[start as usize..end as usize]);
            }
        }
        Ok(())
    }

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn nist_sp800_38a_ctr_vector() {
        // SP 800-38A F.5.2 (CTR-AES128.Decrypt), first two blocks.
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap();
        let mut data = hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff");
        // Split across subsamples with clear bytes in between removed: the
        // keystream must continue over encrypted parts only.
        decrypt_in_place(&key, &iv, &[(0, 5), (0, 27)], &mut data).unwrap();
        assert_eq!(data, hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"));
    }

    #[test]
    fn sample_info_round_trip() {
        let info = encode_sample_info(&[7; 16], &[(1, 2), (3, 4)]);
        assert_eq!(info.len(), 32);
        assert_eq!(parse_sample_info(&info).unwrap(), ([7; 16], vec![(1, 2), (3, 4)]));
        assert!(parse_sample_info(&info[..31]).is_err());
        assert!(parse_sample_info(&info[..15]).is_err());
        let mut d = [0u8; 4];
        assert_eq!(decrypt_in_place(&[0; 16], &[0; 16], &[(1, 2)], &mut d), Err(TeeError::BAD_PARAMETERS));
    }
}
