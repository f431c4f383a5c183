//! `secretctl man --dir DIR`: the main page and one page per subcommand
//! (`secretctl-init.1`, `secretctl-audit-list.1`, ...), the names the main
//! page's SEE ALSO refers to.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Result;

/// Writes every page into `dir` (created if missing).
pub fn write_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    write_tree(dir, Cli::command(), "secretctl", &mut written)?;
    outln!("wrote {written} man pages to {}", dir.display());
    Ok(())
}

/// Writes `cmd`'s page as `name.1`, then its subcommands' as
/// `name-sub.1`, recursively.
fn write_tree(dir: &Path, cmd: clap::Command, name: &str, written: &mut usize) -> Result<()> {
    let cmd = cmd.name(name.to_owned()).bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(
            dir,
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            written,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_the_main_page_names_exists() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        write_tree(dir.path(), Cli::command(), "secretctl", &mut n).unwrap();
        let main = std::fs::read_to_string(dir.path().join("secretctl.1")).unwrap();
        for sub in Cli::command()
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
        {
            let page = format!("secretctl-{}", sub.get_name());
            assert!(
                main.contains(&page.replace('-', "\\-")) || main.contains(&page),
                "{page} not named"
            );
            assert!(
                dir.path().join(format!("{page}.1")).exists(),
                "{page}.1 missing"
            );
        }
        assert!(dir.path().join("secretctl-audit-list.1").exists());
        assert!(n > 20, "{n}");
    }
}
