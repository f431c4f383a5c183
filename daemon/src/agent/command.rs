//! Which commands an agent may run (contract §7).
//!
//! - A bare name (`npm`) is looked up only in the trusted directories (the
//!   system bin directories plus `trusted_directories`), never on a PATH the
//!   agent controls; a path with `/` (`./test.sh`) is resolved against the
//!   run's cwd. Symlinks are resolved before anything is compared.
//! - An entry with spaces (`npm test`) allows that argv prefix. An entry
//!   without `/` matches the name asked for (a bare name); an entry with `/`
//!   matches the resolved path.
//! - A command runs only if an allowed entry (or `default_action: allow`)
//!   matches and no denied entry matches the name asked for or the resolved
//!   path. `env`, `printenv` and secretctl's own binaries are always denied.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::policy::{DefaultAction, Policy};

/// System directories searched for bare command names.
pub const SYSTEM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];
/// Always refused: they print or reach every secret.
pub const ALWAYS_DENIED: [&str; 5] = [
    "env",
    "printenv",
    "secretctl",
    "secretctld",
    "secretctl-mcp",
];
/// Shells: they expand `$NAME` from their environment themselves.
pub const SHELLS: [&str; 6] = ["sh", "bash", "dash", "zsh", "ksh", "fish"];
/// Interpreters that can print a secret in a form no redactor recognises.
pub const INTERPRETERS: [&str; 14] = [
    "python",
    "node",
    "nodejs",
    "deno",
    "bun",
    "perl",
    "ruby",
    "php",
    "lua",
    "luajit",
    "pwsh",
    "osascript",
    "tclsh",
    "irb",
];

/// The last path component of a command.
pub fn base_name(cmd: &str) -> &str {
    cmd.rsplit('/').next().unwrap_or(cmd)
}

/// True for shells.
pub fn is_shell(cmd: &str) -> bool {
    SHELLS.contains(&base_name(cmd))
}

/// True for shells and interpreters (`python3.12` counts as `python`).
pub fn is_interpreter(cmd: &str) -> bool {
    let name = base_name(cmd);
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    is_shell(name) || INTERPRETERS.contains(&stem) || INTERPRETERS.contains(&name)
}

/// The directories a bare name is looked up in.
pub fn trusted_dirs(policy: &Policy) -> Vec<PathBuf> {
    SYSTEM_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(policy.trusted_directories.iter().cloned())
        .collect()
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves the command as asked: a bare name through `trusted`, a path
/// against `cwd`; symlinks resolved.
pub fn resolve(asked: &str, cwd: &Path, trusted: &[PathBuf]) -> Result<PathBuf, String> {
    let shown = secretctl_proto::text::shown(asked);
    if asked.is_empty() {
        return Err("no command given".into());
    }
    if asked.contains('/') {
        let p = cwd.join(asked);
        return match std::fs::canonicalize(&p) {
            Ok(real) if is_executable_file(&real) => Ok(real),
            Ok(real) => Err(format!(
                "'{shown}' ({}) is not an executable file",
                real.display()
            )),
            Err(_) => Err(format!("'{shown}' does not exist in {}", cwd.display())),
        };
    }
    for dir in trusted {
        let candidate = dir.join(asked);
        if is_executable_file(&candidate) {
            return std::fs::canonicalize(&candidate)
                .map_err(|e| format!("cannot resolve {}: {e}", candidate.display()));
        }
    }
    let dirs: Vec<String> = trusted.iter().map(|d| d.display().to_string()).collect();
    Err(format!(
        "'{shown}' was not found in the trusted directories ({}): add its directory to trusted_directories in mcp-policy.yaml",
        dirs.join(", ")
    ))
}

/// Why a command was refused; names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

struct Entry<'a> {
    text: &'a str,
    cmd: &'a str,
    args: Vec<&'a str>,
}

fn entry(text: &str) -> Entry<'_> {
    let mut words = text.split_whitespace();
    let cmd = words.next().unwrap_or("");
    Entry {
        text,
        cmd,
        args: words.collect(),
    }
}

fn args_match(e: &Entry<'_>, argv: &[String]) -> bool {
    argv.len() > e.args.len() && e.args.iter().zip(&argv[1..]).all(|(a, b)| *a == b)
}

fn path_entry_matches(e: &Entry<'_>, resolved: &Path, cwd: &Path) -> bool {
    std::fs::canonicalize(cwd.join(e.cmd)).is_ok_and(|p| p == resolved)
}

