//! The FWHT codec device (like the kernel's `vicodec`): encodes raw 4:2:0
//! frames into FWHT frames as [`Master::VideoEncoder`] and decodes them as
//! [`Master::VideoDecoder`], reading and writing buffers only through the
//! firewall. The stream state (reference frame, GOP position) is the
//! caller's [`Encoder`]/[`Decoder`], one per open codec instance.
//!
//! **Secure mode** follows from the buffers: when the input of an
//! operation lies in protected memory, its output must too. Decoding a
//! protected bitstream into a buffer outside every protected region (or
//! encoding protected frames into one) is refused before anything is read:
//! the firewall logs a violation for the output range and the operation
//! fails with [`DeviceError::Access`], so the V4L2 layer returns the buffer
//! with the error flag. Whether the device may touch the protected buffers
//! at all is the firewall's rights (the decoder may write secure-video
//! memory; the display may read it).

use zeroize::Zeroizing;

use super::fwht::{Decoder, Encoder, FwhtError, Header, RawFrame};
use super::{DeviceError, read_sg, sg_len, write_sg};
use crate::{AccessError, AccessKind, Master, PhysRange, Platform};

/// Whether any byte of `sg` lies in a protected (firewalled) region.
pub fn is_protected(platform: &Platform, sg: &[PhysRange]) -> bool {
    let regions = platform.firewall().regions();
    sg.iter().any(|r| regions.iter().any(|g| g.range.overlaps(r)))
}

/// Whether every byte of `sg` lies in a protected region.
fn all_protected(platform: &Platform, sg: &[PhysRange]) -> bool {
    let regions = platform.firewall().regions();
    !sg.is_empty() && sg.iter().all(|r| regions.iter().any(|g| g.range.contains_range(r)))
}

/// Refuses a secure-mode operation whose output is not protected: logged
/// as a violation of `device` writing `out`.
fn check_secure(
    platform: &Platform,
    device: Master,
    input: &[PhysRange],
    out: &[PhysRange],
) -> Result<(), DeviceError> {
    if is_protected(platform, input) && !all_protected(platform, out) {
        let first = out.first().copied().ok_or(DeviceError::BufferTooSmall { device, needed: 1, have: 0 })?;
        let why = "secure mode: protected input, unprotected output".to_owned();
        let v = platform.firewall().refuse(device, first, AccessKind::Write, why);
        return Err(DeviceError::Access { device, source: AccessError::Denied(v) });
    }
    Ok(())
}

fn codec_err(device: Master, source: FwhtError) -> DeviceError {
    DeviceError::Fwht { device, source }
}

/// Decodes the FWHT frame in the first `len` bytes of `src` into `dst`
/// (laid out as `frame`) as [`Master::VideoDecoder`]. Returns its header.
///
/// # Errors
/// [`DeviceError::Access`] for a secure-mode refusal or a refused access;
/// [`DeviceError::BufferTooSmall`] if `len` exceeds `src` or `dst` cannot
/// hold a frame; [`DeviceError::Fwht`] for a malformed frame (nothing is
/// written then).
pub fn decode(
    platform: &Platform,
    decoder: &mut Decoder,
    frame: RawFrame,
    src: &[PhysRange],
    len: u64,
    dst: &[PhysRange],
) -> Result<Header, DeviceError> {
    const ME: Master = Master::VideoDecoder;
    check_secure(platform, ME, src, dst)?;
    let needed = frame.size() as u64;
    if sg_len(dst) < needed {
        return Err(DeviceError::BufferTooSmall { device: ME, needed, have: sg_len(dst) });
    }
    // Bounded by the buffer, which the caller sized: no more than a frame
    // with every plane raw is ever read.
    let len = len.min(frame.max_coded_size() as u64);
    let mut coded = Zeroizing::new(vec![0u8; len as usize]);
    read_sg(platform, ME, src, 0, &mut coded)?;
    let mut out = Zeroizing::new(vec![0u8; frame.size()]);
    let hdr = decoder.decode(&coded, frame, &mut out).map_err(|e| codec_err(ME, e))?;
    write_sg(platform, ME, dst, 0, &out)?;
    Ok(hdr)
}

