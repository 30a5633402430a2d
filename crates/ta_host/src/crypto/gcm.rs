//! AES-GCM as a stream (GP's `TEE_AEInit`, `TEE_AEUpdateAAD`, `TEE_AEUpdate`,
//! `TEE_AE*Final`), composed from the RustCrypto `aes`, `ctr` and `ghash`
//! crates as NIST SP 800-38D defines it: `H = E(K, 0)`, the pre-counter
//! block `J0` from the nonce, CTR with a 32-bit counter from `inc32(J0)`,
//! and the tag `GHASH(A || C || lengths) ^ E(K, J0)`. Only the partial GHASH
//! block (at most 15 bytes) is buffered, so any amount of data streams
//! through in bounded memory. Checked against the one-shot `aes-gcm` crate.

use aes::cipher::InOutBuf;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::Zeroizing;

use super::modes::{self, BLOCK, Chaining, Mode};

/// The most payload GCM may process: 2^39 - 256 bits.
const MAX_PAYLOAD: u64 = (1 << 36) - 32;

/// Tag lengths (bits) accepted, as GP lists them for AES-GCM.
pub(crate) const TAG_BITS: [u32; 5] = [128, 120, 112, 104, 96];

/// One AES-GCM computation in progress.
///
/// # Invariants
/// `npend < 16`; once `payload` is set no more AAD is taken.
pub(crate) struct Gcm {
    ctr: Box<dyn Mode>,
    ghash: GHash,
    ek_j0: Zeroizing<[u8; BLOCK]>,
    pending: Zeroizing<[u8; BLOCK]>,
    npend: usize,
    aad_len: u64,
    ct_len: u64,
    payload: bool,
    tag_len: usize,
    encrypt: bool,
}

/// A GCM call out of order or past GCM's limits.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Misuse;

impl Gcm {
    /// Starts a computation; `None` for a key that is not an AES key, an
    /// empty nonce or a tag length not in [`TAG_BITS`].
    pub(crate) fn new(key: &[u8], nonce: &[u8], tag_bits: u32, encrypt: bool) -> Option<Gcm> {
        if nonce.is_empty() || !TAG_BITS.contains(&tag_bits) {
            return None;
        }
        let h = Zeroizing::new(modes::encrypt_block(key, &[0; BLOCK])?);
        let ghash = GHash::new(&ghash::Key::from(*h));
        let mut j0 = Zeroizing::new([0u8; BLOCK]);
        if nonce.len() == 12 {
            j0[..12].copy_from_slice(nonce);
            j0[15] = 1;
        } else {
            let mut g = ghash.clone();
            g.update_padded(nonce);
            let mut lens = [0u8; BLOCK];
            lens[8..].copy_from_slice(&(nonce.len() as u64).wrapping_mul(8).to_be_bytes());
            g.update(&[lens.into()]);
            j0.copy_from_slice(&g.finalize());
        }
        let ek_j0 = Zeroizing::new(modes::encrypt_block(key, &j0)?);
        let mut cb = *j0;
        let low = u32::from_be_bytes([cb[12], cb[13], cb[14], cb[15]]).wrapping_add(1);
        cb[12..].copy_from_slice(&low.to_be_bytes());
        let ctr = modes::new(Chaining::Ctr32, encrypt, key, &cb)?;
        Some(Gcm {
            ctr,
            ghash,
            ek_j0,
            pending: Zeroizing::new([0; BLOCK]),
            npend: 0,
            aad_len: 0,
            ct_len: 0,
            payload: false,
            tag_len: tag_bits as usize / 8,
            encrypt,
        })
    }

    /// The tag length in bytes.
    pub(crate) fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn absorb(&mut self, mut data: &[u8]) {
        if self.npend > 0 {
            let take = data.len().min(BLOCK - self.npend);
            self.pending[self.npend..self.npend + take].copy_from_slice(&data[..take]);
            self.npend += take;
            data = &data[take..];
            if self.npend < BLOCK {
                return;
            }
            let block = ghash::Block::from(*self.pending);
            self.ghash.update(&[block]);
            self.npend = 0;
        }
        let (blocks, tail) = ghash::Block::slice_as_chunks(data);
        self.ghash.update(blocks);
        self.pending[..tail.len()].copy_from_slice(tail);
        self.npend = tail.len();
    }

    fn flush(&mut self) {
        if self.npend > 0 {
            self.ghash.update_padded(&self.pending[..self.npend]);
            self.npend = 0;
        }
    }

    /// Takes additional authenticated data; [`Misuse`] once payload came.
    pub(crate) fn aad(&mut self, data: &[u8]) -> Result<(), Misuse> {
        if self.payload {
            return Err(Misuse);
        }
        self.aad_len = self.aad_len.checked_add(data.len() as u64).filter(|n| *n < 1 << 61).ok_or(Misuse)?;
        self.absorb(data);
        Ok(())
    }

    /// Encrypts or decrypts `io` (output as long as the input); [`Misuse`]
    /// past GCM's payload limit.
    pub(crate) fn update(&mut self, mut io: InOutBuf<'_, '_, u8>) -> Result<(), Misuse> {
        let n = io.len() as u64;
        let total = self.ct_len.checked_add(n).filter(|t| *t <= MAX_PAYLOAD).ok_or(Misuse)?;
        if !self.payload {
            self.flush();
            self.payload = true;
        }
        self.ct_len = total;
        if self.encrypt {
            self.ctr.run(io.reborrow());
            self.absorb(io.get_out());
        } else {
            self.absorb(io.get_in());
            self.ctr.run(io);
        }
        Ok(())
    }

