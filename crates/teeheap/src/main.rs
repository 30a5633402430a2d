//! `teeheap`: the Linux TEE protected DMA heaps in user space.
//!
//! Subcommands boot the embedded default platform (or `--config FILE`)
//! and act on it; see `teeheap --help`.

#![forbid(unsafe_code)]

mod cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use teeheap_daemon::protocol::BackendAction;
use teeheap_platform::fault::spec::Spec;
use tracing_subscriber::EnvFilter;

/// The Linux TEE protected DMA heaps (`/dev/dma_heap/protected,*`), a TEE
/// and its secure world, emulated in user space.
#[derive(Debug, Parser)]
#[command(name = "teeheap", version, about, long_about = None)]
struct Cli {
    /// Platform description (TOML) for ls --fresh, demo, serve and run (as their own --config).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// The platform a command boots: `--config FILE` or `$TEEHEAP_CONFIG`.
#[derive(Debug, Args)]
struct PlatformArg {
    /// Platform description (TOML); the built-in default when absent.
    #[arg(long, env = "TEEHEAP_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The daemon an observing command asks.
#[derive(Debug, Args)]
struct SocketArg {
    /// The daemon's control socket [default: $TEEHEAP_SOCKET, else the default socket, see `teeheap serve --help`].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the heaps: pool, capacity, used, free, buffers; from the running daemon, else from a fresh platform.
    Ls {
        /// Print JSON instead of a table (schema teeheap-ls/1, docs/observability.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
        /// Boot a fresh platform (--config or the default) even if a daemon answers.
        #[arg(long, conflicts_with = "socket")]
        fresh: bool,
        #[command(flatten)]
        platform: PlatformArg,
    },
    /// Boot the platform, exercise every heap and the firewall, print a report.
    Demo {
        #[command(flatten)]
        platform: PlatformArg,
    },
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
        /// Socket path [default: $TEEHEAP_SOCKET, else `$XDG_RUNTIME_DIR/teeheap/teeheap.sock`, else
        /// `/run/user/<uid>/teeheap/teeheap.sock` if that directory is yours, else `/tmp/teeheap-<uid>/teeheap.sock`;
        /// clients find it the same way].
        #[arg(long, env = "TEEHEAP_SOCKET", value_name = "PATH")]
        socket: Option<PathBuf>,
        #[command(flatten)]
        platform: PlatformArg,
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// Arm fault specs in the running daemon at once, e.g. `alloc:protected,secure-video:nth=3:ENOMEM`
    /// (docs/fault-injection.md; from inside a run: only with run --allow-admin).
    Inject {
        #[command(flatten)]
        socket: SocketArg,
        /// The specs (docs/fault-injection.md).
        #[arg(required = true, value_name = "SPEC", value_parser = parse_spec)]
        specs: Vec<Spec>,
    },
    /// Unbind or bind the TEE backend of the running daemon (from inside a run: only with run --allow-admin).
    Backend {
        #[command(flatten)]
        socket: SocketArg,
        /// What to do.
        #[command(subcommand)]
        action: BackendCmd,
    },
    /// Remove a heap node of the running daemon, or add a removed one back (from inside a run: only with run --allow-admin).
    Heap {
        #[command(flatten)]
        socket: SocketArg,
        /// What to do.
        #[command(subcommand)]
        action: HeapCmd,
    },
    /// Every live dma-buf: size, heap, exporter, ranges, holders (pid, command, fds), attachments, TEE registrations, age.
    Bufinfo {
        /// Print JSON instead of a table (schema teeheap-bufinfo/1).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Heap, pool and secure-world counters, and what each client process holds against its caps.
    Stat {
        /// Print JSON (schema teeheap-stat/1; one object per line with --watch).
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds (default 1); allocations/s over the interval.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Firewall violations and lifecycle events, newest last.
    Log {
        /// Print JSON (schema teeheap-log/1; one teeheap-log-event/1 object per line with --follow).
        #[arg(long)]
        json: bool,
        /// Keep printing new entries.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The physical memory map: DRAM, carveouts, lent regions, buffers, firewall regions.
    Map {
        /// Print JSON instead of text (schema teeheap-map/1).
        #[arg(long)]
        json: bool,
        /// Draw it as SVG into FILE (`-`: standard output).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The display's frame CRCs (/dev/dri/card0), one "0x<frame> 0x<crc>" line per frame, as vkms's debugfs shows them.
    Crc {
        /// Print JSON instead of text (schema teeheap-crc/1).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// One bus access through the platform firewall (a refusal is logged as a violation).
    Devmem {
        /// Physical address (0x... or decimal).
        #[arg(value_parser = parse_u64)]
        addr: u64,
        /// Bytes, 1 to 65536.
        #[arg(long, default_value = "16", value_parser = parse_len)]
        len: u64,
        /// Bus master. From inside a `teeheap run`, only ns-cpu unless the run has --allow-admin;
        /// other masters' allowed accesses are logged (teeheap log).
        #[arg(long, default_value = "ns-cpu", value_parser = master_names())]
        master: String,
        /// Write zeros instead of reading.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Write the trusted-application dev kit (GP TEE Internal Core API headers) and print how to
    /// build a TA with it: cc -shared -fPIC $(teeheap ta-dev-kit --cflags) -I my_ta/include
    /// my_ta/ta.c $(teeheap ta-dev-kit --link) -o tadir/<uuid>.ta (docs/trusted-apps.md).
    TaDevKit(TaDevKit),
    /// Run a program with /dev/dma_heap/* and /dev/tee* served to it; exits with its status
    /// (127: not found, 126: not executable).
    ///
    /// The program gets a private daemon (a thread of this process) unless --socket PATH or
    /// --daemon says to use a running one; an inherited TEEHEAP_SOCKET is not used. The program
    /// finds the daemon in $TEEHEAP_SOCKET and may observe through it (ls, stat, bufinfo, log,
    /// map, devmem as ns-cpu). Acting (devmem as a secure master, backend unbind|bind, heap
    /// rm|add) is refused from inside the run unless --allow-admin is given.
    Run {
        /// Use the daemon at this socket instead of a private one.
        #[arg(long, alias = "connect", value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Use the running daemon ($TEEHEAP_SOCKET, else the default socket) instead of a private one.
        #[arg(long, conflicts_with = "socket")]
        daemon: bool,
        #[command(flatten)]
        platform: PlatformArg,
        #[command(flatten)]
        faults: FaultArgs,
        /// Let the program and everything it starts act through the daemon's socket: devmem as a
        /// secure bus master (secure-cpu, video-decoder, display, ...), backend unbind|bind, heap
        /// rm|add. For test harnesses that drive the lifecycle from inside the run. Without it
        /// those requests are refused ("not permitted from inside a run") and logged.
        #[arg(long)]
        allow_admin: bool,
        /// Also look for host-built trusted applications (`<uuid>.ta`) in DIR (repeatable;
        /// after [tee] ta_dirs of the platform description; private daemon only).
        #[arg(long = "ta-dir", value_name = "DIR")]
        ta_dirs: Vec<PathBuf>,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROG")]
        argv: Vec<OsString>,
    },
}

/// What `ta-dev-kit` prints.
#[derive(Debug, Args)]
struct TaDevKit {
    /// Print the compiler flags a TA is built with (include directory, defines).
    #[arg(long)]
    cflags: bool,
    /// Print what else a TA is built with (the file that records its properties).
    #[arg(long)]
    link: bool,
    /// Write the kit into DIR [default: $XDG_CACHE_HOME/teeheap/ta-dev-kit-VERSION].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Faults a daemon started by `serve` or `run` injects (docs/fault-injection.md).
#[derive(Debug, Args)]
struct FaultArgs {
    /// Inject a fault, e.g. `alloc:protected,secure-video:nth=3:ENOMEM`, `backend:unbind:after=2s`,
    /// `ta:UUID:cmd=1:panic` (repeatable; docs/fault-injection.md), besides the platform's [[inject]].
    #[arg(long = "inject", value_name = "SPEC", value_parser = parse_spec)]
    specs: Vec<Spec>,
    /// Seed of the prob= faults: the same seed and program inject at the same points [default: random, logged].
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    seed: Option<u64>,
}

/// A fault spec, parsed once with the daemon's grammar.
fn parse_spec(s: &str) -> Result<Spec, String> {
    s.parse::<Spec>().map_err(|e| e.reason)
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

/// `devmem --len`: what the daemon accepts, checked before asking it.
fn parse_len(s: &str) -> Result<u64, String> {
    match parse_u64(s)? {
        n @ 1..=65536 => Ok(n),
        n => Err(format!("{n} is not between 1 and 65536 bytes")),
    }
}

/// `devmem --master`: the platform's bus masters.
fn master_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(teeheap_platform::Master::ALL.map(|m| m.name()))
}

fn main() -> ExitCode {
    // A trusted application's process (started by the secure world).
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__ta-runner") {
        let Some(ta) = args.next() else { return ExitCode::from(2) };
        teeheap_ta_host::runner::run(std::path::Path::new(&ta));
    }
    // Keep the GP API the TAs call in this binary's dynamic symbols.
    std::hint::black_box(teeheap_ta_host::exports());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("teeheap: {}", cmd::error_text(&e));
            cmd::exit_code(&e)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let top = cli.config;
    let config = |p: PlatformArg| top.clone().or(p.config);
    if top.is_some()
        && !matches!(
            cli.command,
            Command::Ls { .. } | Command::Demo { .. } | Command::Serve { .. } | Command::Run { .. }
        )
    {
        anyhow::bail!(
            "--config applies to ls, demo, serve and run; the other commands ask a running daemon (--socket)"
        );
    }
    let observing = !matches!(cli.command, Command::Serve { .. } | Command::Run { .. });
    if observing {
        cmd::quiet_on_closed_pipe();
    }
    match cli.command {
        Command::Ls { json, socket, fresh, platform } => {
            cmd::ls::run(socket.socket.as_deref(), fresh, config(platform).as_deref(), json)?
        }
        Command::Demo { platform } => cmd::demo::run(config(platform).as_deref())?,
        Command::DefaultConfig { full: false } => {
            cmd::generate::write_stdout(teeheap_platform::config::DEFAULT_TOML.as_bytes())?
        }
        Command::DefaultConfig { full: true } => {
            cmd::generate::write_stdout(teeheap::ANNOTATED_DEFAULT_CONFIG.as_bytes())?
        }
        Command::Completions { shell } => cmd::generate::completions(Cli::command(), shell)?,
        Command::Man { dir } => cmd::generate::man(Cli::command(), dir.as_deref())?,
        Command::Backend { socket, action } => cmd::lifecycle::backend(
            socket.socket.as_deref(),
            match action {
                BackendCmd::Unbind => BackendAction::Unbind,
                BackendCmd::Bind => BackendAction::Bind,
            },
        )?,
        Command::Heap { socket, action: HeapCmd::Rm { name } } => {
            cmd::lifecycle::heap(socket.socket.as_deref(), &name, false)?
        }
        Command::Heap { socket, action: HeapCmd::Add { name } } => {
            cmd::lifecycle::heap(socket.socket.as_deref(), &name, true)?
        }
        Command::Bufinfo { json, socket } => cmd::bufinfo::run(socket.socket.as_deref(), json)?,
        Command::Stat { json, watch, socket } => cmd::stat::run(socket.socket.as_deref(), json, watch)?,
        Command::Log { json, follow, socket } => cmd::log::run(socket.socket.as_deref(), json, follow)?,
        Command::Map { json, svg, socket } => cmd::map::run(socket.socket.as_deref(), json, svg.as_deref())?,
        Command::Crc { json, socket } => cmd::crc::run(socket.socket.as_deref(), json)?,
        Command::Devmem { addr, len, master, write, socket } => {
            cmd::devmem::run(socket.socket.as_deref(), &master, addr, len, write)?
        }
        Command::Serve { socket, platform, faults } => {
            cmd::serve::run(config(platform).as_deref(), socket.as_deref(), &faults.specs, faults.seed)?
        }
        Command::Inject { socket, specs } => cmd::lifecycle::inject(socket.socket.as_deref(), &specs, false)?,
        Command::Run { socket, daemon, allow_admin, platform, ta_dirs, faults, argv } => {
            let socket = if daemon { Some(teeheap_daemon::paths::socket_path()) } else { socket };
            let run = cmd::run::Faults { specs: &faults.specs, seed: faults.seed };
            return cmd::run::run(config(platform).as_deref(), socket.as_deref(), allow_admin, &ta_dirs, run, &argv);
        }
        Command::TaDevKit(k) => {
            let dir = k.dir.unwrap_or_else(teeheap_ta_host::devkit::default_dir);
            teeheap_ta_host::devkit::install(&dir)
                .map_err(|e| anyhow::anyhow!("cannot write the TA dev kit into {}: {e}", dir.display()))?;
            let mut out = Vec::new();
            if k.cflags {
                out.push(teeheap_ta_host::devkit::cflags(&dir));
            }
            if k.link {
                out.push(teeheap_ta_host::devkit::link(&dir));
            }
            if !k.cflags && !k.link {
                out.push(dir.display().to_string());
            }
            println!("{}", out.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
