//! Calibration: on generated mailboxes of every ISP style, each confidence level is as
//! right as it claims, nothing is lost, and nobody gets a message twice.

mod common;

#[test]
fn confidence_is_calibrated_on_every_isp_style() {
    let scores = common::score_generated(600, 11, true);
    println!("{}", scores.table());
    assert_eq!(scores.by_style.len(), 5);
    assert_eq!(scores.overall.messages, 3600);
    let failures = scores.failures();
    assert!(failures.is_empty(), "{failures:?}\n{}", scores.table());
}

#[test]
fn real_writes_lose_nothing() {
    let scores = common::score_generated(150, 5, false);
    assert_eq!(scores.lost, 0);
    assert_eq!(scores.doubled, 0);
}