    /// The full 16-byte tag; the computation is over.
    pub(crate) fn finish(mut self) -> Zeroizing<[u8; BLOCK]> {
        if !self.payload {
            self.flush();
        }
        self.flush();
        let mut lens = [0u8; BLOCK];
        lens[..8].copy_from_slice(&self.aad_len.wrapping_mul(8).to_be_bytes());
        lens[8..].copy_from_slice(&self.ct_len.wrapping_mul(8).to_be_bytes());
        self.ghash.update(&[lens.into()]);
        let s = self.ghash.finalize();
        let mut tag = Zeroizing::new([0u8; BLOCK]);
        for (t, (a, b)) in tag.iter_mut().zip(s.iter().zip(self.ek_j0.iter())) {
            *t = a ^ b;
        }
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{AeadInOut, KeyInit as _};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Runs our GCM over `pt` in pieces of `step`, AAD in pieces too.
    fn ours(key: &[u8], nonce: &[u8], aad: &[u8], pt: &[u8], step: usize) -> (Vec<u8>, [u8; 16]) {
        let mut g = Gcm::new(key, nonce, 128, true).unwrap();
        for c in aad.chunks(step.max(1)) {
            g.aad(c).unwrap();
        }
        let mut ct = pt.to_vec();
        for c in ct.chunks_mut(step.max(1)) {
            g.update(InOutBuf::from(c)).unwrap();
        }
        (ct, *g.finish())
    }

    /// Test case 4 of the GCM specification (McGrew and Viega): AES-128,
    /// 96-bit IV, 20 bytes of AAD, 60 bytes of plaintext.
    #[test]
    fn gcm_spec_test_case_4() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let iv = hex("cafebabefacedbaddecaf888");
        let pt = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = hex(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        );
        let tag = hex("5bc94fbc3221a5db94fae95ae7121a47");
        for step in [1, 7, 16, 17, 1000] {
            let (c, t) = ours(&key, &iv, &aad, &pt, step);
            assert_eq!((c, t.to_vec()), (ct.clone(), tag.clone()), "step {step}");
        }
        // Decrypting gives the plaintext and the same tag.
        let mut g = Gcm::new(&key, &iv, 128, false).unwrap();
        g.aad(&aad).unwrap();
        let mut back = ct.clone();
        g.update(InOutBuf::from(&mut back[..])).unwrap();
        assert_eq!(back, pt);
        assert_eq!(g.finish().to_vec(), tag);
    }

    /// Against the one-shot `aes-gcm` crate: key sizes, nonce lengths
    /// (96-bit and not), empty and odd lengths, streamed in odd pieces.
    #[test]
    fn matches_the_aes_gcm_crate() {
        let mut r = fastrand::Rng::with_seed(7);
        let mut rng = || r.u8(..);
        for (klen, nlen, alen, plen) in [(16, 12, 0, 0), (16, 12, 13, 77), (24, 12, 32, 33), (32, 12, 1, 4096)] {
            let key: Vec<u8> = (0..klen).map(|_| rng()).collect();
            let nonce: Vec<u8> = (0..nlen).map(|_| rng()).collect();
            let aad: Vec<u8> = (0..alen).map(|_| rng()).collect();
            let pt: Vec<u8> = (0..plen).map(|_| rng()).collect();
            let mut want = pt.clone();
            let tag = match klen {
                16 => aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap().encrypt_inout_detached(
                    nonce.as_slice().try_into().unwrap(),
                    &aad,
                    want.as_mut_slice().into(),
                ),
                24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(&key)
                    .unwrap()
                    .encrypt_inout_detached(nonce.as_slice().try_into().unwrap(), &aad, want.as_mut_slice().into()),
                _ => aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap().encrypt_inout_detached(
                    nonce.as_slice().try_into().unwrap(),
                    &aad,
                    want.as_mut_slice().into(),
                ),
            }
            .unwrap();
            for step in [1, 5, 16, 100] {
                let (c, t) = ours(&key, &nonce, &aad, &pt, step);
                assert_eq!(c, want, "k{klen} a{alen} p{plen} step {step}");
                assert_eq!(t.to_vec(), tag.to_vec());
            }
        }
    }

    /// GCM spec test case 6: a 60-byte IV (J0 through GHASH).
    #[test]
    fn gcm_spec_test_case_6_long_iv() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let iv = hex(
            "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
        );
        let pt = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = hex(
            "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
        );
        let (c, t) = ours(&key, &iv, &aad, &pt, 9);
        assert_eq!(c, ct);
        assert_eq!(t.to_vec(), hex("619cc5aefffe0bfa462af43c1699d050"));
    }

    #[test]
    fn aad_after_payload_and_bad_parameters_are_refused() {
        let mut g = Gcm::new(&[1; 16], &[2; 12], 96, true).unwrap();
        let mut b = [0u8; 3];
        g.update(InOutBuf::from(&mut b[..])).unwrap();
        assert_eq!(g.aad(b"x"), Err(Misuse));
        assert!(Gcm::new(&[1; 16], &[], 128, true).is_none());
        assert!(Gcm::new(&[1; 16], &[2; 12], 64, true).is_none());
        assert!(Gcm::new(&[1; 15], &[2; 12], 128, true).is_none());
    }
}
