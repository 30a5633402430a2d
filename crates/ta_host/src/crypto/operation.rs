//! A GP cryptographic operation: one algorithm in one mode, a key (a copy
//! of a transient object's, wiped on drop) and the computation in
//! progress. This is the safe core behind `TEE_AllocateOperation` and the
//! cipher, AE, digest and MAC functions; the C edge ([`super`]) turns its
//! [`Refusal`]s into `TEE_Panic` or a result code.

use aes::cipher::InOutBuf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::gcm::Gcm;
use super::modes::{self, BLOCK, Chaining, Mode};
use super::object::{KeyType, Object};

/// `TEE_ALG_AES_ECB_NOPAD`.
pub(crate) const ALG_AES_ECB_NOPAD: u32 = 0x1000_0010;
/// `TEE_ALG_AES_CBC_NOPAD`.
pub(crate) const ALG_AES_CBC_NOPAD: u32 = 0x1000_0110;
/// `TEE_ALG_AES_CTR`.
pub(crate) const ALG_AES_CTR: u32 = 0x1000_0210;
/// `TEE_ALG_AES_GCM`.
pub(crate) const ALG_AES_GCM: u32 = 0x4000_0810;
/// `TEE_ALG_SHA256`.
pub(crate) const ALG_SHA256: u32 = 0x5000_0004;
/// `TEE_ALG_HMAC_SHA256`.
pub(crate) const ALG_HMAC_SHA256: u32 = 0x3000_0004;

/// `TEE_MODE_ENCRYPT`.
pub(crate) const MODE_ENCRYPT: u32 = 0;
/// `TEE_MODE_DECRYPT`.
pub(crate) const MODE_DECRYPT: u32 = 1;
/// `TEE_MODE_MAC`.
pub(crate) const MODE_MAC: u32 = 4;
/// `TEE_MODE_DIGEST`.
pub(crate) const MODE_DIGEST: u32 = 5;

/// `TEE_OPERATION_CIPHER`.
pub(crate) const CLASS_CIPHER: u32 = 1;
/// `TEE_OPERATION_MAC`.
pub(crate) const CLASS_MAC: u32 = 3;
/// `TEE_OPERATION_AE`.
pub(crate) const CLASS_AE: u32 = 4;
/// `TEE_OPERATION_DIGEST`.
pub(crate) const CLASS_DIGEST: u32 = 5;

/// `TEE_HANDLE_FLAG_INITIALIZED`.
pub(crate) const HANDLE_FLAG_INITIALIZED: u32 = 0x0002_0000;
/// `TEE_HANDLE_FLAG_KEY_SET`.
pub(crate) const HANDLE_FLAG_KEY_SET: u32 = 0x0004_0000;

/// `TEE_USAGE_ENCRYPT`, `TEE_USAGE_DECRYPT`, `TEE_USAGE_MAC`.
const USAGE_ENCRYPT: u32 = 0x2;
const USAGE_DECRYPT: u32 = 0x4;
const USAGE_MAC: u32 = 0x8;

/// `TEE_ERROR_BAD_PARAMETERS`, `_NOT_SUPPORTED`, `_SHORT_BUFFER`, `_MAC_INVALID`.
pub(crate) const BAD_PARAMETERS: u32 = 0xFFFF_0006;
pub(crate) const NOT_SUPPORTED: u32 = 0xFFFF_000A;
pub(crate) const SHORT_BUFFER: u32 = 0xFFFF_0010;
pub(crate) const MAC_INVALID: u32 = 0xFFFF_3071;
/// The panic code of a call in the wrong state (`TEE_ERROR_BAD_STATE`).
pub(crate) const BAD_STATE: u32 = 0xFFFF_0007;

/// SHA-256's output length.
const SHA256_LEN: usize = 32;

