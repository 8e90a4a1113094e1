//! popsplit: give every person their own mail back from a shared POP (catch-all) mailbox.
//!
//! The pipeline, one module per stage: [`mbox`] splits the input into messages, [`headers`]
//! and [`evidence`] gather what each message's header fields claim, [`decide`] turns that
//! into users and a confidence, [`deliver`] writes Maildirs, [`report`] records why.
//! [`split`] wires the stages together.

pub mod address;
pub mod corrections;
pub mod decide;
pub mod deliver;
pub mod directory;
pub mod evidence;
pub mod folders;
pub mod handover;
pub mod headers;
pub mod html;
pub mod interrupt;
pub mod mbox;
pub mod mboxwrite;
pub mod outfs;
pub mod paths;
pub mod profile;
pub mod rehome;
pub mod report;
pub mod sanitize;
pub mod source;
pub mod split;
pub mod synth;
