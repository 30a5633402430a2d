//! The control socket under bad input: garbage, wrong versions, oversized,
//! truncated and stalled frames, random bytes — each gets an error reply or
//! a disconnect, and the daemon keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Served as Daemon, TEEHEAP, tmp};
use teeheap_daemon::protocol::{Client, Envelope, MAX_FRAME, Reply, Request, VERSION, read_frame, write_frame};

/// A daemon on a fresh socket, killed on drop.
impl Daemon {
    fn start(name: &str) -> Daemon {
        let dir = tmp().join(format!("proto-{name}-{}", std::process::id()));
        let mut c = Command::new(TEEHEAP);
        c.env_remove("TEEHEAP_CONFIG");
        Daemon::spawn(c, dir.join("teeheap.sock"), Stdio::null())
    }

    fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn alive(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "daemon died");
        let mut c = Client::connect(&self.socket).unwrap();
        assert!(!c.ls().unwrap().heaps.is_empty());
    }
}

fn reply_to(s: &UnixStream, payload: &[u8]) -> Reply {
    write_frame(s, payload, None).unwrap();
    let frame = read_frame(s, &mut Vec::new()).expect("a reply");
    let env: Envelope<Reply> = serde_json::from_slice(&frame).unwrap();
    // Answered in the request's version (or ours, if it was unusable).
    assert!((1..=VERSION).contains(&env.version), "{}", env.version);
    env.body
}

fn code(r: &Reply) -> &str {
    match r {
        Reply::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Reads until EOF (the daemon hung up); panics on a timeout.
fn hung_up(mut s: UnixStream) {
    let mut sink = Vec::new();
    // A close with our bytes still unread is a reset: a hang-up too.
    match s.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the daemon should close the connection: {e}"),
    }
}

#[test]
fn malformed_input_is_answered_or_dropped_and_others_are_served() {
    let mut d = Daemon::start("malformed");

    // Garbage, then a good request on the same connection.
    let s = d.raw();
    assert_eq!(code(&reply_to(&s, b"\x00\xffnot json")), "bad_request");
    assert_eq!(code(&reply_to(&s, br#"{"version":1,"body":{"op":"format_disk"}}"#)), "bad_request");
    assert_eq!(code(&reply_to(&s, br#"{"version":99,"body":{"op":"ls"}}"#)), "version");
    assert_eq!(code(&reply_to(&s, br#"{"version":1,"body":{"op":"supervise","pid":1,"nodes":[]}}"#)), "no_fd");
    // Version 1 clients still get answers in version 1, but not v2 requests.
    write_frame(&s, br#"{"version":1,"body":{"op":"ls"}}"#, None).unwrap();
    let env: Envelope<Reply> = serde_json::from_slice(&read_frame(&s, &mut Vec::new()).unwrap()).unwrap();
    assert!(env.version == 1 && matches!(env.body, Reply::Ls { .. }), "{env:?}");
    assert_eq!(code(&reply_to(&s, br#"{"version":1,"body":{"op":"bufinfo"}}"#)), "version");
    assert!(matches!(reply_to(&s, br#"{"version":2,"body":{"op":"bufinfo"}}"#), Reply::Bufinfo { .. }));
    let ok = serde_json::to_vec(&Envelope { version: VERSION, body: Request::Stats }).unwrap();
    assert!(matches!(reply_to(&s, &ok), Reply::Stats { .. }));

    // Oversized: an error, then the connection is closed.
    let mut s = d.raw();
    s.write_all(&(MAX_FRAME as u32 + 1).to_le_bytes()).unwrap();
    let frame = read_frame(&s, &mut Vec::new()).unwrap();
    assert!(String::from_utf8_lossy(&frame).contains("too_large"));
    hung_up(s);

    // Truncated: half a frame, then the client closes its side.
    let mut s = d.raw();
    s.write_all(&[100, 0, 0, 0, b'{', b'"']).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    hung_up(s);

    // Stalled clients hold a connection mid-frame; others are served at once.
    let stalled: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut s = d.raw();
            s.write_all(&[42, 0]).unwrap();
            s
        })
        .collect();
    let socket = d.socket.clone();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let mut c = Client::connect(&socket).unwrap();
                    assert!(!c.ls().unwrap().heaps.is_empty());
                    assert_eq!(c.stats().unwrap().sessions, 0);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "served slowly: {:?}", t0.elapsed());
    drop(stalled);

    // Random bytes from many connections.
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    for i in 0..100 {
        let mut s = d.raw();
        let len = rng.usize(..4096);
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        if i % 2 == 0 && len >= 4 {
            // A plausible length prefix, so the payload parser sees garbage.
            let n = (len - 4) as u32;
            bytes[..4].copy_from_slice(&n.to_le_bytes());
        }
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(Shutdown::Write);
        hung_up(s);
    }
    d.alive();
}

#[test]
fn many_clients_at_once() {
    let mut d = Daemon::start("many");
    let socket = d.socket.clone();
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).unwrap();
                for _ in 0..20 {
                    let hello = c.request(&Request::Hello, None).unwrap();
                    assert!(matches!(hello, Reply::Hello { ref nodes, .. } if nodes.iter().any(|n| n == "tee0")));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    d.alive();
}
