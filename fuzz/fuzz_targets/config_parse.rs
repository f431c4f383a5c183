//! `Config::parse` on any text: never panics, is fast, and what it accepts
//! keeps every documented bound. Also `duration::parse`, which it uses.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use secretctld::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = secretctl_proto::duration::parse(text) {
        assert!(!text.trim().is_empty());
        let _ = secretctl_proto::duration::format(d);
    }
    let Ok(cfg) = Config::parse(text) else {
        return;
    };
    assert!(cfg.idle_timeout > Duration::ZERO && cfg.idle_timeout <= cfg.max_idle_timeout);
    let a = &cfg.agent;
    assert!((1..=256).contains(&a.max_concurrent_runs));
    assert!((1024..=64 << 20).contains(&a.output_cap_bytes));
    assert!(a.default_timeout > Duration::ZERO && a.default_timeout <= a.max_timeout);
    assert!((512..=1 << 30).contains(&cfg.audit_segment_bytes));
    let r = &cfg.agent_rules;
    assert!((1..=8).contains(&r.host_depth));
    for m in &r.markers {
        assert!(!m.is_empty() && m.len() <= 128, "{m:?}");
        assert!(
            m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{m:?}"
        );
    }
});
