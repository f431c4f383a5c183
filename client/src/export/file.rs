//! Writing an export to a file (contract §10): created 0600, never through
//! a symbolic link, and never over an existing file unless asked.
//!
//! - Without `--force` the file is created with `O_CREAT|O_EXCL` (which
//!   never follows a symlink, dangling or not, and fails if anything
//!   exists at the path) and `O_NOFOLLOW`, mode 0600.
//! - With `--force` the export goes to a new 0600 file beside the target
//!   (`O_EXCL`, random name) which is then renamed over it: `rename`
//!   replaces the directory entry itself, so neither a symlink planted at
//!   the path nor the old file's mode or hard links ever see the plaintext,
//!   and a reader of the path sees the old file or the whole new one.
//!   A symlink at the path is refused even so (a mistake worth knowing
//!   about), as is anything but a regular file.
//!
//! A file this command created is removed again if writing it fails.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Why the target cannot be written; checked again at the write itself.
pub fn check_target(path: &Path, force: bool) -> Result<(), CliError> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::error(format!("cannot check {shown}: {e}"))),
        Ok(m) if m.file_type().is_symlink() => Err(CliError::error(format!(
            "{shown} is a symbolic link: refusing to write secrets through it"
        ))
        .hint("name the real file, or remove the link")),
        Ok(_) if !force => Err(CliError::error(format!("{shown} already exists"))
            .hint("pass --force to replace it, or choose another name")),
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => Err(CliError::error(
            format!("{shown} is not a regular file: write to stdout and redirect instead"),
        )),
        Ok(_) => Err(CliError::error(format!("{shown} is not a regular file"))),
    }
}

fn open_new(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

fn write_and_sync(mut f: std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)?;
    f.sync_all()
}

/// A name for the temporary file beside `path`.
fn temp_beside(path: &Path) -> Result<PathBuf, CliError> {
    let name = path
        .file_name()
        .ok_or_else(|| CliError::usage(format!("{} names no file", path.display())))?;
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd)
        .map_err(|e| CliError::error(format!("no randomness for a temporary name: {e}")))?;
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{suffix}.tmp"));
    Ok(path.with_file_name(tmp))
}

/// Writes `bytes` to `path` as described in the module docs.
pub fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    check_target(path, force)?;
    let shown = path.display();
    if !force {
        let f = open_new(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::error(format!("{shown} already exists"))
                .hint("pass --force to replace it, or choose another name"),
            _ => CliError::error(format!("cannot create {shown}: {e}")),
        })?;
        return write_and_sync(f, bytes).map_err(|e| {
            let _ = std::fs::remove_file(path);
            CliError::error(format!("cannot write {shown}: {e}"))
        });
    }
    let tmp = temp_beside(path)?;
    let f = open_new(&tmp).map_err(|e| {
        CliError::error(format!(
            "cannot create a temporary file beside {shown}: {e}"
        ))
    })?;
    let done = write_and_sync(f, bytes)
        .and_then(|()| {
            // The last look before the swap: a symlink planted meanwhile is
            // refused (the rename would replace it, not follow it, anyway).
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(
                    "it became a symbolic link: refusing to replace it",
                )),
                _ => Ok(()),
            }
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::error(format!("cannot write {shown}: {e}")));
    }
    // Make the new entry durable too (best effort: the data already is).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_0600_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.env");
        write_private(&p, b"A='1'\n", false).unwrap();
        assert_eq!(mode(&p), 0o600);
        let e = write_private(&p, b"B='2'\n", false).unwrap_err();
        assert!(e.message.contains("already exists"), "{}", e.message);
        assert_eq!(std::fs::read(&p).unwrap(), b"A='1'\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&p, b"B='2'\n", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"B='2'\n");
        assert_eq!(mode(&p), 0o600, "replaced, not rewritten in place");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = dir.path().join("dangling.env");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        for force in [false, true] {
            for l in [&link, &dangling] {
                let e = write_private(l, b"S='x'\n", force).unwrap_err();
                assert!(e.message.contains("symbolic link"), "{}", e.message);
            }
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!dir.path().join("nothing").exists());
        // O_EXCL itself refuses a dangling link planted after the check.
        assert!(open_new(&dangling).is_err());
        assert!(!dir.path().join("nothing").exists());
    }
}
