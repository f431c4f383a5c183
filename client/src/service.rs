//! `service install | uninstall | status`: run secretctld as a systemd user
//! service (Linux) or a LaunchAgent (macOS), both socket-activated. The unit
//! files are the ones in the repository's `systemd/` and `launchd/`
//! directories, with this installation's paths filled in.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{CliError, Result};

const SOCKET_UNIT: &str = include_str!("../../systemd/secretctld.socket");
const SERVICE_UNIT: &str = include_str!("../../systemd/secretctld.service");
const PLIST: &str = include_str!("../../launchd/com.secretctl.secretctld.plist");
const PLIST_LABEL: &str = "com.secretctl.secretctld";

/// A file to write and the commands that activate it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub files: Vec<(PathBuf, String)>,
    pub commands: Vec<Vec<String>>,
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| CliError::error("HOME is not set").into())
}

fn daemon_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("secretctld")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/secretctld"))
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Where systemd user units live.
pub fn systemd_dir(home: &Path) -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("systemd/user")
}

/// The LaunchAgent path.
pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{PLIST_LABEL}.plist"))
}

/// Non-default locations the units must carry: `SECRETCTL_HOME` and
/// `SECRETCTL_SOCKET` when set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Custom {
    pub home: Option<PathBuf>,
    pub socket: Option<PathBuf>,
}

impl Custom {
    /// From this process's environment.
    pub fn from_env() -> Custom {
        let get = |n: &str| {
            std::env::var_os(n)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Custom {
            home: get("SECRETCTL_HOME"),
            socket: get("SECRETCTL_SOCKET"),
        }
    }
}

/// What `install` writes and runs on this platform.
pub fn install_plan(home: &Path, daemon: &Path, uid: u32) -> Plan {
    install_plan_with(home, daemon, uid, &Custom::default())
        .expect("default locations always fit the units")
}

/// Like [`install_plan`], with non-default locations written into the
/// units. A LaunchAgent cannot take them: refused, naming why.
pub fn install_plan_with(home: &Path, daemon: &Path, uid: u32, custom: &Custom) -> Result<Plan> {
    let mut plan = base_plan(home, daemon, uid);
    if custom == &Custom::default() {
        return Ok(plan);
    }
    if cfg!(target_os = "macos") {
        return Err(CliError::error(
            "the LaunchAgent serves only the default locations, and SECRETCTL_HOME or SECRETCTL_SOCKET is set",
        )
        .hint("unset them to install the service, or keep the on-demand daemon secretctl starts")
        .into());
    }
    for p in [&custom.home, &custom.socket].into_iter().flatten() {
        let text = p.display().to_string();
        if !p.is_absolute()
            || text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '%')
        {
            return Err(CliError::error(format!(
                "{text} cannot go into a systemd unit: use an absolute path without spaces or %"
            ))
            .into());
        }
    }
    for (path, content) in &mut plan.files {
        if path.ends_with("secretctld.socket")
            && let Some(sock) = &custom.socket
        {
            *content = content.replace(
                "ListenStream=%t/secretctl/secretctld.sock",
                &format!("ListenStream={}", sock.display()),
            );
        }
        if path.ends_with("secretctld.service")
            && let Some(h) = &custom.home
        {
            *content = content.replace(
                "Environment=SECRETCTL_LOG=info",
                &format!(
                    "Environment=SECRETCTL_LOG=info\nEnvironment=SECRETCTL_HOME={}",
                    h.display()
                ),
            );
        }
    }
    Ok(plan)
}

fn base_plan(home: &Path, daemon: &Path, uid: u32) -> Plan {
    if cfg!(target_os = "macos") {
        let bin = daemon
            .parent()
            .unwrap_or(Path::new("/usr/local/bin"))
            .display()
            .to_string();
        let plist = PLIST
            .replace("@BIN@", &bin)
            .replace("@HOME@", &home.display().to_string());
        let path = plist_path(home);
        Plan {
            commands: vec![cmd(&[
                "launchctl",
                "bootstrap",
                &format!("gui/{uid}"),
                &path.display().to_string(),
            ])],
            files: vec![(path, plist)],
        }
    } else {
        let dir = systemd_dir(home);
        let service = SERVICE_UNIT.replace(
            "ExecStart=%h/.local/bin/secretctld",
            &format!("ExecStart={}", daemon.display()),
        );
        Plan {
            files: vec![
                (dir.join("secretctld.socket"), SOCKET_UNIT.to_string()),
                (dir.join("secretctld.service"), service),
            ],
            commands: vec![
                cmd(&["systemctl", "--user", "daemon-reload"]),
                cmd(&[
                    "systemctl",
                    "--user",
                    "enable",
                    "--now",
                    "secretctld.socket",
                ]),
            ],
        }
    }
}

