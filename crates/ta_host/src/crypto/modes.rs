//! AES in the GP cipher modes (ECB and CBC without padding, CTR) as one
//! object that turns input bytes into output bytes, built on the RustCrypto
//! `aes`, `ecb`, `cbc` and `ctr` crates. Key schedules are wiped when the
//! object is dropped (the crates' `zeroize` feature).

use aes::cipher::consts::U16;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InOutBuf, KeyInit, KeyIvInit, StreamCipher};
use aes::{Aes128, Aes192, Aes256};

/// The AES block size in bytes.
pub(crate) const BLOCK: usize = 16;

/// A keyed cipher mode running over the bytes of an [`InOutBuf`] (in
/// place or input to output in one pass).
pub(crate) trait Mode: Send {
    /// Runs the mode over `io`; block modes get whole blocks only.
    fn run(&mut self, io: InOutBuf<'_, '_, u8>);
}

struct Enc<M>(M);
struct Dec<M>(M);
struct Stream<S>(S);

impl<M: BlockModeEncrypt<BlockSize = U16> + Send> Mode for Enc<M> {
    fn run(&mut self, io: InOutBuf<'_, '_, u8>) {
        let (blocks, tail) = io.into_chunks::<U16>();
        debug_assert!(tail.is_empty());
        self.0.encrypt_blocks_inout(blocks);
    }
}

impl<M: BlockModeDecrypt<BlockSize = U16> + Send> Mode for Dec<M> {
    fn run(&mut self, io: InOutBuf<'_, '_, u8>) {
        let (blocks, tail) = io.into_chunks::<U16>();
        debug_assert!(tail.is_empty());
        self.0.decrypt_blocks_inout(blocks);
    }
}

impl<S: StreamCipher + Send> Mode for Stream<S> {
    fn run(&mut self, io: InOutBuf<'_, '_, u8>) {
        self.0.apply_keystream_inout(io);
    }
}

/// The chaining of a GP AES cipher algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chaining {
    /// `TEE_ALG_AES_ECB_NOPAD`.
    Ecb,
    /// `TEE_ALG_AES_CBC_NOPAD`.
    Cbc,
    /// `TEE_ALG_AES_CTR`: a 128-bit big-endian counter block.
    Ctr,
    /// The CTR of GCM: the low 32 bits count.
    Ctr32,
}

impl Chaining {
    /// Whether output comes in whole blocks only.
    pub(crate) fn is_block(self) -> bool {
        matches!(self, Chaining::Ecb | Chaining::Cbc)
    }

    /// The IV length the mode takes (0: none).
    pub(crate) fn iv_len(self) -> usize {
        if self == Chaining::Ecb { 0 } else { BLOCK }
    }
}

/// A keyed mode; `None` when the key is not 16, 24 or 32 bytes or the IV
/// not [`Chaining::iv_len`] bytes.
pub(crate) fn new(chaining: Chaining, encrypt: bool, key: &[u8], iv: &[u8]) -> Option<Box<dyn Mode>> {
    fn with<A>(chaining: Chaining, encrypt: bool, key: &[u8], iv: &[u8]) -> Option<Box<dyn Mode>>
    where
        A: aes::cipher::BlockCipherEncrypt<BlockSize = U16>
            + aes::cipher::BlockCipherDecrypt<BlockSize = U16>
            + KeyInit
            + Send
            + 'static,
    {
        Some(match (chaining, encrypt) {
            (Chaining::Ecb, true) => Box::new(Enc(ecb::Encryptor::<A>::new_from_slice(key).ok()?)),
            (Chaining::Ecb, false) => Box::new(Dec(ecb::Decryptor::<A>::new_from_slice(key).ok()?)),
            (Chaining::Cbc, true) => Box::new(Enc(cbc::Encryptor::<A>::new_from_slices(key, iv).ok()?)),
            (Chaining::Cbc, false) => Box::new(Dec(cbc::Decryptor::<A>::new_from_slices(key, iv).ok()?)),
            (Chaining::Ctr, _) => Box::new(Stream(ctr::Ctr128BE::<A>::new_from_slices(key, iv).ok()?)),
            (Chaining::Ctr32, _) => Box::new(Stream(ctr::Ctr32BE::<A>::new_from_slices(key, iv).ok()?)),
        })
    }
    if iv.len() != chaining.iv_len() {
        return None;
    }
    match key.len() {
        16 => with::<Aes128>(chaining, encrypt, key, iv),
        24 => with::<Aes192>(chaining, encrypt, key, iv),
        32 => with::<Aes256>(chaining, encrypt, key, iv),
        _ => None,
    }
}

/// AES of one block under `key` (16, 24 or 32 bytes; else `None`).
pub(crate) fn encrypt_block(key: &[u8], block: &[u8; BLOCK]) -> Option<[u8; BLOCK]> {
    let mut out = *block;
    new(Chaining::Ecb, true, key, &[])?.run(InOutBuf::from(&mut out[..]));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// NIST SP 800-38A F.1.1 (ECB-AES128), first block.
    #[test]
    fn ecb_block_of_sp800_38a() {
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let pt: [u8; 16] = hex("6bc1bee22e409f96e93d7e117393172a").try_into().unwrap();
        assert_eq!(encrypt_block(&key, &pt).unwrap().to_vec(), hex("3ad77bb40d7a3660a89ecaf32466ef97"));
        assert!(encrypt_block(&key[..15], &pt).is_none());
    }

    #[test]
    fn wrong_iv_length_is_refused() {
        let key = [0u8; 16];
        assert!(new(Chaining::Cbc, true, &key, &[0; 15]).is_none());
        assert!(new(Chaining::Ecb, true, &key, &[0; 16]).is_none());
        assert!(new(Chaining::Ctr, true, &key, &[0; 16]).is_some());
    }
}
