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

/// What `install` writes and runs on this platform.
pub fn install_plan(home: &Path, daemon: &Path, uid: u32) -> Plan {
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

pub async fn install(print: bool) -> Result<()> {
    let uid = nix::unistd::getuid().as_raw();
    let home = home()?;
    let plan = install_plan(&home, &daemon_path(), uid);
    if print {
        print_plan(&plan, false)?;
        return Ok(());
    }
    // A daemon the CLI started holds the socket path: stop it first.
    if let Ok(Some(client)) = crate::connect::existing().await
        && let Ok(st) = client.status().await
        && !st.service_managed
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(st.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        eprintln!(
            "stopped the running secretctld (pid {}); unlock again after install",
            st.pid
        );
    }
    for (path, content) in &plan.files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::error(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(path, content)
            .map_err(|e| CliError::error(format!("cannot write {}: {e}", path.display())))?;
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
    for c in &plan.commands {
        run_cmd(c)?;
    }
    outln!("secretctld service installed; it starts on the first connection");
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
}
