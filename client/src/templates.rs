//! Secret templates for `set --template` (contract §4): the fields each
//! kind of secret has, which are sensitive, a hint for each, and how a
//! template and the `--field` flags expand into the fields of a request.

use crate::flags::FieldArg;

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

/// One field of the request to build: template fields first, in template
/// order, then every other `--field`, in the order given.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub name: &'a str,
    /// The template's entry, for template fields.
    pub template: Option<&'static TemplateField>,
    /// The `--field` flag naming it, if any; a template field without one
    /// must be prompted for.
    pub given: Option<&'a FieldArg>,
}

/// Expands `template` (if any) and the `--field` flags into slots. Flags
/// naming a template field fill that slot; the others follow. The caller
/// has already refused a field named twice.
pub fn expand<'a>(
    template: Option<&'static [TemplateField]>,
    given: &'a [FieldArg],
) -> Vec<Slot<'a>> {
    let tpl = template.unwrap_or(&[]);
    let mut slots: Vec<Slot<'a>> = tpl
        .iter()
        .map(|tf| Slot {
            name: tf.name,
            template: Some(tf),
            given: given.iter().find(|g| g.name == tf.name),
        })
        .collect();
    slots.extend(
        given
            .iter()
            .filter(|g| !tpl.iter().any(|tf| tf.name == g.name))
            .map(|g| Slot {
                name: &g.name,
                template: None,
                given: Some(g),
            }),
    );
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::parse_field;

    #[test]
    fn expansion_orders_template_fields_then_extras() {
        let given = [
            parse_field("note=x").unwrap(),
            parse_field("password").unwrap(),
            parse_field("username=alice").unwrap(),
        ];
        let slots = expand(fields("login"), &given);
        let view: Vec<_> = slots
            .iter()
            .map(|s| {
                (
                    s.name,
                    s.template.map(|t| t.sensitive),
                    s.given.map(|g| g.value.is_some()),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("username", Some(false), Some(true)),
                ("password", Some(true), Some(false)),
                ("note", None, Some(true)),
            ]
        );
    }

    #[test]
    fn expansion_leaves_missing_template_fields_empty() {
        let given = [parse_field("host=db").unwrap()];
        let slots = expand(fields("database"), &given);
        let missing: Vec<_> = slots
            .iter()
            .filter(|s| s.given.is_none())
            .map(|s| s.name)
            .collect();
        assert_eq!(missing, ["port", "username", "password", "database"]);
        assert!(slots.iter().all(|s| s.template.is_some()));
    }

    #[test]
    fn no_template_is_just_the_flags() {
        assert!(expand(None, &[]).is_empty());
        let given = [parse_field("a=1").unwrap(), parse_field("b").unwrap()];
        let names: Vec<_> = expand(None, &given).iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

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
