//! Devices through their own UAPIs under `teeheap run` (issue 14): vgem at
//! `/dev/dri/card1` answering the import step of the kernel's dmabuf-heaps
//! selftest, done by our own C client (`tests/clients/vgem_client.c`) for
//! the `system` heap, plus PRIME export and mmap of dumb buffers.

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
];

#[test]
fn vgem_imports_heap_buffers_as_the_dmabuf_heaps_selftest_does() {
    let exe = compile("vgem_client.c", "vgem_client", &["-Werror"]);
    let out = teeheap_private("devices").arg("run").arg("--").arg(&exe).arg("system").output().unwrap();
    assert_all_ok(&out, VGEM_CHECKS);
}