/// Checks `argv` against the policy; returns the resolved executable.
pub fn check(policy: &Policy, argv: &[String], cwd: &Path) -> Result<PathBuf, Refused> {
    let asked = argv.first().map(String::as_str).unwrap_or("");
    let asked_name = base_name(asked);
    let resolved = resolve(asked, cwd, &trusted_dirs(policy)).map_err(Refused)?;
    let resolved_name = resolved.file_name().and_then(|n| n.to_str()).unwrap_or("");

    for name in [asked_name, resolved_name] {
        if ALWAYS_DENIED.contains(&name) {
            return Err(Refused(format!(
                "'{}' is always denied: it can print or reach every secret",
                secretctl_proto::text::shown(asked)
            )));
        }
    }
    for text in &policy.denied_commands {
        let e = entry(text);
        let hit = if e.cmd.contains('/') {
            path_entry_matches(&e, &resolved, cwd)
        } else {
            e.cmd == asked_name || e.cmd == resolved_name
        };
        if hit && args_match(&e, argv) {
            return Err(Refused(format!(
                "'{}' is denied by denied_commands entry '{}'",
                secretctl_proto::text::shown(asked),
                e.text
            )));
        }
    }
    let allowed = policy.allowed_commands.iter().map(|t| entry(t)).any(|e| {
        let hit = if e.cmd.contains('/') {
            path_entry_matches(&e, &resolved, cwd)
        } else {
            // A bare entry matches only a bare name, which was looked up in
            // the trusted directories.
            !asked.contains('/') && e.cmd == asked
        };
        hit && args_match(&e, argv)
    });
    if allowed || policy.default_action == DefaultAction::Allow {
        Ok(resolved)
    } else {
        Err(Refused(format!(
            "'{}' is not in allowed_commands of mcp-policy.yaml (default_action: deny); allowed: {}; to run something else, ask the user to add it to the policy and apply it",
            secretctl_proto::text::shown(&argv.join(" ")),
            allowed_list(policy)
        )))
    }
}

/// The allowed entries, for a refusal (at most 20, then a count).
fn allowed_list(policy: &Policy) -> String {
    let all = &policy.allowed_commands;
    if all.is_empty() {
        return "nothing".into();
    }
    let mut s: Vec<String> = all.iter().take(20).map(|e| format!("'{e}'")).collect();
    if all.len() > 20 {
        s.push(format!("and {} more", all.len() - 20));
    }
    s.join(", ")
}

