//! How a device node of the model presents itself outside its ioctls: the
//! sysfs device a client finds through `/sys/dev/char/MAJ:MIN` or
//! `/sys/class/<class>/` (v4l-utils, libudev, GStreamer look there).
//!
//! A device kind declares its [`SysfsIdentity`] (class, name, the
//! attributes and `uevent` lines of its class); [`crate::Kernel::device_nodes`]
//! lists every node with one. The device numbers are not the model's: the
//! launcher gives each node a number of its own when it builds the run's
//! `/dev` (see docs/serving.md, "Devices").

/// A device's sysfs entry: `/sys/class/<class>/<name>`, its `uevent`
/// (`MAJOR`, `MINOR`, `DEVNAME` and [`Self::uevent`]) and a `subsystem`
/// link naming the class. (Class attributes such as V4L2's `name` are not
/// shown: the directory is borrowed from the host's sysfs, see
/// docs/serving.md.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysfsIdentity {
    /// The class (subsystem): `video4linux`, `drm`.
    pub class: &'static str,
    /// The device's name in its class: `video0`, `card1`.
    pub name: String,
    /// `uevent` lines after `DEVNAME`, as `KEY`, value (DRM's `DEVTYPE`).
    pub uevent: Vec<(&'static str, String)>,
}

/// A node under `/dev` and its sysfs identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// The path relative to `/dev` (`video0`, `dri/card1`); `DEVNAME`.
    pub path: String,
    /// What sysfs shows for it.
    pub sysfs: SysfsIdentity,
}

impl DeviceNode {
    /// A V4L2 video node: class `video4linux`.
    pub fn video(path: &str) -> DeviceNode {
        DeviceNode {
            path: path.to_owned(),
            sysfs: SysfsIdentity { class: "video4linux", name: path.to_owned(), uevent: Vec::new() },
        }
    }

    /// A DRM minor at `dri/<name>`: class `drm`, `DEVTYPE=drm_minor`.
    pub fn drm(path: &str) -> DeviceNode {
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        DeviceNode {
            path: path.to_owned(),
            sysfs: SysfsIdentity { class: "drm", name, uevent: vec![("DEVTYPE", "drm_minor".to_owned())] },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let v = DeviceNode::video("video1");
        assert_eq!((v.sysfs.class, v.sysfs.name.as_str()), ("video4linux", "video1"));
        let d = DeviceNode::drm("dri/card1");
        assert_eq!((d.path.as_str(), d.sysfs.class, d.sysfs.name.as_str()), ("dri/card1", "drm", "card1"));
    }
}
