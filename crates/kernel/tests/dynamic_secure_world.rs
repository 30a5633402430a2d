//! The dynamic protected pool against the real secure world on the default
//! platform (trusted UI is lent from normal memory in 4 MiB chunks): the
//! heap grows across chunks; a chunk is reclaimed only once nothing holds a
//! buffer in it (fd, TEE registration, device attachment); the secure world
//! scrubs it before it drops the protection (seen by a scrub observer that
//! reads the chunk as the secure CPU), and afterwards the memory is normal
//! again, zeroed, and back in the normal-memory allocator.

mod tee_client;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tee_client::{CMD_DUMP, CMD_INJECT, Client, MEM_IN, MEM_OUT, MIB, SDP_UUID, memref};
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_platform::{Master, PhysRange, Platform, UseCase};
use teeheap_secure_world::SecureWorld;
use teeheap_secure_world::{LentInfo, ScrubEvent};
use teeheap_uapi::tee::gp::{TEEC_ORIGIN_TRUSTED_APP, TEEC_SUCCESS};

const HEAP: &str = "protected,trusted-ui";
const CHUNK: u64 = 4 * MIB;

/// What the observer saw between scrub and unprotect.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scrub {
    cookie: u64,
    use_case: UseCase,
    range: PhysRange,
    /// The secure CPU read only zeroes in the whole range.
    zeroed: bool,
    /// The normal world was still locked out (protection not dropped yet).
    ns_refused: bool,
}

type Seen = Arc<Mutex<Vec<Scrub>>>;

fn boot() -> (Client, OpteeBackend<SecureWorld>, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let (kernel, backend) = tee_client::boot_with(move |w| {
        w.set_scrub_observer(Some(Box::new(move |p: &Platform, e: &ScrubEvent| {
            let mut bytes = vec![0xa5; e.range.len() as usize];
            let zeroed =
                p.read(Master::SecureCpu, e.range.start(), &mut bytes).is_ok() && bytes.iter().all(|&b| b == 0);
            let ns_refused = p.read(Master::NsCpu, e.range.start(), &mut [0; 1]).is_err();
            let scrub = Scrub { cookie: e.cookie, use_case: e.use_case, range: e.range, zeroed, ns_refused };
            log.lock().unwrap().push(scrub);
        })));
    });
    (Client::new(&kernel), backend, seen)
}

fn events(seen: &Seen) -> Vec<Scrub> {
    seen.lock().unwrap().clone()
}

/// The physical range of the dma-buf behind `fd`.
fn range_of(c: &Client, fd: i32) -> PhysRange {
    let ranges = c.dma_buf(fd).sg_table().ranges().to_vec();
    assert_eq!(ranges.len(), 1, "one contiguous range");
    ranges[0]
}

/// The lent object holding `r`.
fn chunk_of(lent: &[LentInfo], r: &PhysRange) -> LentInfo {
    let holders: Vec<_> = lent.iter().filter(|o| o.range.contains_range(r)).collect();
    assert_eq!(holders.len(), 1, "{r} lies in exactly one lent object");
    *holders[0]
}

fn secret(i: usize, len: u64) -> Vec<u8> {
    format!("PIN-SECRET-{i:02}/").bytes().cycle().take(len as usize).collect()
}

fn read(p: &Platform, m: Master, r: PhysRange) -> Result<Vec<u8>, teeheap_platform::AccessError> {
    let mut v = vec![0; r.len() as usize];
    p.read(m, r.start(), &mut v).map(|()| v)
}

/// The memory of a reclaimed chunk is normal again: no firewall region,
/// the normal-world CPU reads it, and it reads zeroes.
fn assert_normal_again(p: &Platform, r: PhysRange) {
    assert!(p.firewall().region_containing(r).is_none(), "{r}: firewall region still there");
    let bytes = read(p, Master::NsCpu, r).expect("normal-world CPU may read a reclaimed chunk");
    assert!(bytes.iter().all(|&b| b == 0), "{r}: reclaimed memory is not zeroed");
}

