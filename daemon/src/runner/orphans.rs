//! Orphans of runs. The daemon is a child subreaper: when a run's
//! supervisor dies before finishing its tree (someone killed it), what was
//! left is re-parented to the daemon instead of escaping to init. The only
//! children the daemon ever starts are supervisors, so any other child is
//! such an orphan: it is killed and reaped here. (The classifier already
//! treats one that calls the daemon as an agent.)

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::caller::procfs;
use crate::caller::registry::Registry;

/// Makes this process a child subreaper (Linux); warns where it cannot.
pub fn become_subreaper() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper: orphans of killed run supervisors escape to init");
    }
}

/// Kills and reaps every child of the daemon that is not a live run
/// supervisor.
pub fn sweep(registry: &Registry) {
    let _spawning = registry.spawning();
    let me = std::process::id() as i32;
    for pid in procfs::children_of(me) {
        if registry.is_supervisor(pid) {
            continue;
        }
        tracing::warn!(pid, "killing an orphan of a run whose supervisor is gone");
        let p = Pid::from_raw(pid);
        let _ = kill(p, Signal::SIGKILL);
        let _ = waitpid(p, Some(WaitPidFlag::WNOHANG));
    }
}

/// Sweeps whenever a child of the daemon changes state; runs until the
/// daemon stops.
pub async fn watch(session: std::sync::Arc<crate::session::Session>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut chld) = signal(SignalKind::child()) else {
        tracing::warn!("cannot watch SIGCHLD; orphans of runs are swept only when a run ends");
        return std::future::pending().await;
    };
    while chld.recv().await.is_some() {
        let s = session.clone();
        let _ = tokio::task::spawn_blocking(move || sweep(&s.caller.registry)).await;
    }
}
