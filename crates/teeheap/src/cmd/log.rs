//! `teeheap log`: firewall violations and lifecycle events (bind, unbind,
//! heap removal, regions lent and reclaimed, cap refusals), newest last;
//! `--follow` keeps printing new ones.

use std::path::Path;
use std::time::Duration;

use teeheap_daemon::report::Event;

use super::client::connect;
use super::{Doc, Source};

/// Whether nobody reads standard output any more (the reader of a pipe
/// closed it, a terminal hung up): `--follow` then ends quietly without
/// waiting for an event to write, as `tail -f` cannot.
fn reader_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(rustix::event::poll(&mut fds, Some(&now)), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}

/// The schema of one line of `log --json --follow`.
const EVENT_SCHEMA: &str = "teeheap-log-event/1";

fn line(e: &Event) -> String {
    let secs = e.time_ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{:>5} {h:02}:{m:02}:{s:02}.{:03} UTC {:<9} {}", e.seq, e.time_ms % 1000, e.kind, e.message)
}

/// Runs `teeheap log`.
pub(crate) fn run(socket: Option<&Path>, json: bool, follow: bool) -> anyhow::Result<()> {
    let (mut c, source) = connect(socket)?;
    let log = c.log(0)?;
    if json && !follow {
        return Doc::print("teeheap-log/1", &source, &log, true);
    }
    if !json {
        println!("{}", source.line());
    }
    if log.dropped > 0 && !json {
        println!("({} older entries dropped)", log.dropped);
    }
    let show = |source: &Source, events: &[Event], last: &mut u64| -> anyhow::Result<()> {
        for e in events {
            if json {
                Doc::print(EVENT_SCHEMA, source, e, false)?;
            } else {
                println!("{}", line(e));
            }
            *last = e.seq;
        }
        Ok(())
    };
    let mut last = 0;
    show(&source, &log.events, &mut last)?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if reader_gone() {
            return Ok(());
        }
        let l = c.log(last)?;
        show(&source, &l.events, &mut last)?;
    }
}
