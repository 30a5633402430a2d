//! `teeheap`: the Linux TEE protected DMA heaps in user space.
//!
//! Subcommands boot the embedded default platform (or `--config FILE`)
//! and act on it; see `teeheap --help`.

mod cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use teeheap_daemon::protocol::BackendAction;
use tracing_subscriber::EnvFilter;

/// The Linux TEE protected DMA heaps (`/dev/dma_heap/protected,*`), a TEE
/// and its secure world, emulated in user space.
#[derive(Debug, Parser)]
#[command(name = "teeheap", version, about, long_about = None)]
struct Cli {
    /// Platform description (TOML); the built-in default when absent.
    #[arg(long, global = true, env = "TEEHEAP_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the heaps: pool, capacity, used, free, buffers.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Boot the platform, exercise every heap and the firewall, print a report.
    Demo,
    /// Print the embedded default platform description (TOML).
    DefaultConfig {
        /// Every key with its default and a comment (docs/config.md).
        #[arg(long)]
        full: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    Man {
        /// Write teeheap.1, teeheap-ls.1, ... into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a daemon serving the heaps and the TEE on a control socket.
    Serve {
        /// Socket path; default `$XDG_RUNTIME_DIR/teeheap/teeheap.sock`, else
        /// `/tmp/teeheap-<uid>/teeheap.sock`.
        #[arg(long, env = "TEEHEAP_SOCKET", value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Unbind or bind the TEE backend of the running daemon (from inside a run: only with run --allow-admin).
    Backend {
        /// What to do.
        #[command(subcommand)]
        action: BackendCmd,
    },
    /// Remove a heap node of the running daemon, or add a removed one back (from inside a run: only with run --allow-admin).
    Heap {
        /// What to do.
        #[command(subcommand)]
        action: HeapCmd,
    },
    /// Every live dma-buf: size, heap, exporter, ranges, holders (pid, command, fds), attachments, TEE registrations, age.
    Bufinfo {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Heap, pool and secure-world counters, and what each client process holds against its caps.
    Stat {
        /// Print JSON (one object per line with --watch).
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds (default 1); allocations/s over the interval.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
    },
    /// Firewall violations and lifecycle events, newest last.
    Log {
        /// Print JSON (one event per line with --follow).
        #[arg(long)]
        json: bool,
        /// Keep printing new entries.
        #[arg(long, short)]
        follow: bool,
    },
    /// The physical memory map: DRAM, carveouts, lent chunks, buffers, firewall regions.
    Map {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Draw it as SVG into FILE.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// One bus access through the platform firewall (a refusal is logged as a violation).
    Devmem {
        /// Physical address (0x... or decimal).
        #[arg(value_parser = parse_u64)]
        addr: u64,
        /// Bytes.
        #[arg(long, default_value = "16", value_parser = parse_u64)]
        len: u64,
        /// Bus master: ns-cpu, secure-cpu, video-decoder, display, camera, video-encoder. From inside a
        /// `teeheap run`, only ns-cpu unless the run has --allow-admin; other masters' allowed accesses
        /// are logged (teeheap log).
        #[arg(long, default_value = "ns-cpu")]
        master: String,
        /// Write zeros instead of reading.
        #[arg(long)]
        write: bool,
    },
    /// Run a program with /dev/dma_heap/* and /dev/tee* served to it; exits with its status.
    ///
    /// The program finds the daemon in $TEEHEAP_SOCKET and may observe through it (ls, stat,
    /// bufinfo, log, map, devmem as ns-cpu). Acting (devmem as a secure master, backend
    /// unbind|bind, heap rm|add) is refused from inside the run unless --allow-admin is given.
    Run {
        /// Use the daemon at this socket instead of a private one.
        #[arg(long, value_name = "SOCK")]
        connect: Option<PathBuf>,
        /// Let the program and everything it starts act through the daemon's socket: devmem as a
        /// secure bus master (secure-cpu, video-decoder, display, ...), backend unbind|bind, heap
        /// rm|add. For test harnesses that drive the lifecycle from inside the run. Without it
        /// those requests are refused ("not permitted from inside a run") and logged.
        #[arg(long)]
        allow_admin: bool,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROG")]
        argv: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum BackendCmd {
    /// Drop the backend: no new protected allocations; live buffers drain.
    Unbind,
    /// Probe the backend again (same secure world): a new generation.
    Bind,
}

#[derive(Debug, Subcommand)]
enum HeapCmd {
    /// Remove the heap node: open gets ENOENT, live buffers drain.
    Rm {
        /// The heap.
        name: String,
    },
    /// Add a removed heap back.
    Add {
        /// The heap.
        name: String,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls { json } => match (&cli.config, cmd::client::daemon_socket()) {
            (None, Some(sock)) => cmd::client::ls(&sock, json),
            _ => cmd::ls::run(cli.config.as_deref(), json),
        },
        Command::Demo => cmd::demo::run(cli.config.as_deref()),
        Command::DefaultConfig { full: false } => {
            cmd::generate::write_stdout(teeheap_platform::config::DEFAULT_TOML.as_bytes())
        }
        Command::DefaultConfig { full: true } => {
            cmd::generate::write_stdout(teeheap::ANNOTATED_DEFAULT_CONFIG.as_bytes())
        }
        Command::Completions { shell } => cmd::generate::completions(Cli::command(), shell),
        Command::Man { dir } => cmd::generate::man(Cli::command(), dir.as_deref()),
        Command::Backend { action } => cmd::lifecycle::backend(match action {
            BackendCmd::Unbind => BackendAction::Unbind,
            BackendCmd::Bind => BackendAction::Bind,
        }),
        Command::Heap { action: HeapCmd::Rm { name } } => cmd::lifecycle::heap(&name, false),
        Command::Heap { action: HeapCmd::Add { name } } => cmd::lifecycle::heap(&name, true),
        Command::Bufinfo { json } => cmd::bufinfo::run(json),
        Command::Stat { json, watch } => cmd::stat::run(json, watch),
        Command::Log { json, follow } => cmd::log::run(json, follow),
        Command::Map { json, svg } => cmd::map::run(json, svg.as_deref()),
        Command::Devmem { addr, len, master, write } => cmd::devmem::run(&master, addr, len, write),
        Command::Serve { socket } => cmd::serve::run(cli.config.as_deref(), socket.as_deref()),
        Command::Run { connect, allow_admin, argv } => {
            match cmd::run::run(cli.config.as_deref(), connect.as_deref(), allow_admin, &argv) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("teeheap: {e:#}");
            ExitCode::FAILURE
        }
    }
}
