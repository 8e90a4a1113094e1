//! Evidence gathering, the decision and the profile on any message: never panics, and no
//! text that reaches an added header can break its line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popsplit::decide::{Context, Hints, Policy, decide};
use popsplit::decide::directory::Directory;
use popsplit::evidence::gather;
use popsplit::decide::profile::{Overrides, Stats};
use popsplit::text::{folder_name, one_line};

fuzz_target!(|data: &[u8]| {
    let dir = Directory::open(&["example.com".to_string(), "example.org".to_string()]);
    let facts = gather(data);
    let mut stats = Stats::default();
    stats.add(&facts, &dir);
    let profile = stats.learn(&dir, &Overrides::default());
    let policy = Policy::default();
    let ctx = Context { dir: &dir, profile: &profile, policy: &policy };
    let hints = Hints { thread: Some("alice".into()), list: None };
    let decision = decide(&facts, &ctx, &hints);
    let line = one_line(&decision.decisive_summary(&facts.evidence));
    assert!(!line.contains('\r') && !line.contains('\n'));
    for user in &decision.users {
        assert_eq!(&folder_name(user), user, "a user name that is not a safe folder name");
    }
    let _ = profile.describe(&dir);
});
