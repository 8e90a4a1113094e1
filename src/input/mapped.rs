//! An mbox file mapped read-only and split once, watched for writes by other processes
//! while the run reads it.

use crate::input::mbox;
use crate::input::mbox::{MboxError, Span, Splitter};
use crate::input::spans::Spans;
use crate::input::{Backing, Body, Early, Mapped, Source, SourceError, io_err, release_range};
use memmap2::Mmap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc;

/// An input file held open, with its size and modification time when it was mapped.
pub(crate) struct Watch {
    pub(crate) file: File,
    pub(crate) size: u64,
    pub(crate) mtime: (i64, u64),
}

impl Watch {
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let (size, mtime) = Watch::now(&file)?;
        Ok(Watch { file, size, mtime })
    }

    pub(crate) fn now(file: &File) -> io::Result<(u64, (i64, u64))> {
        let st = rustix::fs::fstat(file)?;
        Ok((
            st.st_size as u64,
            (st.st_mtime as i64, st.st_mtime_nsec as u64),
        ))
    }
}

/// Maps an mbox and splits it, handing every message to `early` as the split goes: one
/// thread scans for separators while this one runs the first pass on what it found.
pub(crate) fn open_mbox(path: &Path, early: &mut Early<'_>) -> Result<Source, SourceError> {
    let file = File::open(path).map_err(io_err(path))?;
    let name = path.display().to_string();
    let map = map(path, &file)?;
    let watch = Watch::new(file).map_err(io_err(path))?;
    let data = map.as_deref().unwrap_or_default();
    let splitter = Splitter::new(data).map_err(|e| SourceError::NotMbox {
        path: name.clone(),
        source: e,
    })?;
    let mut spans = Spans::default();
    std::thread::scope(|scope| {
        // The scan touches every page; one chunk queued and one being learned from keep
        // the pages it has touched and nobody has given back small.
        let (tx, rx) = mpsc::sync_channel::<Vec<Span>>(1);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(EARLY_SPANS);
            let mut from = 0;
            for span in splitter {
                let end = span.trailer.end;
                chunk.push(span);
                if (chunk.len() == EARLY_SPANS || end - from >= EARLY_BYTES)
                    && tx
                        .send(std::mem::replace(
                            &mut chunk,
                            Vec::with_capacity(EARLY_SPANS),
                        ))
                        .is_err()
                {
                    return;
                }
                if chunk.is_empty() {
                    from = end;
                }
            }
            let _ = tx.send(chunk);
        });
        for chunk in rx {
            early(&name, data, &chunk);
            if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                release_range(map.as_ref(), first.from_line.start, last.trailer.end);
            }
            for span in chunk {
                spans.push(span);
            }
        }
    });
    Ok(Source {
        name,
        body: Body::Mapped(Mapped {
            map,
            spans,
            backing: Backing::Input(watch),
        }),
    })
}

/// Messages, and bytes, handed to the first pass at a time while an mbox is split.
pub(crate) const EARLY_SPANS: usize = 1024;

pub(crate) const EARLY_BYTES: usize = 16 << 20;

/// Maps `file` (the file at `path`) read-only; `None` when it is empty.
pub(crate) fn map(path: &Path, file: &File) -> Result<Option<Mmap>, SourceError> {
    let len = file.metadata().map_err(io_err(path))?.len();
    // SAFETY: the map is read-only and private. If another process truncates the file
    // while popsplit runs, reading the lost pages raises SIGBUS; the README tells admins to
    // run on an export nobody is writing to. Temporary files are ours and unnamed.
    Ok(match len {
        0 => None,
        _ => Some(unsafe { Mmap::map(file) }.map_err(io_err(path))?),
    })
}

/// Inflated bytes between two looks at a compressed input's new messages (small in unit
/// tests, so that they take several looks).
pub(crate) const EARLY_STEP: u64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// Why a look at a compressed input's inflated part failed.
pub(crate) enum Look {
    Io(io::Error),
    NotMbox(MboxError),
}

/// Splits the first `written` inflated bytes on from `at`, hands new messages to `early`
/// and keeps their spans.
pub(crate) fn early_look(
    name: &str,
    tmp: &File,
    written: u64,
    at: &mut mbox::Resume,
    spans: &mut Spans,
    early: &mut Early<'_>,
) -> Result<(), Look> {
    let len = usize::try_from(written).map_err(|e| Look::Io(io::Error::other(e)))?;
    // SAFETY: as in `map`; the first `written` bytes of our unnamed file are written and
    // never change. The map is dropped, and its pages given back, before the next look.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(tmp) }.map_err(Look::Io)?;
    let mut splitter = Splitter::resume(&map, *at, false).map_err(Look::NotMbox)?;
    let new: Vec<Span> = splitter.by_ref().collect();
    *at = splitter.state();
    early(name, &map, &new);
    for span in new {
        spans.push(span);
    }
    Ok(())
}
