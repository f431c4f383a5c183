//! Test harness: a real `secretctld` on a temp socket and home, driven by the
//! real `secretctl` binary. Readiness is a `Status` probe, never a sleep.
//!
//! Guarantees every test gets from here:
//! - the binaries under test are the current code: the first [`bin`] call of
//!   a test process runs `cargo build` for them (same profile and target dir
//!   as the test binary), so `cargo test` alone never tests stale binaries;
//! - every process a test starts is waited for with a deadline and killed on
//!   expiry ([`wait_output`], [`run`]), so a regression fails instead of
//!   hanging;
//! - every daemon a test starts is stopped by a guard ([`Env`]'s `Drop`, also
//!   for a daemon the CLI autostarted on the test's socket; [`ChildGuard`]
//!   for any other long-lived child), also when the test panics.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use secretctl_proto::client::{Client, RpcError};

pub mod mcp;
pub mod ui;

/// The password every test vault uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long one CLI command may take before the test fails (a hang).
pub const CLI_LIMIT: Duration = Duration::from_secs(90);

/// Directory holding the workspace's binaries (target/<profile>).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path is known");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds `secretctld`, `secretctl` and `secretctl-mcp` once per test
/// process, with the test binary's profile and target dir, so the
/// integration tests always run the current code (also in a scratch copy
/// such as cargo-mutants makes). Panics with cargo's output on failure.
pub fn ensure_built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let dir = bin_dir();
        let target_dir = dir
            .parent()
            .expect("target/<profile> has a parent")
            .to_path_buf();
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile dir name is UTF-8")
            .to_string();
        let cargo = option_env!("CARGO")
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .or_else(|| std::env::var_os("CARGO").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("cargo"));
        let mut cmd = Command::new(cargo);
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "build",
                "-p",
                "secretctld",
                "-p",
                "secretctl",
                "-p",
                "secretctl-mcp",
                "--bins",
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo to build the binaries: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "building the binaries under test failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Path of a workspace binary, built from the current code.
pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is missing after the build", p.display());
    p
}

/// Whether a test that needs root may run. Not root: under CI (`CI` set)
/// the test fails, because CI runs as root and a skip there would hide a
/// broken promise; locally it prints a SKIP line and returns false.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (another uid, chown); CI runs as root, so this is a failure");
    }
    eprintln!(
        "SKIP {test}: needs root (dropping to another uid / chown); run the suite as root to cover it"
    );
    false
}

