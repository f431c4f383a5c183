//! The MCP shim's tool arguments: JSON as a client sends it, the command
//! line split into argv (no shell expansion ever), timeouts.
//!
//! Properties: no panic; `split` only drops characters (its words, joined,
//! are a subsequence of the line: nothing is expanded or invented, so no
//! `$VAR` is ever replaced by a value); on a line without quotes or
//! backslashes it is `split_whitespace`; words quoted back with single
//! quotes split to themselves; `argv` with `args` is the command then the
//! args as given; a timeout longer than the daemon's largest possible
//! maximum never comes out as a shorter one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretctl_mcp::args::{self, BindingsRunArgs, FieldArgs, KeyArgs, ListArgs, RunArgs};
use secretctl_mcp::split::{SplitError, split};

fn is_subsequence(words: &[String], line: &str) -> bool {
    let mut it = line.chars();
    words
        .iter()
        .flat_map(|w| w.chars())
        .all(|c| it.any(|l| l == c))
}

fn quote(w: &str) -> String {
    format!("'{}'", w.replace('\'', r"'\''"))
}

fn check_line(line: &str) {
    let plain = !line.contains(['\'', '"', '\\']);
    match split(line) {
        Ok(words) => {
            assert!(!words.is_empty());
            assert!(
                is_subsequence(&words, line),
                "split invented characters: {words:?}"
            );
            if plain {
                let simple: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(words, simple);
            }
            let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
            assert_eq!(
                split(&quoted.join(" ")).as_ref(),
                Ok(&words),
                "quoting round trip"
            );
            assert_eq!(args::argv(line, &None).as_ref(), Ok(&words));
        }
        Err(e) => {
            if plain {
                assert_eq!(e, SplitError::Empty);
                assert!(line.split_whitespace().next().is_none());
            }
            assert!(args::argv(line, &None).is_err());
        }
    }
}

fn check_timeout(t: &Option<String>) {
    let Ok(ms) = args::timeout_ms(t) else {
        return;
    };
    let Some(d) = t
        .as_deref()
        .and_then(|t| secretctl_proto::duration::parse(t).ok())
    else {
        assert_eq!(ms, 0, "no timeout means the default");
        return;
    };
    // The daemon refuses more than its max_timeout; whatever that is set
    // to, a longer request must not come out shorter.
    if d.as_millis() > u128::from(u64::MAX / 2) {
        assert!(ms >= u64::MAX / 2, "timeout {d:?} came out as {ms} ms");
    } else {
        assert_eq!(u128::from(ms), d.as_millis());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_line(text);
    if let Ok(a) = serde_json::from_str::<RunArgs>(text) {
        let _ = (a.keys.len(), &a.env, &a.env_prefix, &a.cwd);
        check_timeout(&a.timeout);
        match args::argv(&a.command, &a.args) {
            Ok(argv) => match &a.args {
                Some(rest) => {
                    assert_eq!(argv[0], a.command);
                    assert_eq!(&argv[1..], rest.as_slice());
                    assert!(!a.command.trim().is_empty());
                }
                None => assert_eq!(split(&a.command).ok(), Some(argv)),
            },
            Err(_) => match &a.args {
                Some(_) => assert!(a.command.trim().is_empty()),
                None => assert!(split(&a.command).is_err()),
            },
        }
    }
    if let Ok(a) = serde_json::from_str::<BindingsRunArgs>(text) {
        check_timeout(&a.timeout);
        let _ = args::argv(&a.command, &a.args);
    }
    if let Ok(a) = serde_json::from_str::<ListArgs>(text)
        && let Ok(Some(secs)) = args::expiring_within_secs(&a.expiring_within)
    {
        assert!(secs >= 0, "expiring_within came out negative: {secs}");
    }
    let _ = serde_json::from_str::<KeyArgs>(text);
    let _ = serde_json::from_str::<FieldArgs>(text);
});