/// Why a call did not do its work.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// GP says the TA panics (wrong state, wrong class, missing key...);
    /// the code is what the panic reports.
    Panic(u32),
    /// A result code for the TA.
    Code(u32),
    /// `TEE_ERROR_SHORT_BUFFER`: this many bytes are needed.
    Short(usize),
}

type Res<T> = Result<T, Refusal>;

/// The algorithms teeheap implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    Cipher(Chaining),
    Gcm,
    Sha256,
    HmacSha256,
}

/// Where output goes: a separate buffer, or the input's own (the C edge
/// only passes `InPlace` when nothing is buffered, so output never runs
/// ahead of input).
pub(crate) enum Io<'a> {
    /// Input, output (exactly as long as the output produced).
    Split(&'a [u8], &'a mut [u8]),
    /// Input that is overwritten by the output.
    InPlace(&'a mut [u8]),
}

impl Io<'_> {
    fn in_len(&self) -> usize {
        match self {
            Io::Split(i, _) => i.len(),
            Io::InPlace(b) => b.len(),
        }
    }
}

enum Active {
    Idle,
    Cipher { mode: Box<dyn Mode>, pending: Zeroizing<[u8; BLOCK]>, npend: usize },
    Ae(Box<Gcm>),
    Digest(Box<Sha256>),
    Mac(Box<Hmac<Sha256>>),
}

/// What `TEE_GetOperationInfo` reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Info {
    pub(crate) algorithm: u32,
    pub(crate) class: u32,
    pub(crate) mode: u32,
    pub(crate) digest_len: u32,
    pub(crate) max_key_bits: u32,
    pub(crate) key_bits: u32,
    pub(crate) required_usage: u32,
    pub(crate) handle_state: u32,
}

/// One operation.
///
/// # Invariants
/// `key`, when set, is a key of the type the algorithm takes and no
/// larger than `max_key_bits`; a digest operation is always `Digest`.
pub(crate) struct Operation {
    alg_id: u32,
    alg: Alg,
    mode: u32,
    max_key_bits: u32,
    key: Option<Zeroizing<Vec<u8>>>,
    active: Active,
}

impl Operation {
    /// `TEE_AllocateOperation`: `NOT_SUPPORTED` for an algorithm, mode or
    /// maximum key size teeheap does not take.
    pub(crate) fn new(alg_id: u32, mode: u32, max_key_bits: u32) -> Result<Operation, u32> {
        let alg = match alg_id {
            ALG_AES_ECB_NOPAD => Alg::Cipher(Chaining::Ecb),
            ALG_AES_CBC_NOPAD => Alg::Cipher(Chaining::Cbc),
            ALG_AES_CTR => Alg::Cipher(Chaining::Ctr),
            ALG_AES_GCM => Alg::Gcm,
            ALG_SHA256 => Alg::Sha256,
            ALG_HMAC_SHA256 => Alg::HmacSha256,
            _ => return Err(NOT_SUPPORTED),
        };
        let mode_ok = match alg {
            Alg::Cipher(_) | Alg::Gcm => mode == MODE_ENCRYPT || mode == MODE_DECRYPT,
            Alg::Sha256 => mode == MODE_DIGEST,
            Alg::HmacSha256 => mode == MODE_MAC,
        };
        let size_ok = match alg {
            Alg::Cipher(_) | Alg::Gcm => KeyType::Aes.size_ok(max_key_bits),
            Alg::HmacSha256 => KeyType::HmacSha256.size_ok(max_key_bits),
            Alg::Sha256 => true,
        };
        if !mode_ok || !size_ok {
            return Err(NOT_SUPPORTED);
        }
        let active = if alg == Alg::Sha256 { Active::Digest(Box::default()) } else { Active::Idle };
        let max_key_bits = if alg == Alg::Sha256 { 0 } else { max_key_bits };
        Ok(Operation { alg_id, alg, mode, max_key_bits, key: None, active })
    }