/// What `uninstall` runs and removes.
pub fn uninstall_plan(home: &Path, uid: u32) -> Plan {
    if cfg!(target_os = "macos") {
        Plan {
            commands: vec![cmd(&[
                "launchctl",
                "bootout",
                &format!("gui/{uid}/{PLIST_LABEL}"),
            ])],
            files: vec![(plist_path(home), String::new())],
        }
    } else {
        let dir = systemd_dir(home);
        Plan {
            commands: vec![
                cmd(&[
                    "systemctl",
                    "--user",
                    "disable",
                    "--now",
                    "secretctld.socket",
                    "secretctld.service",
                ]),
                cmd(&["systemctl", "--user", "daemon-reload"]),
            ],
            files: vec![
                (dir.join("secretctld.socket"), String::new()),
                (dir.join("secretctld.service"), String::new()),
            ],
        }
    }
}

/// The command that restarts an installed service, if one is installed.
/// The command that stops the installed service, if one is installed.
pub fn installed_stop_command() -> Option<String> {
    installed_restart_command().map(|restart| {
        if cfg!(target_os = "macos") {
            format!(
                "launchctl bootout gui/{}/{PLIST_LABEL} (restart: {restart})",
                nix::unistd::getuid()
            )
        } else {
            format!(
                "systemctl --user stop secretctld.socket secretctld.service (restart: {restart})"
            )
        }
    })
}

pub fn installed_restart_command() -> Option<String> {
    let home = home().ok()?;
    if cfg!(target_os = "macos") {
        plist_path(&home).exists().then(|| {
            format!(
                "launchctl kickstart -k gui/{}/{PLIST_LABEL}",
                nix::unistd::getuid()
            )
        })
    } else {
        systemd_dir(&home)
            .join("secretctld.socket")
            .exists()
            .then(|| "systemctl --user restart secretctld.service".to_string())
    }
}

fn run_cmd(c: &[String]) -> Result<()> {
    let status = Command::new(&c[0])
        .args(&c[1..])
        .status()
        .map_err(|e| CliError::error(format!("cannot run {}: {e}", c[0])))?;
    if !status.success() {
        return Err(CliError::error(format!("'{}' failed ({status})", c.join(" "))).into());
    }
    Ok(())
}

fn print_plan(p: &Plan, remove: bool) -> Result<()> {
    for (path, content) in &p.files {
        if remove {
            outln!("# would remove {}", path.display());
        } else {
            outln!("# would write {}\n{content}", path.display());
        }
    }
    for c in &p.commands {
        outln!("# would run: {}", c.join(" "));
    }
    Ok(())
}

/// Whether the service manager can be used at all, before anything is
/// changed: a user systemd instance on its bus, or `launchctl`.
fn check_manager() -> Result<()> {
    let (probe, what): (&[&str], &str) = if cfg!(target_os = "macos") {
        (&["launchctl", "print", "system"], "launchctl")
    } else {
        (
            &["systemctl", "--user", "show-environment"],
            "a systemd user session",
        )
    };
    let ok = Command::new(probe[0])
        .args(&probe[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(());
    }
    Err(CliError::error(format!(
        "{what} is not reachable ('{}' failed): nothing was installed or changed",
        probe.join(" ")
    ))
    .hint(if cfg!(target_os = "macos") {
        "run it in your login session".to_string()
    } else {
        "log in through a session that starts 'systemd --user' (check: systemctl --user status), or keep the on-demand daemon secretctl starts".to_string()
    })
    .into())
}

pub async fn install(print: bool) -> Result<()> {
    let uid = nix::unistd::getuid().as_raw();
    let home = home()?;
    let plan = install_plan_with(&home, &daemon_path(), uid, &Custom::from_env())?;
    if print {
        print_plan(&plan, false)?;
        return Ok(());
    }
    check_manager()?;
    // Written files and what they replaced, to roll back on failure.
    let mut written: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
    let result = install_steps(&home, &plan, &mut written).await;
    if let Err(e) = result {
        for (path, before) in written.iter().rev() {
            let _ = match before {
                Some(old) => std::fs::write(path, old),
                None => std::fs::remove_file(path),
            };
        }
        if !cfg!(target_os = "macos") {
            let _ = Command::new("systemctl")
                .args(["--user", "daemon-reload"])
                .status();
        }
        return Err(
            e.context("the service was not installed; the files written were removed again")
        );
    }
    outln!("secretctld service installed; it starts on the first connection");
    Ok(())
}

async fn install_steps(
    home: &Path,
    plan: &Plan,
    written: &mut Vec<(PathBuf, Option<Vec<u8>>)>,
) -> Result<()> {
    for (path, content) in &plan.files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let before = std::fs::read(path).ok();
        std::fs::write(path, content)
            .map_err(|e| CliError::error(format!("cannot write {}: {e}", path.display())))?;
        written.push((path.clone(), before));
        outln!("wrote {}", path.display());
    }
    if cfg!(target_os = "macos") {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::create_dir_all(home.join("Library/Logs/secretctl"));
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home.join(".secretctl/run"));
    }
    // A daemon the CLI started holds the socket path: stop it, last thing
    // before the service takes over.
    if let Ok(Some(client)) = crate::connect::existing().await
        && let Ok(st) = client.status().await
        && !st.service_managed
    {
        crate::connect::stop_daemon(&client, st.pid).await?;
        eprintln!(
            "stopped the running secretctld (pid {}); unlock again after install",
            st.pid
        );
    }
    for c in &plan.commands {
        run_cmd(c)?;
    }
    Ok(())
}

