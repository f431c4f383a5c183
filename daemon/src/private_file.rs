//! Reading a settings file of `SECRETCTL_HOME` safely: opened with
//! `O_NOFOLLOW` and checked through that same descriptor (a regular file,
//! owned by us, no group/other bits, not too large), so it cannot be swapped
//! between the check and the read.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a settings file cannot be used; each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("no {what} at {path}")]
    Missing { what: &'static str, path: PathBuf },
    #[error("{what} {path} {problem}: {fix}")]
    Insecure {
        what: &'static str,
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("{what} {path}: {message}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
}

/// Reads `path` (a `what`, e.g. "policy file") as UTF-8 text of at most
/// `max` bytes, refusing a symlink, a non-regular file, another owner or
/// group/other permission bits.
pub fn read(path: &Path, what: &'static str, max: u64) -> Result<String, FileError> {
    let insecure = |problem: &str, fix: String| FileError::Insecure {
        what,
        path: path.to_path_buf(),
        problem: problem.to_string(),
        fix,
    };
    let invalid = |message: String| FileError::Invalid {
        what,
        path: path.to_path_buf(),
        message,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::Missing {
                what,
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(insecure(
                "is a symlink",
                format!(
                    "replace it with a regular file: cp --remove-destination \"$(readlink -f {0})\" {0}",
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(invalid(format!("cannot open: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| invalid(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(insecure(
            "is not a regular file",
            "replace it with a regular file".into(),
        ));
    }
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(insecure(
            &format!("is owned by uid {}, not by you (uid {uid})", meta.uid()),
            format!("chown {uid} {}", path.display()),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(insecure(
            &format!("has mode {mode:04o}, writable or readable by others"),
            format!("chmod 600 {}", path.display()),
        ));
    }
    if meta.len() > max {
        return Err(invalid(format!("is larger than {max} bytes")));
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| invalid(format!("cannot read as UTF-8: {e}")))?;
    if text.len() as u64 > max {
        return Err(invalid(format!("is larger than {max} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn refuses_what_others_could_have_written() {
        let d = tempfile::tempdir().unwrap();
        let ok = write(d.path(), "ok", "hello", 0o600);
        assert_eq!(read(&ok, "file", 100).unwrap(), "hello");
        let open = write(d.path(), "open", "x", 0o644);
        let e = read(&open, "file", 100).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert!(
            read(&link, "file", 100)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
        assert!(matches!(
            read(&d.path().join("none"), "file", 100),
            Err(FileError::Missing { .. })
        ));
        assert!(read(d.path(), "file", 100).is_err(), "a directory");
        let big = write(d.path(), "big", &"x".repeat(101), 0o600);
        assert!(
            read(&big, "file", 100)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
    }

    #[test]
    fn a_file_of_exactly_max_bytes_is_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let text = "y".repeat(100);
        let exact = write(d.path(), "exact", &text, 0o600);
        assert_eq!(read(&exact, "file", 100).unwrap(), text);
    }

    #[test]
    fn an_open_failure_other_than_a_symlink_is_not_called_one() {
        let d = tempfile::tempdir().unwrap();
        let plain = write(d.path(), "plain", "x", 0o600);
        // Opening plain/x fails with ENOTDIR.
        match read(&plain.join("x"), "file", 100) {
            Err(FileError::Invalid { message, .. }) => {
                assert!(message.contains("cannot open"), "{message}")
            }
            other => panic!("{:?}", other.map(|t| t.len())),
        }
    }

    /// A file that reads longer than its size said (it grew after the
    /// check) is still refused past `max`, not cut short and accepted. A
    /// /proc file does that: it reports size 0.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_longer_than_its_stat_size_is_refused_past_max() {
        // A child of ours with a known environment: its /proc/PID/environ
        // is ours, mode 0400, size 0, and 70 bytes long.
        let mut child = std::process::Command::new("cat")
            .env_clear()
            .env("FILLER", "a".repeat(62))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        crate::caller::procfs::tests::exec_done(child.id());
        let environ = PathBuf::from(format!("/proc/{}/environ", child.id()));
        assert_eq!(std::fs::metadata(&environ).unwrap().len(), 0);
        let r = read(&environ, "file", 8);
        let whole = read(&environ, "file", 100);
        child.kill().unwrap();
        child.wait().unwrap();
        match r {
            Err(FileError::Invalid { message, .. }) => {
                assert!(message.contains("larger than 8 bytes"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(whole.unwrap(), format!("FILLER={}\0", "a".repeat(62)));
    }
}