    fn class(&self) -> u32 {
        match self.alg {
            Alg::Cipher(_) => CLASS_CIPHER,
            Alg::Gcm => CLASS_AE,
            Alg::Sha256 => CLASS_DIGEST,
            Alg::HmacSha256 => CLASS_MAC,
        }
    }

    /// `TEE_GetOperationInfo`.
    pub(crate) fn info(&self) -> Info {
        let initialized = !matches!(self.active, Active::Idle);
        Info {
            algorithm: self.alg_id,
            class: self.class(),
            mode: self.mode,
            digest_len: match self.alg {
                Alg::Sha256 | Alg::HmacSha256 => SHA256_LEN as u32,
                _ => 0,
            },
            max_key_bits: self.max_key_bits,
            key_bits: self.key.as_ref().map_or(0, |k| k.len() as u32 * 8),
            required_usage: match (self.alg, self.mode) {
                (Alg::Sha256, _) => 0,
                (Alg::HmacSha256, _) => USAGE_MAC,
                (_, MODE_ENCRYPT) => USAGE_ENCRYPT,
                _ => USAGE_DECRYPT,
            },
            handle_state: if self.key.is_some() { HANDLE_FLAG_KEY_SET } else { 0 }
                | if initialized { HANDLE_FLAG_INITIALIZED } else { 0 },
        }
    }

    /// `TEE_SetOperationKey`: `None` clears the key. Panics (GP) for a
    /// digest, an operation in progress, an empty object, a key of the
    /// wrong type or larger than the operation's maximum.
    pub(crate) fn set_key(&mut self, key: Option<&Object>) -> Res<()> {
        if self.alg == Alg::Sha256 || !matches!(self.active, Active::Idle) {
            return Err(Refusal::Panic(BAD_STATE));
        }
        let Some(obj) = key else {
            self.key = None;
            return Ok(());
        };
        let type_ok = match self.alg {
            Alg::Cipher(_) | Alg::Gcm => obj.ktype() == KeyType::Aes,
            Alg::HmacSha256 => matches!(obj.ktype(), KeyType::HmacSha256 | KeyType::GenericSecret),
            Alg::Sha256 => false,
        };
        let k = obj.key().ok_or(Refusal::Panic(BAD_STATE))?;
        if !type_ok || k.len() * 8 > self.max_key_bits as usize {
            return Err(Refusal::Panic(BAD_PARAMETERS));
        }
        self.key = Some(Zeroizing::new(k.to_vec()));
        Ok(())
    }

    /// `TEE_ResetOperation`: back to the initial state, key kept. Panics
    /// when an operation that needs a key has none.
    pub(crate) fn reset(&mut self) -> Res<()> {
        if self.alg == Alg::Sha256 {
            self.active = Active::Digest(Box::default());
            return Ok(());
        }
        if self.key.is_none() {
            return Err(Refusal::Panic(BAD_STATE));
        }
        self.active = Active::Idle;
        Ok(())
    }

    fn key_for(&self, alg: impl Fn(Alg) -> bool) -> Res<&[u8]> {
        if !alg(self.alg) {
            return Err(Refusal::Panic(BAD_PARAMETERS));
        }
        self.key.as_ref().map(|k| k.as_slice()).ok_or(Refusal::Panic(BAD_STATE))
    }

    /// `TEE_CipherInit`: panics for another class, no key, or an IV of the
    /// wrong length (16 bytes for CBC and CTR; ignored for ECB).
    pub(crate) fn cipher_init(&mut self, iv: &[u8]) -> Res<()> {
        let key = self.key_for(|a| matches!(a, Alg::Cipher(_)))?;
        let Alg::Cipher(chaining) = self.alg else { return Err(Refusal::Panic(BAD_PARAMETERS)) };
        let iv = if chaining == Chaining::Ecb { &[][..] } else { iv };
        let mode = modes::new(chaining, self.mode == MODE_ENCRYPT, key, iv).ok_or(Refusal::Panic(BAD_PARAMETERS))?;
        self.active = Active::Cipher { mode, pending: Zeroizing::new([0; BLOCK]), npend: 0 };
        Ok(())
    }

