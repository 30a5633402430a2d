//! Checks every struct layout, ioctl number and constant of teeheap-uapi
//! against the C compiler and the system's `<linux/*.h>` headers.
//!
//! One table lists each check once; from it the test writes a C program that
//! prints `name value` lines, compiles and runs it with `$CC` (default `cc`),
//! and compares each line with the Rust value. A missing compiler fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use teeheap_uapi::dma_buf::*;
use teeheap_uapi::dma_heap::*;
use teeheap_uapi::sync_file::*;
use teeheap_uapi::tee::*;

/// One value computed by both sides.
struct Check {
    /// What the C program prints before the value; unique in the table.
    name: String,
    /// The C expression for the value.
    c_expr: String,
    /// The value as the Rust crate has it.
    ours: u64,
    /// `Some(macro)`: only checked when the headers define `macro` (newer UAPI).
    only_if_defined: Option<&'static str>,
}

fn to_u64<T: TryInto<u64>>(v: T) -> u64
where
    T::Error: Debug,
{
    v.try_into().expect("value fits in u64")
}

/// `layout!(RustType = "struct c_name" { field, ... })`: sizeof, alignof and
/// offsetof of every field (field names are the same on both sides).
macro_rules! layout {
    ($t:ty = $c:literal { $($f:ident),* $(,)? }) => {
        vec![
            Check {
                name: format!("sizeof({})", $c),
                c_expr: format!("sizeof({})", $c),
                ours: to_u64(size_of::<$t>()),
                only_if_defined: None,
            },
            Check {
                name: format!("alignof({})", $c),
                c_expr: format!("_Alignof({})", $c),
                ours: to_u64(align_of::<$t>()),
                only_if_defined: None,
            },
            $(Check {
                name: format!("offsetof({}, {})", $c, stringify!($f)),
                c_expr: format!("offsetof({}, {})", $c, stringify!($f)),
                ours: to_u64(offset_of!($t, $f)),
                only_if_defined: None,
            },)*
        ]
    };
}

/// `konst!(NAME, ...)`: a macro that every supported header version defines,
/// with the same name as the Rust constant.
macro_rules! konst {
    ($($k:ident),* $(,)?) => {
        vec![$(Check {
            name: stringify!($k).to_string(),
            c_expr: stringify!($k).to_string(),
            ours: to_u64($k),
            only_if_defined: None,
        }),*]
    };
}

/// `newer!(NAME, ...)`: like `konst!`, for macros that only newer headers
/// define; compared when present.
macro_rules! newer {
    ($($k:ident),* $(,)?) => {
        vec![$(Check {
            name: stringify!($k).to_string(),
            c_expr: stringify!($k).to_string(),
            ours: to_u64($k),
            only_if_defined: Some(stringify!($k)),
        }),*]
    };
}

/// `expr!("c expression", rust value)`: anything else.
macro_rules! expr {
    ($c:literal, $ours:expr) => {
        vec![Check { name: $c.to_string(), c_expr: $c.to_string(), ours: to_u64($ours), only_if_defined: None }]
    };
}

