//! Pass 2: decide, without inference, the messages inference can use, to index threads
//! and lists.

use crate::decide::inference::Inference;
use crate::decide::{Context, Hints, decide};
use crate::evidence::gather;
use crate::input::{Source, SourceError, Unit};
use crate::run::Progress;
use crate::run::batches;
use crate::run::error::SplitError;
use crate::run::kept::Kept;
use crate::run::learn::Prescan;
use rayon::prelude::*;

/// Pass 2: decides, without inference, the messages inference can use (see [`Prescan`]), to
/// index threads and lists.
pub(crate) fn index(
    sources: &[Source],
    ctx: &Context<'_>,
    marks: &Prescan,
    kept: &Kept,
    progress: &Progress<'_>,
) -> Result<Inference, SplitError> {
    let none = Hints::default();
    let mut index = Inference::default();
    batches(sources, |_, source, batch, bytes| {
        let wanted: Vec<&Unit> = batch
            .iter()
            .filter(|u| marks.wanted(&source.name, u.position()))
            .collect();
        let part = wanted
            .par_iter()
            .map(|u| {
                kept.or_gather(&source.name, u.position(), || {
                    source.read_head(u).map(|head| gather(&head))
                })
            })
            .try_fold(Inference::default, |mut ix, facts| {
                let facts = facts?;
                ix.add(&facts, &decide(&facts, ctx, &none), ctx.dir);
                Ok::<_, SourceError>(ix)
            })
            .try_reduce(Inference::default, |a, b| Ok(a.merge(b)))?;
        index = std::mem::take(&mut index).merge(part);
        source.release(&batch);
        progress("indexing", bytes);
        Ok(())
    })
    .map(|()| index)
}
