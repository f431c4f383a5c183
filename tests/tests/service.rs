//! Service integration: socket activation with an inherited listener,
//! readiness notification, unit files, plist, completions and man page.

mod common;

use std::process::{Command, Stdio};

use common::*;

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

// LISTEN_FDS socket activation is systemd's (Linux); launchd differs.
#[cfg(target_os = "linux")]
#[test]
fn daemon_serves_an_inherited_socket_and_still_checks_peers() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::DirBuilderExt;
    use std::time::Duration;
    let env = Env::new();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(env.socket.parent().unwrap())
        .unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&env.socket).unwrap();
    // Let the listener survive exec, as a service manager's would.
    let fd = listener.as_raw_fd();
    nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let notify_path = env.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let log = std::fs::File::create(&env.log).unwrap();
    let mut cmd = Command::new("sh");
    env.apply(&mut cmd);
    cmd.env("SECRETCTL_SOCKET", "/nonexistent/ignored.sock") // the inherited socket wins
        .env("NOTIFY_SOCKET", &notify_path)
        .env("LISTEN_FDS", "1")
        .arg("-c")
        .arg(format!("export LISTEN_PID=$$; exec \"$0\" 3<&{fd}"))
        .arg(bin("secretctld"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut child = ChildGuard::new(cmd.spawn().unwrap());
    drop(listener);

    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 from the daemon");
    assert_eq!(&buf[..n], b"READY=1");
    let st = env.status().expect("Status over the inherited socket");
    assert!(st.service_managed, "activation must be reported");
    assert_eq!(st.socket_path, env.socket.display().to_string());

    if env.expose_socket_to_others("daemon_serves_an_inherited_socket_and_still_checks_peers") {
        assert_eq!(
            env.dial_as_nobody(),
            "closed",
            "another uid on an inherited socket"
        );
        assert!(
            env.log_text()
                .contains("refused connection from another uid")
        );
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait(Duration::from_secs(20), "secretctld after SIGTERM");
    assert!(
        env.socket.exists(),
        "an inherited socket belongs to the service manager"
    );
}

#[test]
fn systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!(
            "SKIP systemd_units_verify: systemd-analyze is not installed (Debian package systemd)"
        );
        return;
    }
    let out = run(
        {
            let mut c = Command::new("systemd-analyze");
            c.arg("--version");
            c
        },
        None,
    );
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(repo_file("systemd/secretctld.service"))
        .unwrap()
        .replace(
            "ExecStart=%h/.local/bin/secretctld",
            &format!("ExecStart={}", bin("secretctld").display()),
        );
    std::fs::write(dir.path().join("secretctld.service"), service).unwrap();
    std::fs::copy(
        repo_file("systemd/secretctld.socket"),
        dir.path().join("secretctld.socket"),
    )
    .unwrap();
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["verify", "--man=no"])
        .arg(dir.path().join("secretctld.socket"))
        .arg(dir.path().join("secretctld.service"));
    let out = run(cmd, None);
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn units_have_the_settings_that_matter() {
    let socket = std::fs::read_to_string(repo_file("systemd/secretctld.socket")).unwrap();
    assert!(socket.contains("ListenStream=%t/secretctl/secretctld.sock"));
    assert!(socket.contains("DirectoryMode=0700"));
    let service = std::fs::read_to_string(repo_file("systemd/secretctld.service")).unwrap();
    for line in ["Type=notify", "LimitCORE=0", "LimitMEMLOCK="] {
        assert!(service.contains(line), "{line}");
    }
    for forbidden in ["\nPrivateTmp", "\nProtectHome", "\nProtectSystem"] {
        assert!(
            !service.contains(forbidden),
            "{forbidden} would break the user's commands"
        );
    }
}

#[test]
fn launchd_plist_parses() {
    let plist = repo_file("launchd/com.secretctl.secretctld.plist");
    let check = "import plistlib,sys; p=plistlib.load(open(sys.argv[1],'rb')); assert p['Label']=='com.secretctl.secretctld'; assert 'Listeners' in p['Sockets']; print('ok')";
    if Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("SKIP launchd_plist_parses: python3 (plistlib) not available");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-c", check]).arg(&plist);
    let out = run(cmd, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_and_man_page_generate() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.cli(&["completions", shell]);
        assert_ok(&out, shell);
        assert!(stdout(&out).contains("secretctl"), "{shell}");
    }
    let out = env.cli(&["man"]);
    assert_ok(&out, "man");
    assert!(stdout(&out).contains(".TH"), "roff man page");
    let mut cmd = env.command(&["service", "install", "--print"]);
    cmd.env("HOME", env.dir.path());
    let out = run(cmd, None);
    assert_ok(&out, "service install --print");
    assert!(stdout(&out).contains("would write"), "{}", stdout(&out));
}