fn table() -> Vec<Check> {
    [
        // linux/dma-heap.h
        layout!(DmaHeapAllocationData = "struct dma_heap_allocation_data" {
            len, fd, fd_flags, heap_flags
        }),
        konst!(
            DMA_HEAP_IOC_MAGIC,
            DMA_HEAP_IOCTL_ALLOC,
            DMA_HEAP_VALID_FD_FLAGS,
            DMA_HEAP_VALID_HEAP_FLAGS,
            O_CLOEXEC,
            O_ACCMODE,
        ),
        // linux/dma-buf.h
        layout!(DmaBufSync = "struct dma_buf_sync" { flags }),
        layout!(DmaBufExportSyncFile = "struct dma_buf_export_sync_file" { flags, fd }),
        layout!(DmaBufImportSyncFile = "struct dma_buf_import_sync_file" { flags, fd }),
        konst!(
            DMA_BUF_BASE,
            DMA_BUF_NAME_LEN,
            DMA_BUF_SYNC_READ,
            DMA_BUF_SYNC_WRITE,
            DMA_BUF_SYNC_RW,
            DMA_BUF_SYNC_START,
            DMA_BUF_SYNC_END,
            DMA_BUF_SYNC_VALID_FLAGS_MASK,
            DMA_BUF_IOCTL_SYNC,
            DMA_BUF_SET_NAME,
            DMA_BUF_SET_NAME_A,
            DMA_BUF_SET_NAME_B,
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
        ),
        // linux/sync_file.h
        layout!(SyncMergeData = "struct sync_merge_data" { name, fd2, fence, flags, pad }),
        layout!(SyncFenceInfo = "struct sync_fence_info" { obj_name, driver_name, status, flags, timestamp_ns }),
        layout!(SyncFileInfo = "struct sync_file_info" { name, status, flags, num_fences, pad, sync_fence_info }),
        layout!(SyncSetDeadline = "struct sync_set_deadline" { deadline_ns, pad }),
        expr!("sizeof(((struct sync_merge_data *)0)->name)", SYNC_NAME_LEN),
        konst!(SYNC_IOC_MAGIC, SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO, SYNC_IOC_SET_DEADLINE),
        // linux/tee.h: structs
        layout!(TeeIoctlVersionData = "struct tee_ioctl_version_data" {
            impl_id, impl_caps, gen_caps
        }),
        layout!(TeeIoctlShmAllocData = "struct tee_ioctl_shm_alloc_data" { size, flags, id }),
        layout!(TeeIoctlBufData = "struct tee_ioctl_buf_data" { buf_ptr, buf_len }),
        layout!(TeeIoctlParam = "struct tee_ioctl_param" { attr, a, b, c }),
        layout!(TeeIoctlOpenSessionArg = "struct tee_ioctl_open_session_arg" {
            uuid, clnt_uuid, clnt_login, cancel_id, session, ret, ret_origin, num_params
        }),
        layout!(TeeIoctlInvokeArg = "struct tee_ioctl_invoke_arg" {
            func, session, cancel_id, ret, ret_origin, num_params
        }),
        layout!(TeeIoctlCancelArg = "struct tee_ioctl_cancel_arg" { cancel_id, session }),
        layout!(TeeIoctlCloseSessionArg = "struct tee_ioctl_close_session_arg" { session }),
        layout!(TeeIoctlSupplRecvArg = "struct tee_iocl_supp_recv_arg" { func, num_params }),
        layout!(TeeIoctlSupplSendArg = "struct tee_iocl_supp_send_arg" { ret, num_params }),
        layout!(TeeIoctlShmRegisterData = "struct tee_ioctl_shm_register_data" {
            addr, length, flags, id
        }),
        layout!(TeeIoctlShmRegisterFdData = "struct tee_ioctl_shm_register_fd_data" {
            fd, size, flags, id
        }),
        // Params start right after each fixed header.
        expr!("offsetof(struct tee_ioctl_open_session_arg, params)", size_of::<TeeIoctlOpenSessionArg>()),
        expr!("offsetof(struct tee_ioctl_invoke_arg, params)", size_of::<TeeIoctlInvokeArg>()),
        expr!("offsetof(struct tee_iocl_supp_recv_arg, params)", size_of::<TeeIoctlSupplRecvArg>()),
        expr!("offsetof(struct tee_iocl_supp_send_arg, params)", size_of::<TeeIoctlSupplSendArg>()),
        expr!("sizeof(((struct tee_ioctl_open_session_arg *)0)->uuid)", TEE_IOCTL_UUID_LEN),
        // linux/tee.h: numbers
        konst!(
            TEE_IOC_MAGIC,
            TEE_IOC_BASE,
            TEE_IOC_VERSION,
            TEE_IOC_SHM_ALLOC,
            TEE_IOC_OPEN_SESSION,
            TEE_IOC_INVOKE,
            TEE_IOC_CANCEL,
            TEE_IOC_CLOSE_SESSION,
            TEE_IOC_SUPPL_RECV,
            TEE_IOC_SUPPL_SEND,
            TEE_IOC_SHM_REGISTER_FD,
            TEE_IOC_SHM_REGISTER,
            TEE_MAX_ARG_SIZE,
            TEE_IOCTL_UUID_LEN,
            TEE_GEN_CAP_GP,
            TEE_GEN_CAP_PRIVILEGED,
            TEE_GEN_CAP_REG_MEM,
            TEE_GEN_CAP_MEMREF_NULL,
            TEE_MEMREF_NULL,
            TEE_IMPL_ID_OPTEE,
            TEE_IMPL_ID_AMDTEE,
            TEE_OPTEE_CAP_TZ,
            TEE_IOCTL_PARAM_ATTR_TYPE_NONE,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT,
            TEE_IOCTL_PARAM_ATTR_TYPE_MASK,
            TEE_IOCTL_PARAM_ATTR_META,
            TEE_IOCTL_PARAM_ATTR_MASK,
            TEE_IOCTL_LOGIN_PUBLIC,
            TEE_IOCTL_LOGIN_USER,
            TEE_IOCTL_LOGIN_GROUP,
            TEE_IOCTL_LOGIN_APPLICATION,
            TEE_IOCTL_LOGIN_USER_APPLICATION,
            TEE_IOCTL_LOGIN_GROUP_APPLICATION,
            TEE_IOCTL_LOGIN_REE_KERNEL_MIN,
            TEE_IOCTL_LOGIN_REE_KERNEL_MAX,
            TEE_IOCTL_LOGIN_REE_KERNEL,
        ),
        // Dropped from the UAPI header for a while, back with protected heaps.
        newer!(TEE_IOCTL_SHM_MAPPED, TEE_IOCTL_SHM_DMA_BUF),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Headers older than the protected-heap series (e.g. Debian's 6.1) lack
/// SHM_REGISTER_FD; this mirror of its UAPI definition stands in for them.
const C_PRELUDE: &str = r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <linux/tee.h>

/* Headers before 6.3 lack SYNC_IOC_SET_DEADLINE; its UAPI definition. */
#ifndef SYNC_IOC_SET_DEADLINE
struct sync_set_deadline {
	__u64 deadline_ns;
	__u64 pad;
};
#define SYNC_IOC_SET_DEADLINE _IOW(SYNC_IOC_MAGIC, 5, struct sync_set_deadline)
#endif

#ifndef TEE_IOC_SHM_REGISTER_FD
struct tee_ioctl_shm_register_fd_data {
	__s64 fd;
	__u64 size;
	__u32 flags;
	__s32 id;
} __attribute__((aligned(8)));
#define TEE_IOC_SHM_REGISTER_FD \
	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, struct tee_ioctl_shm_register_fd_data)
#endif

int main(void)
{
"#;

fn c_program(checks: &[Check]) -> String {
    let mut src = String::from(C_PRELUDE);
    for check in checks {
        if let Some(mac) = check.only_if_defined {
            writeln!(src, "#ifdef {mac}").unwrap();
        }
        writeln!(src, "\tprintf(\"%s %llu\\n\", \"{}\", (unsigned long long)({}));", check.name, check.c_expr).unwrap();
        if check.only_if_defined.is_some() {
            src.push_str("#endif\n");
        }
    }
    src.push_str("\treturn 0;\n}\n");
    src
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("teeheap-uapi-c-layout-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles and runs `src`; returns what it printed as `name -> value`.
fn run_c(src: &str) -> BTreeMap<String, u64> {
    let dir = TempDir::new();
    let c_file = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&c_file, src).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut words = cc.split_whitespace();
    let prog = words.next().expect("$CC is empty");
    let out = Command::new(prog)
        .args(words)
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&c_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` (set $CC): {e}"));
    assert!(
        out.status.success(),
        "`{cc}` failed on the generated program:\n{}\n--- program ---\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "layout program failed: {run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let mut values = BTreeMap::new();
    for line in stdout.lines() {
        let (name, value) = line.rsplit_once(' ').expect("`name value` line");
        let value = value.parse().expect("decimal value");
        assert!(values.insert(name.to_string(), value).is_none(), "{name} printed twice");
    }
    values
}

#[test]
fn table_names_are_unique() {
    let mut seen = BTreeSet::new();
    for check in table() {
        assert!(seen.insert(check.name.clone()), "{} listed twice", check.name);
    }
}

#[test]
fn layouts_and_numbers_match_c_headers() {
    let checks = table();
    let c_values = run_c(&c_program(&checks));

    let mut mismatches = Vec::new();
    let mut compared = 0;
    for check in &checks {
        match (c_values.get(&check.name), check.only_if_defined) {
            (Some(&c), _) => {
                compared += 1;
                if c != check.ours {
                    mismatches.push(format!("{}: C {c:#x}, Rust {:#x}", check.name, check.ours));
                }
            }
            (None, Some(mac)) => eprintln!("note: {mac} not in these headers, not compared"),
            (None, None) => mismatches.push(format!("{}: not printed by C", check.name)),
        }
    }
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), checks.len(), mismatches.join("\n"));
    assert_eq!(compared, c_values.len(), "C printed names not in the table");
    eprintln!("{compared} values compared with C");
}