    /// Bytes held back by a block mode (at most 15).
    pub(crate) fn pending(&self) -> usize {
        match &self.active {
            Active::Cipher { npend, .. } => *npend,
            _ => 0,
        }
    }

    /// The output `TEE_CipherUpdate` (or `DoFinal` when `last`) of `n`
    /// input bytes produces. Panics when not initialised;
    /// `BAD_PARAMETERS` when a block mode's final input is not whole
    /// blocks.
    pub(crate) fn cipher_out_len(&self, n: usize, last: bool) -> Res<usize> {
        let Active::Cipher { npend, .. } = &self.active else { return Err(Refusal::Panic(BAD_STATE)) };
        let Alg::Cipher(chaining) = self.alg else { return Err(Refusal::Panic(BAD_STATE)) };
        if !chaining.is_block() {
            return Ok(n);
        }
        let total = npend.checked_add(n).ok_or(Refusal::Code(BAD_PARAMETERS))?;
        if last && total % BLOCK != 0 {
            return Err(Refusal::Code(BAD_PARAMETERS));
        }
        Ok(total - total % BLOCK)
    }

    /// `TEE_CipherUpdate`/`DoFinal` after [`Self::cipher_out_len`] said
    /// how much output there is room for; a final call returns to the
    /// initial state.
    pub(crate) fn cipher_update(&mut self, io: Io<'_>, last: bool) -> Res<usize> {
        let out = self.cipher_out_len(io.in_len(), last)?;
        let Active::Cipher { mode, pending, npend } = &mut self.active else { return Err(Refusal::Panic(BAD_STATE)) };
        match io {
            Io::InPlace(buf) => {
                debug_assert_eq!(*npend, 0);
                let (whole, tail) = buf.split_at_mut(out);
                mode.run(InOutBuf::from(whole));
                pending[..tail.len()].copy_from_slice(tail);
                *npend = tail.len();
            }
            Io::Split(mut src, dst) => {
                let mut dst = &mut dst[..out];
                if *npend > 0 {
                    let take = src.len().min(BLOCK - *npend);
                    pending[*npend..*npend + take].copy_from_slice(&src[..take]);
                    *npend += take;
                    src = &src[take..];
                    if *npend == BLOCK {
                        let (first, rest) = dst.split_at_mut(BLOCK);
                        first.copy_from_slice(&pending[..]);
                        mode.run(InOutBuf::from(first));
                        dst = rest;
                        *npend = 0;
                    }
                }
                let n = dst.len();
                let io = InOutBuf::new(&src[..n], dst).map_err(|_| Refusal::Panic(BAD_STATE))?;
                mode.run(io);
                let tail = &src[n..];
                pending[*npend..*npend + tail.len()].copy_from_slice(tail);
                *npend += tail.len();
            }
        }
        if last {
            self.active = Active::Idle;
        }
        Ok(out)
    }

    /// `TEE_AEInit`: panics for another class or no key; `NOT_SUPPORTED`
    /// for a tag length GCM does not take or an empty nonce.
    pub(crate) fn ae_init(&mut self, nonce: &[u8], tag_bits: u32) -> Res<()> {
        let key = self.key_for(|a| a == Alg::Gcm)?;
        let gcm = Gcm::new(key, nonce, tag_bits, self.mode == MODE_ENCRYPT).ok_or(Refusal::Code(NOT_SUPPORTED))?;
        self.active = Active::Ae(Box::new(gcm));
        Ok(())
    }

    fn gcm(&mut self) -> Res<&mut Gcm> {
        match &mut self.active {
            Active::Ae(g) => Ok(g),
            _ => Err(Refusal::Panic(BAD_STATE)),
        }
    }

    /// `TEE_AEUpdateAAD`: panics when not initialised or after payload.
    pub(crate) fn ae_aad(&mut self, data: &[u8]) -> Res<()> {
        self.gcm()?.aad(data).map_err(|_| Refusal::Panic(BAD_STATE))
    }

