//! What `/proc` tells about a process: its parent, start time, terminal,
//! real uid and whether its environment holds a marker variable. Reads are
//! sized for these small files (no size probe), and [`StatFiles`] keeps the
//! stat files of known processes open: classification walks read them on
//! every connection.
//!
//! Linux only; elsewhere every read fails, which classification treats as
//! unreadable ancestry (fail closed).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// The fields of `/proc/PID/stat` classification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    /// Controlling terminal (0: none).
    pub tty_nr: i32,
    /// Clock ticks after boot: with the pid, a process's identity.
    pub starttime: u64,
}

/// Largest environment block read (`ARG_MAX`-sized blocks exist; markers
/// are names, so a longer block is read only this far).
const MAX_ENVIRON: u64 = 2 * 1024 * 1024;

fn invalid(pid: i32, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("/proc/{pid}/stat: cannot parse {what}"),
    )
}

/// Reads an open `/proc` text file whole, from offset 0 (a procfs file is
/// generated afresh by a read at offset 0). procfs files report size 0, so
/// `fs::read_to_string` would ask for the size (statx) and then read in
/// growing steps from 32 bytes; here the buffer starts at `cap` bytes, enough
/// for the whole file: one read and one read of EOF.
fn read_whole(file: &File, cap: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; cap];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    // The same error as `fs::read_to_string`'s for a comm that is not UTF-8.
    String::from_utf8(buf).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Bytes reserved for a stat line: ~300 bytes (a 64-byte comm and 50
/// numbers make at most ~1.2 KiB, which a second read takes).
const STAT_CAP: usize = 1024;

/// Parses `/proc/PID/stat`.
pub fn stat(pid: i32) -> std::io::Result<Stat> {
    let file = File::open(format!("/proc/{pid}/stat"))?;
    parse_stat(pid, &read_whole(&file, STAT_CAP)?)
}

/// Most `/proc/PID/stat` files kept open at once (then all are closed):
/// enough for a few deep ancestries, far below the descriptor limit.
const MAX_OPEN: usize = 64;

/// `/proc/PID/stat` files kept open by pid, so that a classification walk
/// reads an ancestor it has seen before with one `pread` instead of open +
/// read + close (half the cost; the walk reads every ancestor's parent link
/// on every connection).
///
/// Invariant: an open `/proc/PID/stat` belongs to the process it was opened
/// for, not to the number. Once that process is reaped, reads of the file
/// fail (ESRCH), even if the pid was reused since. So a read that succeeds
/// describes the process that holds the pid now, exactly as a fresh open
/// would; a read that fails (or does not parse) drops the file and the pid
/// is opened afresh.
#[derive(Default)]
pub struct StatFiles {
    files: Mutex<HashMap<i32, File>>,
}

impl StatFiles {
    /// Parses `/proc/PID/stat`, as [`stat`] does.
    pub fn stat(&self, pid: i32) -> std::io::Result<Stat> {
        let mut files = self
            .files
            .lock()
            .expect("stat files lock is never poisoned");
        if let Some(file) = files.get(&pid) {
            if let Ok(st) = read_whole(file, STAT_CAP).and_then(|t| parse_stat(pid, &t)) {
                return Ok(st);
            }
            files.remove(&pid);
        }
        let file = File::open(format!("/proc/{pid}/stat"))?;
        let text = read_whole(&file, STAT_CAP)?;
        if files.len() >= MAX_OPEN {
            files.clear();
        }
        files.insert(pid, file);
        parse_stat(pid, &text)
    }
}

fn parse_stat(pid: i32, text: &str) -> std::io::Result<Stat> {
    // `comm` may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(').ok_or_else(|| invalid(pid, "comm"))?;
    let close = text.rfind(')').ok_or_else(|| invalid(pid, "comm"))?;
    let comm = text.get(open + 1..close).unwrap_or_default().to_string();
    let rest: Vec<&str> = text
        .get(close + 1..)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // rest[0] is field 3 (state); starttime is field 22.
    let field = |n: usize| {
        rest.get(n - 3)
            .copied()
            .ok_or_else(|| invalid(pid, "fields"))
    };
    Ok(Stat {
        comm,
        state: field(3)?.chars().next().unwrap_or('?'),
        ppid: field(4)?.parse().map_err(|_| invalid(pid, "ppid"))?,
        tty_nr: field(7)?.parse().map_err(|_| invalid(pid, "tty_nr"))?,
        starttime: field(22)?.parse().map_err(|_| invalid(pid, "starttime"))?,
    })
}

/// Direct children of `parent`, from a scan of `/proc`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_ok_and(|s| s.ppid == parent))
        .collect()
}

/// The real uid of `pid` (from `/proc/PID/status`).
pub fn real_uid(pid: i32) -> std::io::Result<u32> {
    // ~1.5 KiB on current kernels.
    let text = read_whole(&File::open(format!("/proc/{pid}/status"))?, 4096)?;
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/status has no Uid line"),
            )
        })
}

