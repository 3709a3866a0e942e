//! Fuzzes the offline checker: YAML documents in, a report out, never a panic; and the policy
//! file parser.
#![no_main]

use admission::check::{self, Input, Options};
use admission::engine::Policies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Policies::from_yaml(text, "fuzz.yaml", None);
    let Ok(policies) = Policies::load(None, None) else {
        return;
    };
    let input = Input { name: "fuzz.yaml".into(), text: text.into() };
    let report = check::check(&policies, &[input], &Options::default());
    let _ = report.render();
});
