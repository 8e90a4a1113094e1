//! popsplit: give every person their own mail back from a shared POP (catch-all) mailbox.
//!
//! The pipeline, one folder per stage (docs/architecture.md draws it): [`input`] opens the
//! exported mailbox and splits it into messages, [`evidence`] gathers what each message's
//! header fields claim, [`decide`] turns that into users and a confidence, [`output`]
//! writes Maildirs (or mboxes), the report and the audit page. [`run`] wires the stages
//! into the passes of a job, with [`config`] the checked command line.

mod compact;
pub mod config;
pub mod decide;
pub mod evidence;
pub mod folders;
pub mod input;
pub mod output;
pub mod run;
pub mod text;