    /// The tag length (bytes) of the AE operation in progress.
    pub(crate) fn ae_tag_len(&mut self) -> Res<usize> {
        Ok(self.gcm()?.tag_len())
    }

    /// `TEE_AEUpdate`: output as long as the input.
    pub(crate) fn ae_update(&mut self, io: Io<'_>) -> Res<usize> {
        let g = self.gcm()?;
        let n = io.in_len();
        let io = match io {
            Io::InPlace(b) => InOutBuf::from(b),
            Io::Split(s, d) => InOutBuf::new(s, &mut d[..n]).map_err(|_| Refusal::Panic(BAD_STATE))?,
        };
        g.update(io).map_err(|_| Refusal::Code(BAD_PARAMETERS))?;
        Ok(n)
    }

    /// The tag of the AE computation; it returns to the initial state.
    pub(crate) fn ae_finish(&mut self) -> Res<Zeroizing<[u8; BLOCK]>> {
        match std::mem::replace(&mut self.active, Active::Idle) {
            Active::Ae(g) => Ok(g.finish()),
            other => {
                self.active = other;
                Err(Refusal::Panic(BAD_STATE))
            }
        }
    }

    /// `TEE_DigestUpdate`: panics for another class.
    pub(crate) fn digest_update(&mut self, data: &[u8]) -> Res<()> {
        match &mut self.active {
            Active::Digest(h) => {
                h.update(data);
                Ok(())
            }
            _ => Err(Refusal::Panic(BAD_PARAMETERS)),
        }
    }

    /// `TEE_DigestDoFinal` into `out` (`Short(32)` when smaller; nothing
    /// is consumed then); the digest starts over.
    pub(crate) fn digest_final(&mut self, data: &[u8], out: &mut [u8]) -> Res<usize> {
        let Active::Digest(h) = &mut self.active else { return Err(Refusal::Panic(BAD_PARAMETERS)) };
        if out.len() < SHA256_LEN {
            return Err(Refusal::Short(SHA256_LEN));
        }
        h.update(data);
        out[..SHA256_LEN].copy_from_slice(&h.finalize_reset());
        Ok(SHA256_LEN)
    }

    /// `TEE_MACInit` (HMAC takes no IV): panics for another class or no key.
    pub(crate) fn mac_init(&mut self) -> Res<()> {
        let key = self.key_for(|a| a == Alg::HmacSha256)?;
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Refusal::Panic(BAD_PARAMETERS))?;
        self.active = Active::Mac(Box::new(mac));
        Ok(())
    }

    /// `TEE_MACUpdate`: panics when not initialised.
    pub(crate) fn mac_update(&mut self, data: &[u8]) -> Res<()> {
        match &mut self.active {
            Active::Mac(m) => {
                m.update(data);
                Ok(())
            }
            _ => Err(Refusal::Panic(BAD_STATE)),
        }
    }

    /// `TEE_MACComputeFinal` into `out` (`Short(32)` when smaller, nothing
    /// consumed); back to the initial state.
    pub(crate) fn mac_compute(&mut self, data: &[u8], out: &mut [u8]) -> Res<usize> {
        if !matches!(self.active, Active::Mac(_)) {
            return Err(Refusal::Panic(BAD_STATE));
        }
        if out.len() < SHA256_LEN {
            return Err(Refusal::Short(SHA256_LEN));
        }
        let Active::Mac(mut m) = std::mem::replace(&mut self.active, Active::Idle) else {
            return Err(Refusal::Panic(BAD_STATE));
        };
        m.update(data);
        out[..SHA256_LEN].copy_from_slice(&m.finalize().into_bytes());
        Ok(SHA256_LEN)
    }

    /// `TEE_MACCompareFinal`: `MAC_INVALID` unless `mac` is the whole MAC
    /// (compared in constant time); back to the initial state.
    pub(crate) fn mac_compare(&mut self, data: &[u8], mac: &[u8]) -> Res<()> {
        let Active::Mac(mut m) = std::mem::replace(&mut self.active, Active::Idle) else {
            return Err(Refusal::Panic(BAD_STATE));
        };
        m.update(data);
        m.verify_slice(mac).map_err(|_| Refusal::Code(MAC_INVALID))
    }
}