/// Refuses an argument that names an injected variable when no shell will
/// expand it: secretctl never expands `$NAME` itself, so secrets travel only
/// in the environment, never in argv.
pub fn check_no_var_args(argv: &[String], injected: &[String]) -> Result<(), Refused> {
    if argv.first().is_some_and(|c| is_shell(c)) {
        return Ok(());
    }
    for arg in argv.iter().skip(1) {
        for name in injected {
            if arg.contains(&format!("${name}")) || arg.contains(&format!("${{{name}}}")) {
                let arg = secretctl_proto::text::shown(arg);
                return Err(Refused(format!(
                    "argument '{arg}' names ${name}, but secretctl never expands variables (secrets travel only in the environment, never in argv): \
                     let the program read {name} from its environment, or run it through a shell, e.g. sh -c '... \"${name}\" ...'"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn policy(yaml: &str) -> Policy {
        parse(&format!("version: 1\n{yaml}")).unwrap()
    }

    #[test]
    fn echoed_commands_are_cut_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy("allowed_commands: [ls]");
        let hostile = format!("\x1b]0;x\x07{}", "a".repeat(10_000));
        for asked in [hostile.clone(), format!("./{hostile}")] {
            let e = check(&p, &argv(&[&asked]), dir.path()).unwrap_err().0;
            assert!(!e.contains('\x1b') && !e.contains('\x07'), "{e:?}");
            assert!(e.len() < 400, "{} bytes", e.len());
        }
        let e = check_no_var_args(
            &argv(&["curl", &format!("\x1b[2J$TOKEN{}", "b".repeat(5000))]),
            &["TOKEN".into()],
        )
        .unwrap_err()
        .0;
        assert!(!e.contains('\x1b') && e.len() < 600, "{e:?}");
    }

    #[test]
    fn bare_names_come_from_trusted_dirs_only() {
        let dir = tempfile::tempdir().unwrap();
        // An agent-controlled `ls` in cwd must not shadow the system one.
        let fake = dir.path().join("ls");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = policy("allowed_commands: [ls]");
        let resolved = check(&p, &argv(&["ls"]), dir.path()).unwrap();
        assert!(
            resolved.starts_with("/usr") || resolved.starts_with("/bin"),
            "{resolved:?}"
        );
        // ./ls is a path: the bare entry does not allow it.
        let e = check(&p, &argv(&["./ls"]), dir.path()).unwrap_err();
        assert!(e.0.contains("not in allowed_commands"), "{e}");
    }

    #[test]
    fn path_entries_and_argv_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("test.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = policy("allowed_commands: [./test.sh, \"ls -l\"]");
        assert!(check(&p, &argv(&["./test.sh"]), dir.path()).is_ok());
        assert!(check(&p, &argv(&[script.to_str().unwrap()]), dir.path()).is_ok());
        assert!(check(&p, &argv(&["ls", "-l", "/tmp"]), dir.path()).is_ok());
        assert!(check(&p, &argv(&["ls", "-a"]), dir.path()).is_err());
        assert!(check(&p, &argv(&["ls"]), dir.path()).is_err());
    }

    #[test]
    fn denied_beats_allowed_and_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy("default_action: allow\ndenied_commands: [rm]");
        let e = check(&p, &argv(&["rm", "-rf", "x"]), dir.path()).unwrap_err();
        assert!(e.0.contains("denied_commands entry 'rm'"), "{e}");
        assert!(
            check(&p, &argv(&["/bin/rm"]), dir.path()).is_err(),
            "path to a denied name"
        );
        for cmd in ["env", "printenv", "/usr/bin/env"] {
            let e = check(&p, &argv(&[cmd]), dir.path()).unwrap_err();
            assert!(e.0.contains("always denied"), "{cmd}: {e}");
        }
        assert!(check(&p, &argv(&["ls"]), dir.path()).is_ok());
        let deny = policy("allowed_commands: [rm]\ndenied_commands: [rm]");
        assert!(check(&deny, &argv(&["rm"]), dir.path()).is_err());
    }

    #[test]
    fn symlinks_are_resolved_before_denying() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("harmless");
        std::os::unix::fs::symlink(std::fs::canonicalize("/bin/rm").unwrap(), &link).unwrap();
        let p = policy("default_action: allow\ndenied_commands: [rm]");
        assert!(check(&p, &argv(&["./harmless"]), dir.path()).is_err());
    }

    #[test]
    fn unknown_command_names_the_fix() {
        let p = policy("allowed_commands: [definitely-not-installed-xyz]");
        let e = check(&p, &argv(&["definitely-not-installed-xyz"]), Path::new("/")).unwrap_err();
        assert!(e.0.contains("trusted_directories"), "{e}");
    }

    #[test]
    fn var_arguments() {
        let inj = vec!["API_KEY".to_string()];
        assert!(check_no_var_args(&argv(&["curl", "-H", "Bearer $API_KEY"]), &inj).is_err());
        assert!(check_no_var_args(&argv(&["curl", "${API_KEY}"]), &inj).is_err());
        assert!(check_no_var_args(&argv(&["sh", "-c", "curl -H \"$API_KEY\""]), &inj).is_ok());
        assert!(check_no_var_args(&argv(&["curl", "$OTHER"]), &inj).is_ok());
    }

    #[test]
    fn only_executable_regular_files_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.txt");
        std::fs::write(&data, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
        let sub = dir.path().join("tool");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let trusted = [dir.path().to_path_buf()];
        // A path to a file without x bits, or to a directory, is refused.
        let e = resolve("./data.txt", dir.path(), &trusted).unwrap_err();
        assert!(e.contains("is not an executable file"), "{e}");
        let e = resolve("./tool", dir.path(), &trusted).unwrap_err();
        assert!(e.contains("is not an executable file"), "{e}");
        // A bare name skips them in the trusted directories.
        for bare in ["data.txt", "tool"] {
            let e = resolve(bare, dir.path(), &trusted).unwrap_err();
            assert!(e.contains("not found in the trusted directories"), "{e}");
        }
        let p = policy("default_action: allow");
        let e = check(&p, &argv(&["./data.txt"]), dir.path()).unwrap_err();
        assert!(e.0.contains("is not an executable file"), "{e}");
        // Any one x bit makes it executable.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o610)).unwrap();
        assert_eq!(
            resolve("./data.txt", dir.path(), &trusted).unwrap(),
            std::fs::canonicalize(&data).unwrap()
        );
    }

    #[test]
    fn a_bare_entry_allows_only_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy("allowed_commands: [ls]");
        assert!(check(&p, &argv(&["ls"]), dir.path()).is_ok());
        for other in ["cat", "true"] {
            let e = check(&p, &argv(&[other]), dir.path()).unwrap_err();
            assert!(e.0.contains("not in allowed_commands"), "{other}: {e}");
        }
    }

    #[test]
    fn interpreter_detection() {
        for i in ["python3", "python3.12", "/usr/bin/node", "bash", "perl"] {
            assert!(is_interpreter(i), "{i}");
        }
        assert!(!is_interpreter("npm") && !is_interpreter("cargo"));
    }
}
