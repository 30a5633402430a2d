//! The display's atomic state (one CRTC, its primary plane, one connector)
//! and how a proposed state is set, checked and committed, in the order
//! of `drm_mode_atomic_ioctl`, `drm_atomic_check_only` and the atomic
//! helpers vkms uses. Legacy `SETCRTC`, `PAGE_FLIP` and `RMFB` build a
//! proposed state and go through the same check and commit.

use std::sync::Arc;

use teeheap_uapi::drm::*;
use zerocopy::FromBytes;

use super::fb::{Fb, MAX_SIZE};
use super::props::Prop;
use crate::error::{Errno, Error, Result, einval};

/// A property blob (`drm_property_blob`); its id is a mode-object id.
#[derive(Debug)]
pub struct Blob {
    /// Mode-object id.
    pub id: u32,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The primary plane's state.
#[derive(Clone, Debug, Default)]
pub struct PlaneState {
    /// Whether it is on the CRTC.
    pub crtc: bool,
    /// Its framebuffer.
    pub fb: Option<Arc<Fb>>,
    /// Destination rectangle on the CRTC.
    pub crtc_x: i32,
    /// See `crtc_x`.
    pub crtc_y: i32,
    /// See `crtc_x`.
    pub crtc_w: u32,
    /// See `crtc_x`.
    pub crtc_h: u32,
    /// Source rectangle in the framebuffer, 16.16 fixed point.
    pub src_x: u32,
    /// See `src_x`.
    pub src_y: u32,
    /// See `src_x`.
    pub src_w: u32,
    /// See `src_x`.
    pub src_h: u32,
}

/// The whole display state.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// CRTC `ACTIVE`.
    pub active: bool,
    /// CRTC `MODE_ID`; `enable` is `mode.is_some()`.
    pub mode: Option<Arc<Blob>>,
    /// The primary plane.
    pub plane: PlaneState,
    /// Whether the connector is routed to the CRTC.
    pub conn_crtc: bool,
    /// Connector `link-status` is Bad.
    pub link_bad: bool,
}

impl State {
    /// The CRTC's mode, if enabled.
    pub fn mode_info(&self) -> Option<DrmModeModeinfo> {
        self.mode.as_ref().and_then(|b| DrmModeModeinfo::read_from_bytes(&b.data).ok())
    }

    /// Whether the plane is scanned out (on an active CRTC with a
    /// framebuffer).
    pub fn visible(&self) -> bool {
        self.active && self.mode.is_some() && self.plane.crtc && self.plane.fb.is_some()
    }

    fn same_mode(&self, other: &State) -> bool {
        match (&self.mode, &other.mode) {
            (None, None) => true,
            (Some(a), Some(b)) => a.data == b.data,
            _ => false,
        }
    }
}

/// `drm_mode_convert_umode` + `drm_mode_validate_basic` + the mode
/// config's size limits.
///
/// # Errors
/// `ERANGE` for a clock or refresh past `INT_MAX`; `EINVAL` for a mode
/// the checks refuse.
pub fn check_mode(m: &DrmModeModeinfo) -> Result<()> {
    // Sync, interlace, skew, clock-doubling bits and the 3D mask; the type
    // bits are masked, not refused; aspect ratios 0-4 are known.
    const FLAG_ALL: u32 = 0x3ff | (1 << 12) | (1 << 13) | (0x1f << 14);
    const AR_MASK: u32 = 0xf << 19;
    if m.clock > i32::MAX as u32 || m.vrefresh > i32::MAX as u32 {
        return Err(Error::new(Errno::ERANGE, "mode clock out of range"));
    }
    let flags = m.flags & !AR_MASK;
    let bad = (m.flags & AR_MASK) >> 19 > 4
        || flags & !FLAG_ALL != 0
        || flags & (0x1f << 14) > 8 << 14
        || m.clock == 0
        || m.hdisplay == 0
        || m.hsync_start < m.hdisplay
        || m.hsync_end < m.hsync_start
        || m.htotal < m.hsync_end
        || m.vdisplay == 0
        || m.vsync_start < m.vdisplay
        || m.vsync_end < m.vsync_start
        || m.vtotal < m.vsync_end
        || u32::from(m.hdisplay) > MAX_SIZE
        || u32::from(m.vdisplay) > MAX_SIZE;
    if bad { Err(einval("invalid mode")) } else { Ok(()) }
}

