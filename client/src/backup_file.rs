//! Writing a backup file safely (contract §10):
//!
//! - refused before anything is asked if FILE is a symlink, a directory,
//!   or exists without `--force`;
//! - written to a new temp file in FILE's directory (`O_EXCL`,
//!   `O_NOFOLLOW`, mode 0600), fsynced, then put in place by a hard link
//!   (which fails if FILE appeared meanwhile: `O_EXCL` semantics) or, with
//!   `--force`, a rename (which replaces a symlink itself, never its
//!   target); the directory is fsynced. A failed or interrupted backup
//!   leaves no FILE and no temp file.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{CliError, Result};

/// Where a backup goes, checked before anything is asked.
pub struct Target {
    pub path: PathBuf,
    dir: PathBuf,
    /// The file's name, without its directory.
    pub name: OsString,
}

impl Target {
    pub fn check(path: &Path, force: bool) -> Result<Target> {
        let name = path
            .file_name()
            .ok_or_else(|| CliError::usage(format!("'{}' does not name a file", path.display())))?
            .to_os_string();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(CliError::error(format!(
                    "{} is a symlink: refusing to write a backup through it",
                    path.display()
                ))
                .hint("remove the link or choose another file name")
                .into());
            }
            Ok(m) if m.is_dir() => {
                return Err(
                    CliError::usage(format!("{} is a directory", path.display()))
                        .hint("give the backup file's name, e.g. -o DIR/secretctl-backup.age")
                        .into(),
                );
            }
            Ok(_) if !force => {
                return Err(
                    CliError::error(format!("{} already exists", path.display()))
                        .hint("choose another name, or add --force to replace it")
                        .into(),
                );
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", path.display()));
            }
        }
        if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(
                CliError::error(format!("directory {} does not exist", dir.display())).into(),
            );
        }
        Ok(Target {
            path: path.to_path_buf(),
            dir,
            name,
        })
    }

    /// A new private temp file next to the target.
    pub fn temp(&self) -> Result<TempFile> {
        for _ in 0..16 {
            let mut rnd = [0u8; 6];
            getrandom::fill(&mut rnd)
                .map_err(|e| CliError::error(format!("cannot get random bytes: {e}")))?;
            let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
            let mut name = OsString::from(".");
            name.push(&self.name);
            name.push(format!(".tmp-{suffix}"));
            let path = self.dir.join(name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary file in {}", self.dir.display())
                    });
                }
            }
        }
        Err(CliError::error("cannot find a free temporary file name").into())
    }
}

/// The backup being written; removed when dropped unless put in place.
pub struct TempFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl TempFile {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .as_mut()
            .expect("open until placed")
            .write_all(data)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Syncs the file and puts it at `t`; see the module's rules.
    pub fn place(mut self, t: &Target, force: bool) -> Result<()> {
        let file = self.file.take().expect("open until placed");
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        drop(file);
        if force {
            std::fs::rename(&self.path, &t.path)
                .with_context(|| format!("cannot put the backup at {}", t.path.display()))?;
        } else {
            match std::fs::hard_link(&self.path, &t.path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(CliError::error(format!(
                        "{} appeared while the backup was written",
                        t.path.display()
                    ))
                    .hint("choose another name, or add --force to replace it")
                    .into());
                }
                // File systems without hard links (FAT): a rename after a
                // fresh check.
                Err(_) if std::fs::symlink_metadata(&t.path).is_err() => {
                    std::fs::rename(&self.path, &t.path).with_context(|| {
                        format!("cannot put the backup at {}", t.path.display())
                    })?;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot put the backup at {}", t.path.display()));
                }
            }
        }
        // Placed: nothing left to remove.
        self.path = PathBuf::new();
        if let Ok(d) = std::fs::File::open(&t.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
