//! Accuracy benchmark: generates one mailbox per ISP style with ground truth, runs the real
//! `popsplit split` on each (writing Maildirs), and prints losses, wrong deliveries,
//! precision and recall overall, on the recoverable subset, per confidence level, per trap
//! category and per ISP style; then does the same on the provider-shaped mailboxes of
//! `tests/providers` (an independent generator written from real providers' header shapes).
//!
//! `cargo bench --bench accuracy` (messages per style: POPSPLIT_BENCH_MESSAGES, default 4000).
//! Exits non-zero when either generator's targets are missed.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/providers/mod.rs"]
mod providers;

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
    }

    println!(
        "\naccuracy on provider-shaped mailboxes: {messages} logical messages per provider style, {} styles, seed 2026\n",
        providers::Style::ALL.len()
    );
    let opts = providers::Options {
        per_style: messages,
        seed: 2026,
    };
    let prov = providers::score_styles(opts, &providers::Style::ALL);
    print!("{}", prov.table());
    let prov_failures = prov.failures(&providers::Targets::default());
    if prov_failures.is_empty() {
        println!("\nall provider targets hold");
    } else {
        println!("\nwrong deliveries by situation and style:");
        for line in prov
            .mistakes_report()
            .lines()
            .filter(|l| l.starts_with("=="))
        {
            println!("{line}");
        }
        println!("\nPROVIDER TARGETS MISSED: {prov_failures:#?}");
    }
    if !failures.is_empty() || !prov_failures.is_empty() {
        std::process::exit(1);
    }
}
