//! How a template (defined in `secretctl_proto::templates`, shared with the
//! web UI) and the `--field` flags of `set` expand into the fields of a
//! request.

pub use secretctl_proto::templates::{NAMES, TemplateField, default_bindings, fields};

use crate::flags::FieldArg;

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
}
