//! Accuracy benchmark: generates one mailbox per ISP style with ground truth, runs the real
//! `popsplit split` on each (writing Maildirs), and prints losses, wrong deliveries,
//! precision and recall overall, on the recoverable subset, per confidence level, per trap
//! category and per ISP style.
//!
//! `cargo bench --bench accuracy` (messages per style: POPSPLIT_BENCH_MESSAGES, default 4000).

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let messages: usize = std::env::var("POPSPLIT_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    println!(
        "accuracy on generated mailboxes: {messages} logical messages per ISP style, 5 styles (bare twice: one copy per recipient, one copy for all), seed 2026\n"
    );
    let scores = common::score_generated(messages, 2026, false);
    print!("{}", scores.table());
    let failures = scores.failures();
    if failures.is_empty() {
        println!("\nall calibration targets hold");
    } else {
        println!("\nTARGETS MISSED: {failures:?}");
        std::process::exit(1);
    }
}