/// The first of `markers` set in `pid`'s environment, if any. Fails when the
/// environment cannot be read (another uid, a non-dumpable process).
pub fn marker_in_environ(pid: i32, markers: &[String]) -> std::io::Result<Option<String>> {
    // Most environments fit: one read of the block (each read copies from
    // the other process's memory, so growing from 32 bytes costs).
    let mut buf = Vec::with_capacity(16 * 1024);
    File::open(format!("/proc/{pid}/environ"))?
        .take(MAX_ENVIRON)
        .read_to_end(&mut buf)?;
    Ok(marker_in(&buf, markers))
}

fn marker_in(block: &[u8], markers: &[String]) -> Option<String> {
    block.split(|b| *b == 0).find_map(|entry| {
        let name = entry.split(|b| *b == b'=').next()?;
        markers.iter().find(|m| m.as_bytes() == name).cloned()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Waits until a child spawned with a non-empty environment shows it:
    /// `spawn` returns once the child has left our memory, a moment before
    /// the kernel has set up the new program's environment.
    #[cfg(target_os = "linux")]
    pub(crate) fn exec_done(pid: u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(format!("/proc/{pid}/environ")).map_or(true, |e| e.is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} shows no environment"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "4242 (my (odd) prog) S 17 4242 4242 34816 4242 4194304 1 2 3 4 5 6 7 8 20 0 1 0 987654 12345 67";
        let s = parse_stat(4242, line).unwrap();
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(
            (s.state, s.ppid, s.tty_nr, s.starttime),
            ('S', 17, 34816, 987654)
        );
        assert!(parse_stat(1, "garbage").is_err());
        assert!(parse_stat(1, "1 (x) S 0").is_err());
    }

    #[test]
    fn markers_match_whole_names_only() {
        let m = vec!["CLAUDECODE".to_string(), "SECRETCTL_AGENT".to_string()];
        assert_eq!(
            marker_in(b"A=1\0CLAUDECODE=1\0", &m),
            Some("CLAUDECODE".into())
        );
        assert_eq!(
            marker_in(b"NOT_CLAUDECODE=1\0CLAUDECODEX=1\0X=CLAUDECODE\0", &m),
            None
        );
        assert_eq!(
            marker_in(b"SECRETCTL_AGENT\0", &m),
            Some("SECRETCTL_AGENT".into())
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_kept_stat_file_reads_the_process_now_and_fails_once_it_is_reaped() {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; exec sleep 30"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let files = StatFiles::default();
        assert_eq!(files.stat(pid).unwrap().comm, "sh");
        assert!(files.files.lock().unwrap().contains_key(&pid));
        writeln!(child.stdin.take().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The kept file, read again, shows the exec.
        while files.stat(pid).unwrap().comm != "sleep" {
            assert!(std::time::Instant::now() < deadline, "no exec seen");
            std::thread::sleep(std::time::Duration::from_millis(5)); // polling interval
        }
        assert!(files.files.lock().unwrap().contains_key(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(files.stat(pid).is_err(), "a reaped process is not read");
        assert!(!files.files.lock().unwrap().contains_key(&pid));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert_eq!(s.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(StatFiles::default().stat(me).unwrap(), s);
        assert_eq!(real_uid(me).unwrap(), nix::unistd::getuid().as_raw());
        assert!(marker_in_environ(me, &["PATH".into()]).unwrap().is_some());
    }

    /// A marker after a large variable is still found (the environment is
    /// read up to 2 MiB).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_marker_behind_a_large_environment_is_found() {
        let mut child = std::process::Command::new("/bin/cat")
            .env_clear()
            .env("AAA_FILLER", "f".repeat(100_000))
            .env("CLAUDECODE", "1")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        exec_done(child.id());
        let found = marker_in_environ(child.id() as i32, &["CLAUDECODE".into()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.unwrap(), Some("CLAUDECODE".into()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn children_and_real_uids_of_other_processes() {
        use std::os::unix::process::CommandExt;
        let me = std::process::id() as i32;
        // As root the child runs as nobody, so its uid differs from ours.
        let uid = if nix::unistd::geteuid().is_root() {
            65534
        } else {
            nix::unistd::getuid().as_raw()
        };
        let mut child = std::process::Command::new("/bin/cat")
            .uid(uid)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let kids = children_of(me);
        let child_uid = real_uid(pid);
        let grandchildren = children_of(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&pid), "{kids:?}");
        for k in &kids {
            // Children that exited meanwhile may be gone; the rest are ours.
            if let Ok(s) = stat(*k) {
                assert_eq!(s.ppid, me, "{k}");
            }
        }
        assert_eq!(grandchildren, Vec::<i32>::new());
        assert_eq!(child_uid.unwrap(), uid);
    }
}
