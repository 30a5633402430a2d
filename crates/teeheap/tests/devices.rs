//! Devices through their own UAPIs under `teeheap run` (issue 14): vgem at
//! `/dev/dri/card1` answering the import step of the kernel's dmabuf-heaps
//! selftest, done by our own C client (`tests/clients/vgem_client.c`) for
//! the `system` heap, plus PRIME export and mmap of dumb buffers; the FWHT
//! codec pair (`tests/clients/codec_client.c`) encoding and decoding with
//! DMABUF buffers, drain, and secure mode.

mod common;

use common::{assert_all_ok, compile, teeheap_private};

const VGEM_CHECKS: &[&str] = &[
    "allocate 1 MiB",
    "mmap",
    "open vgem",
    "Import buffer",
    "dmabuf sync start",
    "dmabuf sync end",
    "import again gives the same handle",
    "VERSION vgem 1.0.0",
    "GEM_CLOSE",
    "GEM_CLOSE again is EINVAL",
    "import of a closed fd is EBADF",
    "CREATE_DUMB 640x480x32",
    "PRIME export",
    "mmap of the exported dumb buffer",
    "re-import of the export gives its handle",
    "export flags 0x100 is EINVAL",
    "DESTROY_DUMB",
    "GETRESOURCES on vgem is EOPNOTSUPP",
    "import of a protected buffer",
    "export of the protected import is not mappable",
    "GEM_CLOSE of the protected import",
];

#[test]
fn vgem_imports_heap_buffers_as_the_dmabuf_heaps_selftest_does() {
    let exe = compile("vgem_client.c", "vgem_client", &["-Werror"]);
    let out = teeheap_private("devices").arg("run").arg("--").arg(&exe).arg("system").output().unwrap();
    assert_all_ok(&out, VGEM_CHECKS);
}

const CODEC_CHECKS: &[&str] = &[
    "QUERYCAP vicodec m2m",
    "encoder S_FMT",
    "S_CTRL QP",
    "encoder REQBUFS DMABUF",
    "encoder STREAMON",
    "encode 4 frames through DMABUF",
    "first frame is a key frame, then P frames",
    "FWHT magic",
    "DQBUF with nothing done is EAGAIN",
    "ENCODER_CMD STOP",
    "drain: LAST buffer",
    "DQBUF after LAST is EPIPE",
    "decoder S_FMT",
    "decoder REQBUFS DMABUF",
    "decoder STREAMON",
    "decode 4 frames through DMABUF",
    "decoded frames within 12 of the originals",
    "protected buffers",
    "protected bitstream into normal memory: error flag",
    "mmap of a protected CAPTURE buffer is refused",
];

/// The codec pair at `/dev/video0` (encoder) and `/dev/video1` (decoder)
/// with `system` and protected dma-bufs as DMABUF buffers.
#[test]
fn fwht_codec_round_trip_with_dmabuf_buffers() {
    let exe = compile("codec_client.c", "codec_client", &["-Werror"]);
    let out = teeheap_private("devices").arg("run").arg("--").arg(&exe).output().unwrap();
    assert_all_ok(&out, CODEC_CHECKS);
}

/// Each device node has a number of its own, and the run's
/// `/sys/dev/char/MAJ:MIN` names it (`uevent`'s `DEVNAME`, a `subsystem`
/// link to its class) as v4l-utils reads it; `/sys/class/<class>/<name>`
/// leads to the same directory, which is on sysfs, as libudev (GStreamer's
/// device scan) insists. As root the nodes are character devices; in a
/// user namespace they are regular files and only `/sys/class` is checked.
#[test]
fn device_nodes_have_sysfs_entries_of_their_own() {
    let script = r#"
set -e
for n in video0 video1 dri/card1; do
  if [ -c /dev/$n ]; then
    num=$(printf '%d:%d' 0x$(stat -c %t /dev/$n) 0x$(stat -c %T /dev/$n))
    d=/sys/dev/char/$num
    echo "$n $num $(cat $d/dev) $(basename $(readlink $d/subsystem)) $(grep DEVNAME $d/uevent) $(stat -f -c %T $d/)"
  else
    echo "$n file"
  fi
done
for c in video4linux/video0 video4linux/video1 drm/card1; do
  d=/sys/class/$c
  echo "$c $(basename $(readlink $d/subsystem)) $(grep DEVNAME $d/uevent) $(stat -f -c %T $d/)"
done
"#;
    let out = teeheap_private("devices").arg("run").arg("--").arg("sh").arg("-c").arg(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    let mut numbers = Vec::new();
    let nodes = [("video0", "video4linux"), ("video1", "video4linux"), ("dri/card1", "drm")];
    for (line, (node, class)) in lines.iter().zip(nodes) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], node, "{stdout}");
        if f[1] == "file" {
            assert!(!rustix::process::geteuid().is_root(), "root gets character devices: {stdout}");
            continue;
        }
        let devname = format!("DEVNAME={node}");
        assert_eq!((f[2], f[3], f[4], f[5]), (f[1], class, devname.as_str(), "sysfs"), "{stdout}");
        assert_ne!(f[1], "1:3", "a number of its own, not /dev/null's: {stdout}");
        numbers.push(f[1]);
    }
    numbers.sort_unstable();
    numbers.dedup();
    assert!(numbers.len() == 3 || numbers.is_empty(), "distinct numbers: {stdout}");
    for (line, (node, class)) in lines[3..].iter().zip(nodes) {
        let devname = format!("DEVNAME={node}");
        assert_eq!(line.split(' ').skip(1).collect::<Vec<_>>(), [class, devname.as_str(), "sysfs"], "{stdout}");
    }
}

/// `modetest` (libdrm-tests, installed by `.ci/run`) found by name.
fn modetest() -> std::process::Command {
    let ok = std::process::Command::new("modetest").arg("-h").output().is_ok();
    assert!(ok, "modetest is missing: run .ci/run (it installs libdrm-tests)");
    let mut cmd = teeheap_private("devices");
    cmd.arg("run").arg("--").arg("modetest");
    cmd
}

/// libdrm's `modetest -M vkms` finds the display at `/dev/dri/card0` by
/// its driver name and lists it as vkms does: connector 34 (Virtual,
/// connected) with its two modes and properties, CRTC 32 with its
/// properties, the primary plane 31 with its formats. (`-s` and `-v` need
/// dumb buffers mapped through the card fd and events read from it, which
/// the serving layer does not do: docs/serving.md.)
#[test]
fn modetest_lists_the_vkms_display() {
    let out = modetest().args(["-M", "vkms", "-c"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "34\t0\tconnected\tVirtual-1",
        "#0 1920x1080 60.00 1920 2008 2052 2200 1080 1084 1089 1125 148500 flags: phsync, pvsync; type: preferred, driver",
        "#1 3840x2160 60.00 3840 4016 4104 4400 2160 2168 2178 2250 594000",
        "enums: On=0 Standby=1 Suspend=2 Off=3",
        "18 link-status:",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let out = modetest().args(["-M", "vkms", "-p", "-a"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "32\t0\t(0,0)\t(0x0)",
        "13 ACTIVE:",
        "14 MODE_ID:",
        "15 OUT_FENCE_PTR:",
        "31\t0\t0\t0,0\t\t0,0\t0       \t0x00000001",
        "formats: XR24 AR24 NV12",
        "enums: Overlay=0 Primary=1 Cursor=2",
        "2 FB_ID:",
        "3 IN_FENCE_FD:",
        "values: -1 2147483647",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