/// Kills and reaps a child when dropped: for long-lived children a test
/// starts itself (a daemon outside [`Env`], a shim), so a failing test
/// leaves nothing behind.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("child present").id()
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child present")
    }

    /// Waits for the child to exit, at most `limit` (then kills it and fails).
    pub fn wait(&mut self, limit: Duration, what: &str) -> std::process::ExitStatus {
        let child = self.0.as_mut().expect("child present");
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.0 = None;
                return st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.0 = None;
                panic!("{what} did not exit within {limit:?}");
            }
            std::thread::sleep(pause); // polling interval
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` and collects its output, failing the test (after
/// killing the child) if it takes longer than `limit`.
pub fn wait_output(child: Child, limit: Duration, what: &str) -> Output {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            // Not reaped yet (the waiting thread has not returned), so the
            // pid is still this child's.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let partial = rx.recv_timeout(Duration::from_secs(5));
            let (out, err) = match partial {
                Ok(Ok(o)) => (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
                _ => Default::default(),
            };
            panic!("{what} did not finish within {limit:?} (killed)\nstdout: {out}\nstderr: {err}");
        }
    }
}

/// Reads from `r` on a helper thread so the test can wait with a deadline.
pub struct TimedLines {
    rx: std::sync::mpsc::Receiver<std::io::Result<String>>,
}

impl TimedLines {
    pub fn new(r: impl Read + Send + 'static) -> TimedLines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(r).lines() {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        TimedLines { rx }
    }

    /// The next line (without its newline); `None` at EOF. Fails the test
    /// if nothing arrives within `limit`.
    pub fn next(&self, limit: Duration) -> Option<String> {
        match self.rx.recv_timeout(limit) {
            Ok(line) => Some(line.expect("read a line")),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("no line within {limit:?}")
            }
        }
    }

    /// Every remaining line until EOF, which must come within `limit`.
    pub fn rest(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut v = Vec::new();
        while let Some(l) = self.next(deadline.saturating_duration_since(Instant::now())) {
            v.push(l);
        }
        v
    }
}

/// Runs `fut` on a fresh runtime, failing the test after `limit`.
pub fn block_on_with_limit<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
    })
}

/// A temp home and socket, and possibly a running daemon on them.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// `SECRETCTL_LOG` for every process: trace, so tests see every log line.
    pub log_level: &'static str,
    daemon: Option<Child>,
}

impl Env {
    /// A fresh home and socket path; no daemon yet.
    pub fn new() -> Env {
        // Short path: sun_path holds ~108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("sc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let home = dir.path().join("home");
        let socket = dir.path().join("run").join("d.sock");
        let log = dir.path().join("daemon.log");
        Env {
            dir,
            home,
            socket,
            log,
            log_level: "trace",
            daemon: None,
        }
    }

    /// A fresh env with a running, initialized and unlocked vault.
    pub fn unlocked() -> Env {
        let mut env = Env::new();
        env.start();
        env.init();
        env
    }

    /// Environment for any secretctl process of this test.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECRETCTL_HOME", &self.home)
            .env("SECRETCTL_SOCKET", &self.socket)
            .env("SECRETCTL_LOG", self.log_level)
            .env("SECRETCTL_NO_AUTOSTART", "1");
    }

    /// Starts the daemon and waits until it answers `Status`.
    pub fn start(&mut self) {
        self.start_with("");
    }

    /// Starts the daemon through `sh -c '<setup>; exec secretctld'`, so a
    /// test can give it a umask or resource limits of its own (the empty
    /// setup starts it directly), and waits until it answers `Status`.
    pub fn start_with(&mut self, setup: &str) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let mut cmd = if setup.is_empty() {
            Command::new(bin("secretctld"))
        } else {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{setup}\nexec \"$0\""))
                .arg(bin("secretctld"));
            c
        };
        self.apply(&mut cmd);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let child = cmd.spawn().expect("spawn secretctld");
        self.daemon = Some(child);
        self.wait_ready();
    }

    /// Polls `Status` until the daemon answers (fails after 20 s).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut pause = Duration::from_millis(1);
        loop {
            if self.status().is_ok() {
                return;
            }
            if let Some(child) = self.daemon.as_mut()
                && let Ok(Some(code)) = child.try_wait()
            {
                panic!("secretctld exited early with {code}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "secretctld never became ready:\n{}",
                self.log_text()
            );
            std::thread::sleep(pause); // polling interval, not synchronisation
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// One `Status` call through the typed client (an error after 10 s).
    pub fn status(&self) -> Result<secretctl_proto::v1::StatusResponse, RpcError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), Client::new(&self.socket).status())
                .await
                .unwrap_or_else(|_| {
                    Err(RpcError::Unreachable {
                        path: self.socket.clone(),
                        reason: "no answer within 10 s".into(),
                    })
                })
        })
    }

    /// Runs `f` with a typed client on a fresh runtime (fails after 90 s).
    pub fn with_client<T>(&self, f: impl AsyncFnOnce(Client) -> T) -> T {
        block_on_with_limit(CLI_LIMIT, "typed-client calls", async {
            f(Client::new(&self.socket)).await
        })
    }

    /// `secretctl init` with tiny KDF parameters (leaves the vault unlocked).
    pub fn init(&self) {
        let out = self.cli_with_password(&[
            "init",
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "1",
            "--kdf-parallelism",
            "1",
        ]);
        assert_ok(&out, "init");
    }

    /// `secretctl` with args, no stdin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, None)
    }

    /// `secretctl` with args and `SECRETCTL_PASSWORD` set.
    pub fn cli_with_password(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.env("SECRETCTL_PASSWORD", PASSWORD);
        run(cmd, None)
    }

    /// `secretctl` with args and the given stdin.
    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(self.command(args), stdin)
    }

    /// A `secretctl` command with this env applied.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("secretctl"));
        self.apply(&mut cmd);
        cmd.args(args);
        cmd
    }

    /// Stores `value` under `key` through the CLI.
    pub fn set(&self, key: &str, value: &str) {
        let out = self.cli_stdin(&["set", key], Some(value.as_bytes()));
        assert_ok(&out, &format!("set {key}"));
    }

    /// Opens the socket's directories and the socket to other users, so that
    /// a connection from another uid reaches the daemon and only its peer
    /// check can refuse it. Returns false unless running as root, which
    /// dropping to another uid needs (see [`require_root`]: under CI that
    /// is a failure, locally a SKIP line).
    pub fn expose_socket_to_others(&self, test: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        if !require_root(test) {
            return false;
        }
        for p in [
            self.dir.path(),
            self.socket.parent().expect("socket has a directory"),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
        }
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666))
            .expect("chmod socket");
        true
    }

    /// `secretctl status` run as `nobody`. The CLI refuses the socket
    /// itself (it is not nobody's), before the daemon sees anything.
    pub fn status_as_nobody(&self) -> Output {
        let mut cmd = self.as_nobody(&bin("secretctl"), "secretctl-as-nobody");
        self.apply(&mut cmd);
        cmd.arg("status");
        spawn_retrying(cmd, "secretctl status as nobody")
    }

    /// A raw connection to the daemon's socket from `nobody` (see
    /// [`peer_helper`]): what the daemon's own peer check does with another
    /// uid, whatever a client would check first. Returns the helper's line
    /// (`closed` when the daemon hung up without a byte).
    pub fn dial_as_nobody(&self) -> String {
        let mut cmd = self.as_nobody(&peer_helper(), "sc-peer-as-nobody");
        cmd.arg("dial").arg(&self.socket);
        stdout(&spawn_retrying(cmd, "sc-peer dial as nobody"))
            .trim()
            .to_string()
    }

    /// A command running a copy of `program` as `nobody` (uid and gid
    /// 65534). The copy lives in the (exposed) temp dir: the build tree may
    /// sit below directories `nobody` cannot enter, and then exec would fail
    /// before any connection.
    pub fn as_nobody(&self, program: &Path, name: &str) -> Command {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let copy = self.dir.path().join(name);
        if !copy.exists() {
            std::fs::copy(program, &copy).expect("copy the program");
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
                .expect("chmod copy");
        }
        let mut cmd = Command::new(&copy);
        cmd.uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Waits for the daemon this env started to exit by itself, at most
    /// `limit`; `None` if it is still running then (it keeps running).
    pub fn wait_daemon_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.daemon.as_mut()?;
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.daemon = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(pause); // polling interval
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The daemon's pid, if running.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Stops the daemon with SIGTERM and waits for it (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut pause = Duration::from_millis(1);
            while matches!(child.try_wait(), Ok(None)) {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(pause); // polling interval
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// Kills the daemon with SIGKILL (a crash) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts that no secret value appears in the daemon log.
    pub fn assert_log_clean(&self, values: &[&str]) {
        let log = self.log_text();
        for v in values {
            assert!(!log.contains(v), "daemon log contains a secret value {v:?}");
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop();
        // A daemon the CLI autostarted on this test's socket is the test's
        // too: stop it, whatever state the test ended in.
        if self.socket.exists()
            && let Ok(st) = self.status()
        {
            let pid = nix::unistd::Pid::from_raw(st.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            if !gone_within(st.pid as i32, Duration::from_secs(20)) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// The raw socket peer built with the tests (`tests/src/bin/sc-peer.rs`):
/// `listen SOCKET LOG` records what a client sends, `dial SOCKET` sees what
/// a server does with a connection.
pub fn peer_helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sc-peer"))
}

/// Spawns `cmd` and waits for it (see [`run`]); retries while exec fails
/// with ETXTBSY: another test thread forking while a copied binary was
/// open for writing keeps it busy until that child execs.
pub fn spawn_retrying(cmd: Command, what: &str) -> Output {
    wait_output(spawn_child_retrying(cmd, what), CLI_LIMIT, what)
}

/// Spawns `cmd`, retrying while exec fails with ETXTBSY (see
/// [`spawn_retrying`]); the caller waits for the child.
pub fn spawn_child_retrying(mut cmd: Command, what: &str) -> Child {
    for _ in 0..100 {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("spawn {what}: {e}"),
        }
    }
    panic!("{what}: the binary stayed busy");
}

/// Arguments that start `program` under a small `sh` that waits for it.
/// A shim started straight from the test process would register the test
/// process as an agent host, and every later CLI call of the test would be
/// an agent's; under the wrapper, the wrapper is the agent host.
pub fn wrapped(program: &Path) -> (&'static str, Vec<std::ffi::OsString>) {
    // `; exit $?` keeps sh from exec'ing the program in its place.
    (
        "sh",
        vec![
            "-c".into(),
            "\"$@\"; exit $?".into(),
            "sh".into(),
            program.as_os_str().to_owned(),
        ],
    )
}

/// A command that starts the MCP shim under a wrapper process (see
/// [`wrapped`]).
pub fn shim_command() -> tokio::process::Command {
    let (sh, args) = wrapped(&bin("secretctl-mcp"));
    let mut cmd = tokio::process::Command::new(sh);
    cmd.args(args);
    cmd
}

/// Writes a settings file as the daemon requires it: a regular file, mode
/// 0600 (replacing whatever was there, symlinks included).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text).expect("write settings file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl Env {
    /// Creates the home directory (0700) if needed.
    pub fn make_home(&self) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.home)
            .expect("create home");
    }

    /// Writes `mcp-policy.yaml` (0600); it is in force once applied.
    pub fn write_policy(&self, text: &str) {
        self.make_home();
        write_private(&self.home.join("mcp-policy.yaml"), text);
    }

    /// Writes `config.yaml` (0600); read at start, `agent:` once applied.
    pub fn write_config(&self, text: &str) {
        self.make_home();
        write_private(&self.home.join("config.yaml"), text);
    }

    /// `secretctl policy apply`, which must succeed.
    pub fn apply_policy(&self) {
        assert_ok(&self.cli(&["policy", "apply"]), "policy apply");
    }

    /// `secretctl config apply`, which must succeed.
    pub fn apply_config(&self) {
        assert_ok(&self.cli(&["config", "apply"]), "config apply");
    }
}

/// Whether process `pid` exits (or is a zombie) within `limit`.
pub fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10)); // polling interval
    }
    true
}

/// Waits (polling) until process `pid` has exited; zombies count as gone.
pub fn wait_gone(pid: i32) {
    assert!(
        gone_within(pid, Duration::from_secs(10)),
        "process {pid} did not exit"
    );
}

/// Runs a command to completion, feeding `stdin` if given; fails the test
/// (killing the command) if it takes longer than [`CLI_LIMIT`].
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let mut child = cmd.spawn().expect("spawn the command");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let input = input.to_vec();
        // A writer thread: a command that never reads cannot block the test.
        std::thread::spawn(move || {
            // The command may exit before reading (e.g. a usage error): fine.
            let _ = pipe.write_all(&input);
        });
    }
    wait_output(child, CLI_LIMIT, &what)
}

/// Panics with the command's output unless it exited 0.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the exit code, showing the output otherwise.
pub fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: unexpected exit\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stdout as a string.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as a string.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}
