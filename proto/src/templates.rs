//! Secret templates (contract §4): the fields each kind of secret has,
//! which are sensitive, a hint for each, and the bindings a new secret of
//! that kind gets. Shared by the CLI's `set --template` and the web UI's
//! add form, so both offer exactly the same templates.

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateField {
    pub name: &'static str,
    pub sensitive: bool,
    pub hint: &'static str,
    /// Holds several lines (a PEM key): a one-line terminal prompt would
    /// silently keep only the first, so it must come from stdin.
    pub multiline: bool,
}

const fn f(name: &'static str, sensitive: bool, hint: &'static str) -> TemplateField {
    TemplateField {
        name,
        sensitive,
        hint,
        multiline: false,
    }
}

const fn multiline(name: &'static str, sensitive: bool, hint: &'static str) -> TemplateField {
    TemplateField {
        multiline: true,
        ..f(name, sensitive, hint)
    }
}

const LOGIN: &[TemplateField] = &[
    f("username", false, "account name"),
    f("password", true, "account password"),
];
const DATABASE: &[TemplateField] = &[
    f("host", false, "database host name"),
    f("port", false, "database port"),
    f("username", false, "database user"),
    f("password", true, "database password"),
    f("database", false, "database name"),
];
const API: &[TemplateField] = &[
    f("api_key", true, "API key"),
    f("api_secret", true, "API secret"),
    f("endpoint", false, "API base URL"),
];
const SSH: &[TemplateField] = &[
    f("host", false, "SSH host"),
    f("port", false, "SSH port"),
    f("username", false, "SSH user"),
    multiline("private_key", true, "private key (PEM)"),
];

/// Template names, for help and errors.
pub const NAMES: [&str; 4] = ["login", "database", "api", "ssh"];

/// The bindings a new secret of template `name` gets unless `--binding` is
/// given: (env var, field). Fixed names, so `run -k prod/db -- psql ...`
/// works the same for every database secret (two of one kind in one run:
/// use `--env-prefix`, or bindings of your own).
pub fn default_bindings(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "database" => &[
            ("DB_HOST", "host"),
            ("DB_PORT", "port"),
            ("DB_USER", "username"),
            ("DB_PASSWORD", "password"),
            ("DB_NAME", "database"),
        ],
        "login" => &[("LOGIN_USER", "username"), ("LOGIN_PASSWORD", "password")],
        "api" => &[
            ("API_KEY", "api_key"),
            ("API_SECRET", "api_secret"),
            ("API_ENDPOINT", "endpoint"),
        ],
        "ssh" => &[
            ("SSH_HOST", "host"),
            ("SSH_PORT", "port"),
            ("SSH_USER", "username"),
            ("SSH_PRIVATE_KEY", "private_key"),
        ],
        _ => &[],
    }
}

/// The fields of template `name`.
pub fn fields(name: &str) -> Option<&'static [TemplateField]> {
    match name {
        "login" => Some(LOGIN),
        "database" => Some(DATABASE),
        "api" => Some(API),
        "ssh" => Some(SSH),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_templates() {
        let names = |t: &str| -> Vec<(&str, bool)> {
            fields(t)
                .unwrap()
                .iter()
                .map(|f| (f.name, f.sensitive))
                .collect()
        };
        assert_eq!(names("login"), [("username", false), ("password", true)]);
        assert_eq!(
            names("database"),
            [
                ("host", false),
                ("port", false),
                ("username", false),
                ("password", true),
                ("database", false)
            ]
        );
        assert_eq!(
            names("api"),
            [("api_key", true), ("api_secret", true), ("endpoint", false)]
        );
        assert_eq!(
            names("ssh"),
            [
                ("host", false),
                ("port", false),
                ("username", false),
                ("private_key", true)
            ]
        );
        assert!(fields("nope").is_none());
        assert!(NAMES.iter().all(|n| fields(n).is_some()));
        // Every template field has exactly one default binding.
        for n in NAMES {
            let bound: Vec<&str> = default_bindings(n).iter().map(|(_, f)| *f).collect();
            let fields: Vec<&str> = fields(n).unwrap().iter().map(|f| f.name).collect();
            assert_eq!(bound, fields, "{n}");
        }
    }
}
