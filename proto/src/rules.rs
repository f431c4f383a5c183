//! Rules the daemon, the CLI and the shim must apply identically, written
//! once: the base environment of agent runs (contract §6), which field a
//! secret's plain value is (contract §4–5), and the sizes of an import or
//! export stream (contract §10).

/// Variables of the caller's environment an agent run may see (plus every
/// `LC_*`). The shim sends only these and the daemon keeps only these, so
/// neither side alone decides what reaches an agent's child.
pub const BASE_ENV: [&str; 9] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ", "TMPDIR", "SHELL",
];

/// True when `name` belongs to the base environment of an agent run.
pub fn is_base_env(name: &str) -> bool {
    BASE_ENV.contains(&name) || name.starts_with("LC_")
}

/// The field a one-value secret uses (`set KEY` stores its value here).
pub const DEFAULT_FIELD: &str = "value";

/// The field read when none is named: `value`, else the only field.
/// `name` tells the field's name; `None` when the secret has several fields
/// and none is called `value`.
pub fn default_field<T>(fields: &[T], name: impl Fn(&T) -> &str) -> Option<&T> {
    let only = match fields {
        [one] => Some(one),
        _ => None,
    };
    fields.iter().find(|f| name(f) == DEFAULT_FIELD).or(only)
}

/// Most entries one `import` may hold (contract §10).
pub const MAX_IMPORT_ENTRIES: usize = 200_000;
/// Most bytes one `import` may send (its entries as encoded on the wire;
/// the file itself is refused above this size too).
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;
/// Target size of one message of an export or import stream: well below
/// the 16 MiB message limit, whatever one secret holds (a part of a secret
/// adds at most one 1 MiB field beyond it).
pub const TRANSFER_PART_BYTES: usize = 4 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_env_is_an_allow_list() {
        for ok in ["PATH", "HOME", "SHELL", "LC_ALL", "LC_CTYPE"] {
            assert!(is_base_env(ok), "{ok}");
        }
        for no in [
            "AWS_SECRET",
            "LD_PRELOAD",
            "SECRETCTL_HOME",
            "path",
            "XLC_ALL",
            "",
        ] {
            assert!(!is_base_env(no), "{no}");
        }
    }

    #[test]
    fn default_field_is_value_or_the_only_one() {
        fn id<'a>(s: &'a &str) -> &'a str {
            s
        }
        assert_eq!(default_field(&["user", "value"], id), Some(&"value"));
        assert_eq!(default_field(&["token"], id), Some(&"token"));
        assert_eq!(default_field(&["user", "pass"], id), None);
        assert_eq!(default_field::<&str>(&[], id), None);
    }
}
