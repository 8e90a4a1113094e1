//! The last stage: what a run writes. Maildirs through a folder handle that never leaves
//! `--out`, mboxes, the report rows and summary, the audit page, and the hand-over files
//! for the new server.

pub mod handover;
pub mod html;
pub mod maildir;
pub mod mbox;
pub mod outfs;
pub mod report;
