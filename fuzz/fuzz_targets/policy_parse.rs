//! `policy::parse` on any text: never panics, is fast (libFuzzer's
//! `-timeout` turns a slow unit into a failure), and a policy it accepts
//! rewrites every pattern so that the name found maps back to the name
//! written.
//!
//! Input: the policy text, optionally followed by a NUL and a key pattern
//! to rewrite under every alias.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, extra) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(policy) = secretctld::policy::parse(text) else {
        return;
    };
    assert_eq!(policy.version, 1, "only version 1 is accepted");
    let extra = extra.and_then(|e| std::str::from_utf8(e).ok());
    for (alias, rules) in &policy.env_aliases {
        let mut patterns: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for r in rules {
            let stem = r.pattern.trim_end_matches('*');
            patterns.push(r.pattern.clone());
            patterns.push(format!("{stem}x"));
            patterns.push(format!("{stem}a/b"));
            patterns.push(stem.to_string());
        }
        for p in &patterns {
            let rw = policy
                .rewrite(alias, p)
                .unwrap_or_else(|e| panic!("a parsed policy's rule failed to apply: {e}"));
            // The key found under the rewritten name is shown as written.
            assert_eq!(rw.written_name(&rw.lookup), *p, "{rw:?}");
        }
    }
    assert!(policy.rewrite("\u{0}no such alias", "x").is_err());
});
