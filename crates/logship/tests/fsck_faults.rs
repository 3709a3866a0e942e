//! `logship fsck` on the states the fault suite produces: a shipper SIGKILLed at each of its
//! durability boundaries leaves a state dir (and a `file://` archive) that fsck must judge
//! without a finding it cannot repair; after `--repair` a second fsck is clean, and the
//! restarted shipper then delivers every line exactly once (`verify`).

use logship::fsck::State;
use url::Url;

use crate::faults::{Killed, killed_shipper, run_ship, verify};
use crate::support::test_options;

/// fsck (with the store) on what the kill left: `repair` first, then a check.
fn fsck(k: &Killed, repair: bool) -> logship::fsck::Report {
    let to = Url::parse(&k.to).unwrap();
    let sink = test_options(
        vec![format!("faults={}", k.src.display())],
        k.to.clone(),
        &k.state,
    )
    .validate()
    .unwrap()
    .sink;
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(logship::fsck(&k.state, Some((&to, sink)), repair))
        .unwrap()
}

fn fsck_repairs_then_ships_everything(failpoint: &str) {
    let k = killed_shipper(failpoint, 2);
    let repaired = fsck(&k, true);
    assert_eq!(
        repaired.count(State::Left),
        0,
        "{failpoint}: findings fsck cannot repair:\n{}",
        repaired.json_lines()
    );
    let again = fsck(&k, false);
    assert!(
        again.clean(),
        "{failpoint}: after --repair:\n{}",
        again.json_lines()
    );
    let clean = run_ship(&k, None);
    assert!(
        clean.success(),
        "{failpoint}: the restarted shipper finished: {clean}"
    );
    let report = verify(&k.to);
    let expected = format!(
        "producer faults: lines={} max_seq={} missing=0 duplicates=0",
        k.written,
        k.written - 1
    );
    assert!(
        report.contains(&expected),
        "{failpoint}: {expected:?} in:\n{report}"
    );
}

#[test]
fn fsck_after_kill_9_at_each_shipper_boundary() {
    for failpoint in [
        "logship::journal_append",
        "logship::journal_fsync",
        "logship::staging",
        "logship::upload",
        "logship::uploaded",
        "logship::delete",
        "logship::deleted",
    ] {
        fsck_repairs_then_ships_everything(failpoint);
    }
}
