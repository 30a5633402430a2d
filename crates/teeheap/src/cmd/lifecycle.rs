//! `teeheap backend unbind|bind`, `teeheap heap rm|add NAME`: lifecycle
//! changes on a running daemon (docs/lifecycle.md).

use std::path::Path;

use teeheap_daemon::protocol::{BackendAction, Request};
use teeheap_platform::fault::spec::Spec;

use super::client::connect;

/// `teeheap backend unbind|bind`.
pub(crate) fn backend(socket: Option<&Path>, action: BackendAction) -> anyhow::Result<()> {
    let msg = connect(socket)?.0.lifecycle(&Request::Backend { action })?;
    println!("{msg}");
    Ok(())
}

/// `teeheap inject SPEC...`: arms each spec in the daemon at once and
/// prints what the daemon says (on stderr with `quiet`, as `teeheap run`
/// does, whose standard output is the program's).
pub(crate) fn inject(socket: Option<&Path>, specs: &[Spec], quiet: bool) -> anyhow::Result<()> {
    let mut client = connect(socket)?.0;
    for spec in specs {
        let msg = client.lifecycle(&Request::Inject { spec: spec.to_string() })?;
        if quiet {
            eprintln!("teeheap: {msg}");
        } else {
            println!("{msg}");
        }
    }
    Ok(())
}

/// `teeheap heap rm NAME` (`add == false`) or `teeheap heap add NAME`.
pub(crate) fn heap(socket: Option<&Path>, name: &str, add: bool) -> anyhow::Result<()> {
    let req = if add { Request::HeapAdd { name: name.to_owned() } } else { Request::HeapRm { name: name.to_owned() } };
    let msg = connect(socket)?.0.lifecycle(&req)?;
    println!("{msg}");
    Ok(())
}