pub async fn uninstall(print: bool) -> Result<()> {
    let plan = uninstall_plan(&home()?, nix::unistd::getuid().as_raw());
    if print {
        print_plan(&plan, true)?;
        return Ok(());
    }
    for c in &plan.commands {
        if let Err(e) = run_cmd(c) {
            eprintln!("warning: {e:#}");
        }
    }
    for (path, _) in &plan.files {
        match std::fs::remove_file(path) {
            Ok(()) => outln!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    CliError::error(format!("cannot remove {}: {e}", path.display())).into(),
                );
            }
        }
    }
    Ok(())
}

pub async fn status(print: bool) -> Result<()> {
    let home = home()?;
    if print {
        print_plan(
            &install_plan(&home, &daemon_path(), nix::unistd::getuid().as_raw()),
            false,
        )?;
        return Ok(());
    }
    match installed_restart_command() {
        Some(restart) => outln!("service: installed (restart with: {restart})"),
        None => outln!("service: not installed (the CLI starts secretctld on demand)"),
    }
    match crate::connect::existing().await? {
        Some(c) => {
            let st = c.status().await?;
            outln!(
                "daemon:  running, pid {}, version {}, {}",
                st.pid,
                st.version,
                if st.service_managed {
                    "started by the service manager"
                } else {
                    "started by the CLI"
                }
            );
        }
        None => outln!("daemon:  not running"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fill_in_paths() {
        let p = install_plan(
            Path::new("/home/u"),
            Path::new("/opt/sc/bin/secretctld"),
            1000,
        );
        if cfg!(target_os = "macos") {
            assert!(p.files[0].1.contains("/opt/sc/bin/secretctld"));
            assert!(!p.files[0].1.contains("@HOME@"));
        } else {
            assert_eq!(
                p.files[0].0,
                systemd_dir(Path::new("/home/u")).join("secretctld.socket")
            );
            assert!(p.files[1].1.contains("ExecStart=/opt/sc/bin/secretctld"));
            assert!(p.files[1].1.contains("LimitCORE=0"));
            assert_eq!(
                p.commands[1],
                cmd(&[
                    "systemctl",
                    "--user",
                    "enable",
                    "--now",
                    "secretctld.socket"
                ])
            );
        }
        let u = uninstall_plan(Path::new("/home/u"), 1000);
        assert!(!u.commands.is_empty() && !u.files.is_empty());
    }

    #[cfg(not(target_os = "macos"))]
    #[test]
    fn custom_locations_go_into_the_units() {
        let custom = Custom {
            home: Some("/data/sc".into()),
            socket: Some("/run/user/7/sc/d.sock".into()),
        };
        let p = install_plan_with(
            Path::new("/home/u"),
            Path::new("/bin/secretctld"),
            7,
            &custom,
        )
        .unwrap();
        assert!(p.files[0].1.contains("ListenStream=/run/user/7/sc/d.sock"));
        assert!(!p.files[0].1.contains("%t/secretctl"));
        assert!(p.files[1].1.contains("Environment=SECRETCTL_HOME=/data/sc"));
        let bad = Custom {
            home: Some("rel/dir".into()),
            socket: None,
        };
        assert!(install_plan_with(Path::new("/home/u"), Path::new("/bin/x"), 7, &bad).is_err());
    }
}
