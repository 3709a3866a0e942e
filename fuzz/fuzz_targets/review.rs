//! Fuzzes the AdmissionReview parser and every policy and mutation behind it: any byte string
//! either fails to parse or gets an answer with the request's uid; never a panic.
#![no_main]

use admission::engine::Policies;
use admission::review::{self, Endpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(policies) = Policies::load(None, Some("ferrostack")) else {
        return;
    };
    if let Ok(req) = review::parse(data) {
        for endpoint in [
            Endpoint::Validate { namespace_labelled: false },
            Endpoint::Validate { namespace_labelled: true },
            Endpoint::Mutate,
        ] {
            let out = review::review(&policies, &req, endpoint, None);
            assert_eq!(out.answer.response.uid, req.inner.uid);
            assert_eq!(out.answer.response.patch.is_some(), out.answer.response.patch_type.is_some());
        }
    }
});
