//! `teeheap completions SHELL` and `teeheap man`: shell completions and
//! manual pages generated from the command-line definition, so they never
//! drift from `--help`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap_complete::Shell;

/// Writes the completion script for `shell` to standard output.
pub(crate) fn completions(mut cli: clap::Command, shell: Shell) -> anyhow::Result<()> {
    let name = cli.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli, name, &mut out);
    write_stdout(&out)
}

/// Writes `teeheap.1` to standard output, or with `dir` one page per
/// command (`teeheap.1`, `teeheap-ls.1`, ...) into `dir`.
pub(crate) fn man(cli: clap::Command, dir: Option<&Path>) -> anyhow::Result<()> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cli, dir)
                .with_context(|| format!("cannot write manual pages to {}", dir.display()))
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cli).render(&mut out)?;
            write_stdout(&out)
        }
    }
}

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error.
pub(crate) fn write_stdout(text: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