/// Encodes the raw frame at the start of `src` into `dst` as
/// [`Master::VideoEncoder`]; returns the coded length and the frame's header.
///
/// # Errors
/// As [`decode`]; [`DeviceError::BufferTooSmall`] also when the coded frame
/// does not fit `dst`.
pub fn encode(
    platform: &Platform,
    encoder: &mut Encoder,
    frame: RawFrame,
    src: &[PhysRange],
    dst: &[PhysRange],
    (i_qp, p_qp): (u16, u16),
) -> Result<(u64, Header), DeviceError> {
    const ME: Master = Master::VideoEncoder;
    check_secure(platform, ME, src, dst)?;
    let mut raw = Zeroizing::new(vec![0u8; frame.size()]);
    read_sg(platform, ME, src, 0, &mut raw)?;
    let coded = Zeroizing::new(encoder.encode(&raw, i_qp, p_qp).map_err(|e| codec_err(ME, e))?);
    if sg_len(dst) < coded.len() as u64 {
        return Err(DeviceError::BufferTooSmall { device: ME, needed: coded.len() as u64, have: sg_len(dst) });
    }
    write_sg(platform, ME, dst, 0, &coded)?;
    let hdr = Header::parse(&coded).map_err(|e| codec_err(ME, e))?;
    Ok((coded.len() as u64, hdr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UseCase;
    use crate::devices::fwht::RawFormat;

    fn setup() -> (Platform, PhysRange, PhysRange) {
        let p = Platform::embedded_default().unwrap();
        let normal = p.normal_memory()[0];
        let cv = p.carveout(UseCase::SecureVideo).unwrap().range;
        (p, normal, cv)
    }

    fn pattern(f: RawFrame) -> Vec<u8> {
        (0..f.size()).map(|i| ((i * 7) % 200 + (i / 97) % 50) as u8).collect()
    }

    #[test]
    fn normal_round_trip_through_the_firewall() {
        let (p, normal, _) = setup();
        let f = RawFrame::new(RawFormat::Nv12, 64, 64).unwrap();
        let raw_buf = [normal.subrange(0, 0x2000).unwrap()];
        let coded_buf = [normal.subrange(0x2000, 0x2000).unwrap()];
        let out_buf = [normal.subrange(0x4000, 0x2000).unwrap()];
        let raw = pattern(f);
        write_sg(&p, Master::NsCpu, &raw_buf, 0, &raw).unwrap();
        let (n, h) = encode(&p, &mut Encoder::new(f, 1), f, &raw_buf, &coded_buf, (1, 1)).unwrap();
        assert!(h.is_key_frame());
        let hdr = decode(&p, &mut Decoder::default(), f, &coded_buf, n, &out_buf).unwrap();
        assert!(hdr.is_key_frame());
        let mut out = vec![0; f.size()];
        read_sg(&p, Master::NsCpu, &out_buf, 0, &mut out).unwrap();
        assert!(raw.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 12));
        assert_eq!(p.firewall().violation_count(), 0);
    }

    #[test]
    fn secure_decode_into_secure_video_memory_and_refusal_into_normal() {
        let (p, normal, cv) = setup();
        let f = RawFrame::new(RawFormat::Yuv420, 64, 32).unwrap();
        let coded = Encoder::new(f, 1).encode(&pattern(f), 2, 2).unwrap();
        let bits = [cv.subrange(0, 0x2000).unwrap()];
        write_sg(&p, Master::SecureCpu, &bits, 0, &coded).unwrap();
        let fb = [cv.subrange(0x10_0000, 0x2000).unwrap()];
        decode(&p, &mut Decoder::default(), f, &bits, coded.len() as u64, &fb).unwrap();
        assert_eq!(p.firewall().violation_count(), 0);
        // The CPU cannot read the decoded frame.
        assert!(read_sg(&p, Master::NsCpu, &fb, 0, &mut [0u8; 16]).unwrap_err().violation().is_some());
        let before = p.firewall().violation_count();
        // A protected bitstream into normal memory: refused and logged, nothing written.
        let leak = [normal.subrange(0, 0x2000).unwrap()];
        write_sg(&p, Master::NsCpu, &leak, 0, &[0xaa; 0x2000]).unwrap();
        let e = decode(&p, &mut Decoder::default(), f, &bits, coded.len() as u64, &leak).unwrap_err();
        let v = e.violation().expect("a violation");
        assert_eq!((v.master, v.kind), (Master::VideoDecoder, AccessKind::Write));
        assert_eq!(p.firewall().violation_count(), before + 1);
        let mut back = vec![0u8; 0x2000];
        read_sg(&p, Master::NsCpu, &leak, 0, &mut back).unwrap();
        assert!(back.iter().all(|b| *b == 0xaa));
        // Same for the encoder with protected frames.
        let e = encode(&p, &mut Encoder::new(f, 1), f, &fb, &leak, (1, 1)).unwrap_err();
        assert_eq!(e.violation().unwrap().master, Master::VideoEncoder);
    }

    #[test]
    fn malformed_and_short_inputs() {
        let (p, normal, _) = setup();
        let f = RawFrame::new(RawFormat::Nv12, 32, 32).unwrap();
        let src = [normal.subrange(0, 0x1000).unwrap()];
        let dst = [normal.subrange(0x1000, 0x1000).unwrap()];
        write_sg(&p, Master::NsCpu, &src, 0, &[0x11; 0x1000]).unwrap();
        let e = decode(&p, &mut Decoder::default(), f, &src, 0x1000, &dst).unwrap_err();
        assert!(matches!(e, DeviceError::Fwht { device: Master::VideoDecoder, .. }), "{e}");
        let tiny = [normal.subrange(0x1000, 0x100).unwrap()];
        assert!(matches!(
            decode(&p, &mut Decoder::default(), f, &src, 0x1000, &tiny),
            Err(DeviceError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            encode(&p, &mut Encoder::new(f, 1), f, &src, &tiny[..0], (1, 1)),
            Err(DeviceError::BufferTooSmall { .. })
        ));
    }
}