/// Constant-time equality of two byte strings of the same length.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn aes_key(k: &[u8]) -> Object {
        let mut o = Object::new(KeyType::Aes, k.len() as u32 * 8).unwrap();
        o.populate(k).unwrap();
        o
    }

    const SP_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const SP_PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    /// Runs `alg` over SP 800-38A's plaintext in pieces of `step`, split
    /// buffers and in place, and checks the published ciphertext.
    fn check_sp800_38a(alg: u32, iv: &str, ct: &str) {
        let (key, pt, iv, ct) = (aes_key(&hex(SP_KEY)), hex(SP_PT), hex(iv), hex(ct));
        for (mode, from, to) in [(MODE_ENCRYPT, &pt, &ct), (MODE_DECRYPT, &ct, &pt)] {
            for step in [1, 5, 16, 20, 64] {
                let mut op = Operation::new(alg, mode, 128).unwrap();
                op.set_key(Some(&key)).unwrap();
                op.cipher_init(&iv).unwrap();
                let mut out = vec![0u8; from.len()];
                let mut at = 0;
                let chunks: Vec<&[u8]> = from.chunks(step).collect();
                for (i, c) in chunks.iter().enumerate() {
                    let last = i + 1 == chunks.len();
                    let n = op.cipher_out_len(c.len(), last).unwrap();
                    at += op.cipher_update(Io::Split(c, &mut out[at..at + n]), last).unwrap();
                }
                assert_eq!(&out, to, "alg {alg:#x} mode {mode} step {step}");
                // In place, whole input at once.
                op.cipher_init(&iv).unwrap();
                let mut buf = from.clone();
                assert_eq!(op.cipher_update(Io::InPlace(&mut buf), true).unwrap(), buf.len());
                assert_eq!(&buf, to);
            }
        }
    }

    #[test]
    fn sp800_38a_ecb_cbc_ctr_aes128() {
        check_sp800_38a(
            ALG_AES_ECB_NOPAD,
            "",
            "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4",
        );
        check_sp800_38a(
            ALG_AES_CBC_NOPAD,
            "000102030405060708090a0b0c0d0e0f",
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
        );
        check_sp800_38a(
            ALG_AES_CTR,
            "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
        );
    }

    #[test]
    fn block_modes_refuse_a_partial_final_block_and_report_sizes() {
        let key = aes_key(&[1; 16]);
        let mut op = Operation::new(ALG_AES_CBC_NOPAD, MODE_ENCRYPT, 256).unwrap();
        assert_eq!(op.cipher_out_len(16, false), Err(Refusal::Panic(BAD_STATE)));
        assert_eq!(op.cipher_init(&[0; 16]), Err(Refusal::Panic(BAD_STATE)), "no key");
        op.set_key(Some(&key)).unwrap();
        assert_eq!(op.cipher_init(&[0; 8]), Err(Refusal::Panic(BAD_PARAMETERS)), "short IV");
        op.cipher_init(&[0; 16]).unwrap();
        assert_eq!(op.set_key(None), Err(Refusal::Panic(BAD_STATE)), "key change while active");
        let mut out = [0u8; 32];
        assert_eq!(op.cipher_update(Io::Split(&[0; 10], &mut out[..0]), false), Ok(0));
        assert_eq!(op.pending(), 10);
        assert_eq!(op.cipher_out_len(7, false), Ok(16));
        assert_eq!(op.cipher_out_len(5, true), Err(Refusal::Code(BAD_PARAMETERS)));
        assert_eq!(op.cipher_out_len(22, true), Ok(32));
        let info = op.info();
        assert_eq!(
            (info.class, info.key_bits, info.max_key_bits, info.handle_state),
            (CLASS_CIPHER, 128, 256, HANDLE_FLAG_KEY_SET | HANDLE_FLAG_INITIALIZED)
        );
    }

    #[test]
    fn allocate_refuses_what_is_not_there() {
        for (alg, mode, bits) in [
            (ALG_AES_CTR, MODE_DIGEST, 128),
            (ALG_AES_CTR, MODE_ENCRYPT, 100),
            (ALG_SHA256, MODE_ENCRYPT, 0),
            (ALG_HMAC_SHA256, MODE_MAC, 128),
            (0x1000_0310, MODE_ENCRYPT, 128),
        ] {
            assert_eq!(Operation::new(alg, mode, bits).err(), Some(NOT_SUPPORTED), "{alg:#x} {mode} {bits}");
        }
    }

    #[test]
    fn sha256_abc_and_short_buffer() {
        let mut op = Operation::new(ALG_SHA256, MODE_DIGEST, 0).unwrap();
        let mut small = [0u8; 31];
        op.digest_update(b"a").unwrap();
        assert_eq!(op.digest_final(b"bc", &mut small), Err(Refusal::Short(32)));
        let mut out = [0u8; 40];
        assert_eq!(op.digest_final(b"bc", &mut out), Ok(32));
        assert_eq!(out[..32].to_vec(), hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(op.digest_final(b"abc", &mut out), Ok(32), "starts over");
        assert_eq!(out[..32].to_vec(), hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(op.mac_update(b"x"), Err(Refusal::Panic(BAD_STATE)));
        assert_eq!(op.set_key(None), Err(Refusal::Panic(BAD_STATE)));
    }

    /// RFC 4231 test case 2 ("Jefe", a generic secret) and 4 (25 bytes,
    /// an HMAC-SHA256 key).
    #[test]
    fn hmac_sha256_rfc4231() {
        let mut jefe = Object::new(KeyType::GenericSecret, 256).unwrap();
        jefe.populate(b"Jefe").unwrap();
        let mut op = Operation::new(ALG_HMAC_SHA256, MODE_MAC, 256).unwrap();
        op.set_key(Some(&jefe)).unwrap();
        op.mac_init().unwrap();
        op.mac_update(b"what do ya want ").unwrap();
        let mut out = [0u8; 32];
        assert_eq!(op.mac_compute(b"for nothing?", &mut out), Ok(32));
        assert_eq!(out.to_vec(), hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));

        let mut k = Object::new(KeyType::HmacSha256, 256).unwrap();
        k.populate(&hex("0102030405060708090a0b0c0d0e0f10111213141516171819")).unwrap();
        let mut op = Operation::new(ALG_HMAC_SHA256, MODE_MAC, 256).unwrap();
        op.set_key(Some(&k)).unwrap();
        op.mac_init().unwrap();
        let want = hex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
        assert_eq!(op.mac_compare(&[0xcd; 50], &want), Ok(()));
        op.mac_init().unwrap();
        let mut bad = want.clone();
        bad[31] ^= 1;
        assert_eq!(op.mac_compare(&[0xcd; 50], &bad), Err(Refusal::Code(MAC_INVALID)));
        op.mac_init().unwrap();
        assert_eq!(op.mac_compare(&[0xcd; 50], &want[..16]), Err(Refusal::Code(MAC_INVALID)));
        assert_eq!(op.mac_update(b"x"), Err(Refusal::Panic(BAD_STATE)), "final ends the MAC");
        let aes = aes_key(&[0; 32]);
        assert_eq!(op.set_key(Some(&aes)), Err(Refusal::Panic(BAD_PARAMETERS)), "wrong key type");
        assert!(same(b"ab", b"ab") && !same(b"ab", b"ac") && !same(b"a", b"ab"));
    }
}