/// `drm_framebuffer_check_src_coords`.
///
/// # Errors
/// `ENOSPC` if the source rectangle leaves the framebuffer.
pub fn check_src(p: &PlaneState, fb: &Fb) -> Result<()> {
    let (w, h) = (u64::from(fb.width) << 16, u64::from(fb.height) << 16);
    let (sx, sy, sw, sh) = (u64::from(p.src_x), u64::from(p.src_y), u64::from(p.src_w), u64::from(p.src_h));
    if sw > w || sx > w - sw || sh > h || sy > h - sh {
        return Err(Error::new(Errno::ENOSPC, "source rectangle outside the framebuffer"));
    }
    Ok(())
}

/// `drm_crtc_check_viewport`: the mode at `(x, y)` fits the framebuffer.
///
/// # Errors
/// `ENOSPC` if it does not.
pub fn check_viewport(x: u32, y: u32, m: &DrmModeModeinfo, fb: &Fb) -> Result<()> {
    let (hd, vd) = (u32::from(m.hdisplay), u32::from(m.vdisplay));
    if hd > fb.width || vd > fb.height || x > fb.width - hd || y > fb.height - vd {
        return Err(Error::new(Errno::ENOSPC, "mode does not fit the framebuffer"));
    }
    Ok(())
}

/// `drm_atomic_check_only` of `new` against `old`: the plane, CRTC and
/// modeset checks, then vkms's plane check (no scaling).
///
/// # Errors
/// `EINVAL`, `ERANGE` or `ENOSPC` as the kernel's checks.
pub fn check(old: &State, new: &State, allow_modeset: bool, event: bool) -> Result<()> {
    let p = &new.plane;
    match (p.crtc, &p.fb) {
        (true, None) => return Err(einval("CRTC set but no FB")),
        (false, Some(_)) => return Err(einval("FB set but no CRTC")),
        _ => {}
    }
    if let (true, Some(fb)) = (p.crtc, &p.fb) {
        if p.crtc_w > i32::MAX as u32
            || p.crtc_x > i32::MAX - p.crtc_w as i32
            || p.crtc_h > i32::MAX as u32
            || p.crtc_y > i32::MAX - p.crtc_h as i32
        {
            return Err(Error::new(Errno::ERANGE, "invalid CRTC coordinates"));
        }
        check_src(p, fb)?;
    }
    let enable = new.mode.is_some();
    if new.active && !enable {
        return Err(einval("CRTC active without a mode"));
    }
    if event && !new.active && !old.active {
        return Err(einval("requesting an event but the CRTC is off"));
    }
    if enable != new.conn_crtc {
        return Err(einval("enabled/connectors mismatch"));
    }
    let needs_modeset = !old.same_mode(new) || old.active != new.active || old.conn_crtc != new.conn_crtc;
    if new.plane.crtc && new.plane.fb.is_some() && enable {
        let scaled =
            p.src_w >> 16 != p.crtc_w || p.src_h >> 16 != p.crtc_h || p.src_w & 0xffff != 0 || p.src_h & 0xffff != 0;
        if scaled {
            return Err(Error::new(Errno::ERANGE, "invalid scaling of plane (vkms does not scale)"));
        }
    }
    if needs_modeset && !allow_modeset {
        return Err(einval("modeset required but not allowed"));
    }
    Ok(())
}

/// Which object an atomic property is set on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The CRTC.
    Crtc,
    /// The primary plane.
    Plane,
    /// The connector.
    Connector,
}

/// What setting a property asks of the caller beyond the state.
#[derive(Debug)]
pub enum SetEffect {
    /// Nothing more.
    None,
    /// `OUT_FENCE_PTR` at this user address (nonzero).
    OutFence(u64),
    /// `IN_FENCE_FD` of this fd (not -1).
    InFence(i32),
}

