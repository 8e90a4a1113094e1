//! What a run was asked to do, checked before any work starts.

pub mod paths;
