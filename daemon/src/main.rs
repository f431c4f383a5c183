//! `secretctld`: unlocks the vault once and serves secretctl clients over a
//! Unix socket. Normally started by the CLI or a user service.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use secretctl_proto::paths;
use secretctld::config::Config;
use secretctld::session::{Paths, Session};
use secretctld::vault::Vault;
use secretctld::{activation, hardening, server};

/// The secretctl daemon: holds the vault key in locked memory and serves the
/// CLI and the MCP shim on a Unix socket only your uid may use.
#[derive(Debug, Parser)]
#[command(name = "secretctld", version, after_help = ENV_HELP)]
struct Args {
    /// Data directory (vault, policy, audit). Default: $SECRETCTL_HOME or ~/.secretctl
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Socket path. Default: $SECRETCTL_SOCKET, else $XDG_RUNTIME_DIR/secretctl/secretctld.sock,
    /// else $SECRETCTL_HOME/run/secretctld.sock
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

const ENV_HELP: &str = "Environment:
  SECRETCTL_HOME    data directory
  SECRETCTL_SOCKET  socket path
  SECRETCTL_LOG     log filter, e.g. info or secretctld=debug (logs go to stderr)";

fn main() -> std::process::ExitCode {
    // A run supervisor is this binary re-executed: nothing else may happen
    // first (no logging: its stdio belongs to the run's child).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    secretctld::runner::supervisor::run_if_asked(&argv);
    // The daemon proper. Descriptors our parent leaked to us (without
    // close-on-exec) would reach every run's child: close them all but
    // stdio and the sockets a service manager passes (LISTEN_FDS).
    hardening::close_inherited_fds(3 + activation::passed_fd_count());
    let args = Args::parse();
    init_tracing();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Once: the log is stderr, which the CLI shows on a failed start.
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SECRETCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn run(args: Args) -> anyhow::Result<()> {
    // Files we create (vault, lock, socket) are ours alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    hardening::harden_process();
    secretctld::runner::orphans::become_subreaper();

    let home = match args.home {
        Some(h) => h,
        None => paths::home_dir()?,
    };
    ensure_home(&home)?;
    let config = Config::load(&home.join(paths::CONFIG_FILE)).context("invalid daemon settings")?;

    // A service manager (systemd, launchd) may hand us the listening socket.
    let inherited = activation::inherited_listener()?;
    let service_managed = inherited.is_some();
    let socket = match &inherited {
        Some(l) => l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(PathBuf::from))
            .context("the inherited socket has no path")?,
        None => args.socket.unwrap_or_else(|| paths::socket_path_in(&home)),
    };
    let socket_dir = socket
        .parent()
        .context("socket path has no parent directory")?
        .to_path_buf();
    if service_managed {
        server::check_private_dir(&socket_dir, nix::unistd::geteuid().as_raw())?;
    } else {
        server::prepare_socket_dir(&socket_dir)?;
    }
    let _instance = server::take_instance_lock(&socket)?;

    let vault_path = home.join(paths::VAULT_FILE);
    check_not_linked(&vault_path)?;
    let vault = Vault::open(&vault_path).context("cannot open the vault")?;
    let audit =
        secretctld::audit::Audit::start(&home.join(paths::AUDIT_DIR), config.audit_segment_bytes)
            .context("cannot start the audit log")?;
    let session = Session::new(
        Paths {
            home,
            vault: vault_path,
            socket: socket.clone(),
        },
        config,
        vault,
        service_managed,
        audit,
    );

    let audit = session.audit.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let listener = match inherited {
            Some(l) => l
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(l))
                .context("cannot use the inherited socket")?,
            None => server::bind(&socket).await?,
        };
        // The file we serve on: if it is deleted or replaced, we stop.
        let bound = server::SocketFile::at(&socket);
        server::serve(session, listener, bound).await?;
        Ok::<_, anyhow::Error>(())
    });
    // Tasks still running (a blocking KDF, a run's last bytes) must not
    // hold the exit: stopping already has its bound.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    // The final lock record (and everything queued before it) is on disk
    // before the process ends.
    audit.close();
    result
}

/// Creates the data directory with mode 0700, and refuses an existing one
/// that is a symlink, not ours, or open to others (naming the fix), as
/// for the socket directory.
fn ensure_home(home: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .with_context(|| format!("cannot create data directory {}", home.display()))?;
    server::check_private(
        home,
        nix::unistd::geteuid().as_raw(),
        server::PrivateDir::Home,
    )?;
    Ok(())
}

/// Refuses a vault file that is a symlink or not ours: the vault library
/// opens paths following symlinks, so it is checked first (the private data
/// directory keeps it from being swapped afterwards).
fn check_not_linked(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        Ok(m) if m.file_type().is_symlink() => anyhow::bail!(
            "{} is a symlink: refusing to open it (move the real file there: mv \"$(readlink -f {0})\" {0})",
            path.display()
        ),
        Ok(m) if !m.is_file() => anyhow::bail!("{} is not a regular file", path.display()),
        Ok(m) if m.uid() != nix::unistd::geteuid().as_raw() => anyhow::bail!(
            "{} is owned by uid {}, not by you: refusing to open it",
            path.display(),
            m.uid()
        ),
        Ok(_) => Ok(()),
    }
}