/// `drm_atomic_{crtc,plane,connector}_set_property` for everything that
/// needs no look-up beyond `fb` (the framebuffer `FB_ID` names, if any)
/// and `blob` (the blob `MODE_ID` names, if any).
///
/// # Errors
/// `EINVAL` for an immutable or legacy-only property, a mode blob of the
/// wrong size or with a bad mode, an unknown blob; `EACCES` for an
/// unknown CRTC id.
pub fn set_property(
    st: &mut State,
    target: Target,
    prop: Prop,
    value: u64,
    fb: Option<Arc<Fb>>,
    blob: Option<Arc<Blob>>,
) -> Result<SetEffect> {
    let crtc_ref = |v: u64| match v {
        0 => Ok(false),
        v if v == u64::from(super::CRTC_ID) => Ok(true),
        _ => Err(Error::new(Errno::EACCES, "invalid CRTC object id")),
    };
    match (target, prop) {
        (Target::Crtc, Prop::Active) => st.active = value != 0,
        (Target::Crtc, Prop::ModeId) => {
            if value == 0 {
                st.mode = None;
            } else {
                let b = blob.ok_or(einval("cannot find the mode blob"))?;
                if b.data.len() != size_of::<DrmModeModeinfo>() {
                    return Err(einval("mode blob of the wrong size"));
                }
                let m = DrmModeModeinfo::read_from_bytes(&b.data).map_err(|_| einval("mode blob"))?;
                // `drm_atomic_set_mode_prop_for_crtc`: any refusal of the
                // mode (ERANGE of a clock past INT_MAX too) is EINVAL.
                check_mode(&m).map_err(|_| einval("invalid mode in the MODE_ID blob"))?;
                st.mode = Some(b);
            }
        }
        (Target::Crtc, Prop::OutFencePtr) => {
            return Ok(if value == 0 { SetEffect::None } else { SetEffect::OutFence(value) });
        }
        (Target::Plane, Prop::FbId) => st.plane.fb = fb,
        (Target::Plane, Prop::InFenceFd) => {
            return Ok(if value as i64 == -1 { SetEffect::None } else { SetEffect::InFence(value as i32) });
        }
        (Target::Plane, Prop::CrtcId) => st.plane.crtc = crtc_ref(value)?,
        (Target::Plane, Prop::CrtcX) => st.plane.crtc_x = value as i32,
        (Target::Plane, Prop::CrtcY) => st.plane.crtc_y = value as i32,
        (Target::Plane, Prop::CrtcW) => st.plane.crtc_w = value as u32,
        (Target::Plane, Prop::CrtcH) => st.plane.crtc_h = value as u32,
        (Target::Plane, Prop::SrcX) => st.plane.src_x = value as u32,
        (Target::Plane, Prop::SrcY) => st.plane.src_y = value as u32,
        (Target::Plane, Prop::SrcW) => st.plane.src_w = value as u32,
        (Target::Plane, Prop::SrcH) => st.plane.src_h = value as u32,
        (Target::Connector, Prop::CrtcId) => st.conn_crtc = crtc_ref(value)?,
        (Target::Connector, Prop::LinkStatus) => {
            // Never from Good to Bad on a client's word (silently kept).
            if st.link_bad {
                st.link_bad = value != 0;
            }
        }
        (Target::Connector, Prop::Dpms) => return Err(einval("DPMS can only be set through the legacy uAPI")),
        _ => return Err(einval("unknown or immutable property")),
    }
    Ok(SetEffect::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode() -> Arc<Blob> {
        let m = super::super::MODES[0];
        Arc::new(Blob { id: 40, data: zerocopy::IntoBytes::as_bytes(&m).to_vec() })
    }

    #[test]
    fn check_rules() {
        let off = State::default();
        let mut on = State { active: true, mode: Some(mode()), conn_crtc: true, ..State::default() };
        assert!(check(&off, &on, true, false).is_ok(), "a mode with no plane is fine");
        assert_eq!(check(&off, &on, false, false).unwrap_err().errno(), Errno::EINVAL, "modeset not allowed");
        assert_eq!(check(&off, &off, false, true).unwrap_err().errno(), Errno::EINVAL, "event while off");
        on.conn_crtc = false;
        assert_eq!(check(&off, &on, true, false).unwrap_err().errno(), Errno::EINVAL, "no connector");
        on.conn_crtc = true;
        on.plane.crtc = true;
        assert_eq!(check(&off, &on, true, false).unwrap_err().errno(), Errno::EINVAL, "CRTC but no FB");
        let mut bad = super::super::MODES[0];
        bad.hsync_start = 10;
        assert_eq!(check_mode(&bad).unwrap_err().errno(), Errno::EINVAL);
        bad.clock = u32::MAX;
        assert_eq!(check_mode(&bad).unwrap_err().errno(), Errno::ERANGE);
        let mut st = State::default();
        assert_eq!(
            set_property(&mut st, Target::Plane, Prop::CrtcId, 99, None, None).unwrap_err().errno(),
            Errno::EACCES
        );
        assert_eq!(set_property(&mut st, Target::Plane, Prop::Type, 1, None, None).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(
            set_property(&mut st, Target::Crtc, Prop::ModeId, 5, None, None).unwrap_err().errno(),
            Errno::EINVAL,
            "unknown blob"
        );
    }
}
