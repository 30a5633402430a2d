//! `teeheap`: the Linux TEE protected DMA heaps in user space.
//!
//! Subcommands boot the embedded default platform (or `--config FILE`)
//! and act on it; see `teeheap --help`.

mod cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    DefaultConfig,
    /// Run a daemon serving the heaps and the TEE on a control socket.
    Serve {
        /// Socket path; default `$XDG_RUNTIME_DIR/teeheap/teeheap.sock`, else
        /// `/tmp/teeheap-<uid>/teeheap.sock`.
        #[arg(long, env = "TEEHEAP_SOCKET", value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Run a program with /dev/dma_heap/* and /dev/tee* served to it; exits with its status.
    Run {
        /// Use the daemon at this socket instead of a private one.
        #[arg(long, value_name = "SOCK")]
        connect: Option<PathBuf>,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROG")]
        argv: Vec<OsString>,
    },
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
        Command::DefaultConfig => {
            print!("{}", teeheap_platform::config::DEFAULT_TOML);
            Ok(())
        }
        Command::Serve { socket } => cmd::serve::run(cli.config.as_deref(), socket.as_deref()),
        Command::Run { connect, argv } => match cmd::run::run(cli.config.as_deref(), connect.as_deref(), &argv) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("teeheap: {e:#}");
            ExitCode::FAILURE
        }
    }
}