#[test]
fn grows_across_chunks_then_each_chunk_is_scrubbed_and_reclaimed_after_its_last_buffer() {
    let (mut c, backend, seen) = boot();
    let world = Arc::clone(backend.world());
    let platform = Arc::clone(c.kernel.platform());
    let baseline = c.kernel.normal_memory().pages_used();
    assert!(world.lent_objects().is_empty());
    let heap = c.open_heap(HEAP);

    // 1.5 MiB buffers: two fit a chunk, a third does not. Seven of them and
    // a 512 KiB one (best fit: into a chunk's 1 MiB hole) need four chunks.
    let mut sizes = vec![1536 << 10; 7];
    sizes.push(512 << 10);
    let fds: Vec<i32> = sizes.iter().map(|&len| c.heap_alloc(heap, len).unwrap()).collect();
    let lent = world.lent_objects();
    assert_eq!(lent.len(), 4, "{lent:?}");
    for (i, o) in lent.iter().enumerate() {
        assert_eq!((o.use_case, o.range.len()), (UseCase::TrustedUi, CHUNK));
        assert!(lent[i + 1..].iter().all(|p| !p.range.overlaps(&o.range)));
        assert!(platform.firewall().region_containing(o.range).is_some(), "lent chunks are protected");
    }
    let stats = world.stats();
    assert_eq!((stats.lent, stats.outstanding, stats.outstanding_bytes), (4, 4, 4 * CHUNK));
    assert_eq!(c.kernel.normal_memory().pages_used(), baseline + 4 * CHUNK, "chunks come out of normal memory");

    // Each buffer lies in one chunk; group them by chunk, in allocation order.
    let mut by_chunk: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, &fd) in fds.iter().enumerate() {
        by_chunk.entry(chunk_of(&lent, &range_of(&c, fd)).cookie).or_default().push(i);
    }
    assert_eq!(by_chunk.len(), 4);
    assert!(by_chunk.values().any(|b| b.len() == 3), "the small buffer shares a chunk: {by_chunk:?}");

    // A secret in every buffer, written by the secure CPU; the normal world is refused.
    let ranges: Vec<PhysRange> = fds.iter().map(|&fd| range_of(&c, fd)).collect();
    for (i, r) in ranges.iter().enumerate() {
        platform.write(Master::SecureCpu, r.start(), &secret(i, r.len())).unwrap();
        assert!(read(&platform, Master::NsCpu, *r).is_err());
    }

    // Free all but the last buffer of each chunk: nothing is reclaimed, no
    // chunk is scrubbed, the survivors keep their secrets.
    let mut open: Vec<Option<i32>> = fds.iter().copied().map(Some).collect();
    for bufs in by_chunk.values() {
        for &i in &bufs[..bufs.len() - 1] {
            c.close(open[i].take().unwrap());
            assert!(events(&seen).is_empty(), "a chunk was reclaimed while a buffer lives in it");
            assert_eq!(world.lent_objects().len(), 4);
            for (j, fd) in open.iter().enumerate() {
                if fd.is_some() {
                    assert_eq!(read(&platform, Master::SecureCpu, ranges[j]).unwrap(), secret(j, ranges[j].len()));
                }
            }
        }
    }
    for o in &lent {
        assert!(read(&platform, Master::NsCpu, o.range).is_err(), "still protected");
    }
    assert_eq!(world.stats().reclaimed, 0);

    // The last buffer of each chunk: exactly that chunk is scrubbed (the
    // secure world saw zeroes while it was still protected), then
    // unprotected and given back.
    for (n, (&cookie, bufs)) in by_chunk.iter().enumerate() {
        let chunk = lent.iter().find(|o| o.cookie == cookie).unwrap().range;
        c.close(open[*bufs.last().unwrap()].take().unwrap());
        let ev = events(&seen);
        assert_eq!(ev.len(), n + 1, "one reclaim per emptied chunk");
        let want = Scrub { cookie, use_case: UseCase::TrustedUi, range: chunk, zeroed: true, ns_refused: true };
        assert_eq!(ev[n], want);
        assert!(world.lent_objects().iter().all(|o| o.cookie != cookie));
        assert_eq!(world.lent_objects().len(), 3 - n);
        assert_normal_again(&platform, chunk);
        for other in world.lent_objects() {
            assert!(read(&platform, Master::NsCpu, other.range).is_err(), "other chunks stay protected");
        }
    }

    assert_eq!(c.kernel.normal_memory().pages_used(), baseline, "normal memory back to the baseline");
    let stats = world.stats();
    assert_eq!((stats.lent, stats.reclaimed, stats.outstanding, stats.outstanding_bytes), (4, 4, 0, 0));
    assert_eq!((stats.bytes_lent, stats.bytes_scrubbed), (4 * CHUNK, 4 * CHUNK));
    assert_eq!((stats.lend_refused, stats.reclaim_busy), (0, 0));
    assert_eq!(c.kernel.dma_heaps().open(HEAP).unwrap().info().used, 0);
}

