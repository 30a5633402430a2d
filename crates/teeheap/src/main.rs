//! `teeheap`: the Linux TEE protected DMA heaps in user space.
//!
//! Subcommands boot the embedded default platform (or `--config FILE`)
//! and act on it; see `teeheap --help`.

mod cmd;

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls { json } => cmd::ls::run(cli.config.as_deref(), json),
        Command::Demo => cmd::demo::run(cli.config.as_deref()),
        Command::DefaultConfig => {
            print!("{}", teeheap_platform::config::DEFAULT_TOML);
            Ok(())
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
