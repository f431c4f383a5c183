//! Secret templates for `set --template` (contract §4): the fields each
//! kind of secret has, which are sensitive, and a hint for each.

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateField {
    pub name: &'static str,
    pub sensitive: bool,
    pub hint: &'static str,
}

const fn f(name: &'static str, sensitive: bool, hint: &'static str) -> TemplateField {
    TemplateField {
        name,
        sensitive,
        hint,
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
    f("private_key", true, "private key (PEM)"),
];

/// Template names, for help and errors.
pub const NAMES: [&str; 4] = ["login", "database", "api", "ssh"];

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
    }
}