#[test]
fn a_chunk_is_reclaimed_only_after_its_last_holder_and_reused_until_then() {
    let (mut c, backend, seen) = boot();
    let world = Arc::clone(backend.world());
    let platform = Arc::clone(c.kernel.platform());
    let baseline = c.kernel.normal_memory().pages_used();
    let heap = c.open_heap(HEAP);

    let a = c.heap_alloc(heap, MIB).unwrap();
    let b = c.heap_alloc(heap, MIB).unwrap();
    let lent = world.lent_objects();
    assert_eq!(lent.len(), 1);
    let chunk = lent[0];
    let hole = range_of(&c, a);

    // A freed hole is reused without a new lend.
    c.close(a);
    let a2 = c.heap_alloc(heap, MIB).unwrap();
    assert_eq!(range_of(&c, a2), hole, "best fit reuses the hole");
    assert_eq!((world.stats().lent, world.lent_objects()), (1, lent.clone()));
    c.close(a2);

    // `b` outlives its fd three ways: a TEE registration (used by a TA), a
    // device attachment, and a dup of its fd.
    let ctx = c.open_tee("tee0");
    let (reg, secure) = c.register_fd(ctx, b.into()).unwrap();
    let display = c.dma_buf(b).attach(Master::Display).unwrap();
    let dup = c.files.dup(b).unwrap();
    c.close(b);
    c.close(heap);
    let s = c.session(ctx, SDP_UUID);
    let (nfd, normal) = c.shm_alloc(ctx, 4096).unwrap();
    c.shm_write(nfd, 0, b"hello, trusted UI");
    let ok = (TEEC_SUCCESS, TEEC_ORIGIN_TRUSTED_APP);
    let inject = [memref(MEM_IN, normal.id, 0, 17), memref(MEM_OUT, secure.id, 4096, 17)];
    assert_eq!(c.call(ctx, s, CMD_INJECT, &inject).0, ok);
    let dump = [memref(MEM_IN, secure.id, 4096, 17), memref(MEM_OUT, normal.id, 100, 17)];
    assert_eq!(c.call(ctx, s, CMD_DUMP, &dump).0, ok);
    assert_eq!(c.shm_read(nfd, 100, 17), b"hello, trusted UI");

    let holders = [("dup'd fd", dup), ("TEE registration", reg)];
    for (what, fd) in holders {
        c.close(fd);
        assert!(events(&seen).is_empty(), "reclaimed on closing the {what} while others hold the buffer");
        assert_eq!(world.lent_objects(), lent);
    }
    // Only the display attachment holds it now (the shm id went with its fd).
    assert_eq!(c.invoke(ctx, s, CMD_DUMP, &dump).unwrap_err(), teeheap_kernel::Errno::EINVAL);
    assert!(events(&seen).is_empty());
    drop(display);
    let ev = events(&seen);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].cookie, ev[0].range, ev[0].zeroed, ev[0].ns_refused), (chunk.cookie, chunk.range, true, true));
    assert!(world.lent_objects().is_empty());
    assert_normal_again(&platform, chunk.range);
    c.close(nfd);
    assert_eq!(c.kernel.normal_memory().pages_used(), baseline);
    assert_eq!((world.stats().lent, world.stats().reclaimed), (1, 1));
}

#[test]
fn a_buffer_larger_than_the_granularity_gets_a_whole_multiple_and_it_is_scrubbed_whole() {
    let (mut c, backend, seen) = boot();
    let world = Arc::clone(backend.world());
    let baseline = c.kernel.normal_memory().pages_used();
    let heap = c.open_heap(HEAP);
    let big = c.heap_alloc(heap, 5 * MIB).unwrap();
    let lent = world.lent_objects();
    assert_eq!(lent.len(), 1);
    assert_eq!(lent[0].range.len(), 2 * CHUNK);
    let r = range_of(&c, big);
    c.kernel.platform().write(Master::SecureCpu, r.start(), &secret(0, r.len())).unwrap();
    c.close(big);
    let ev = events(&seen);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].range, ev[0].zeroed), (lent[0].range, true));
    assert_normal_again(c.kernel.platform(), lent[0].range);
    assert_eq!(world.stats().bytes_scrubbed, 2 * CHUNK);
    assert_eq!(c.kernel.normal_memory().pages_used(), baseline);
}
