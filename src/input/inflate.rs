//! Compressed mboxes (gzip in-process; xz, bzip2, zstd through their programs) inflated
//! as a stream into an unnamed temporary file, split while they inflate.

use crate::input::mapped::{EARLY_STEP, Look, early_look, map};
use crate::input::mbox;
use crate::input::mbox::{Span, Splitter};
use crate::input::sniff::quoted;
use crate::input::spans::Spans;
use crate::input::{
    Backing, Body, Early, InputFormat, Mapped, Source, SourceError, io_err, release_range,
};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc;

/// An inflated input's unnamed temporary file, and a thread that frees its disk blocks
/// batch by batch once they are delivered. Freeing a block on a file system mounted with
/// `discard` waits for the device (closing a 1 GB file took 0.2 s at the end of a run);
/// the thread does that waiting while the run goes on.
pub(crate) struct Scratch {
    pub(crate) file: File,
    pub(crate) freer: Option<mpsc::Sender<(u64, u64)>>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl Scratch {
    pub(crate) fn new(file: File) -> Self {
        let (freer, ranges) = mpsc::channel::<(u64, u64)>();
        let thread = file.try_clone().ok().and_then(|punch| {
            std::thread::Builder::new()
                .name("scratch".into())
                .spawn(move || {
                    for (start, len) in ranges {
                        // Only a saving: a range left allocated is freed when the file closes.
                        let _ = rustix::fs::fallocate(
                            &punch,
                            rustix::fs::FallocateFlags::PUNCH_HOLE
                                | rustix::fs::FallocateFlags::KEEP_SIZE,
                            start,
                            len,
                        );
                    }
                })
                .ok()
        });
        Scratch {
            freer: thread.as_ref().map(|_| freer),
            file,
            thread,
        }
    }

    /// Gives back `start..end`: its page cache at once (the copies being written reuse
    /// it), and its whole blocks in the thread: never a block shared with a byte outside,
    /// which a neighbouring batch still reads.
    pub(crate) fn give_back(&self, start: usize, end: usize) {
        // Only advice: pages still dirty are skipped, and reading them again works.
        let _ = rustix::fs::fadvise(
            &self.file,
            start as u64,
            std::num::NonZeroU64::new(end.saturating_sub(start) as u64),
            rustix::fs::Advice::DontNeed,
        );
        const BLOCK: u64 = 4096;
        let start = (start as u64).div_ceil(BLOCK) * BLOCK;
        let end = end as u64 / BLOCK * BLOCK;
        if let (Some(freer), true) = (&self.freer, end > start) {
            let _ = freer.send((start, end - start));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.freer = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The program that decompresses `format`, and the Debian package that has it.
pub(crate) fn decompressor(format: InputFormat) -> (&'static str, &'static str) {
    match format {
        InputFormat::Xz => ("xz", "xz-utils"),
        InputFormat::Bzip2 => ("bzip2", "bzip2"),
        _ => ("zstd", "zstd"),
    }
}

/// The output of a decompressing program, read as a stream. At its end the program's
/// exit status is checked, so that a damaged archive is an error, not a shorter mailbox.
pub(crate) struct Piped {
    pub(crate) child: std::process::Child,
    pub(crate) out: std::process::ChildStdout,
    pub(crate) program: &'static str,
}

impl io::Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.out.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let mut said = String::new();
            if let Some(err) = self.child.stderr.as_mut() {
                let _ = err.read_to_string(&mut said);
            }
            let status = self.child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "{} {status}: {}",
                    self.program,
                    crate::text::one_line(said.trim())
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        // Stopped early (the bytes are not an mbox): the program is not needed any more.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stream of the decompressed bytes of `path`: gzip inflated here, xz, bzip2 and zstd
/// through their own programs, which every system that made such an archive has.
pub(crate) fn decoder(
    path: &Path,
    format: InputFormat,
) -> Result<Box<dyn io::Read + Send>, SourceError> {
    let input = File::open(path).map_err(io_err(path))?;
    if format == InputFormat::Gzip {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 20, input),
        )));
    }
    let (program, package) = decompressor(format);
    let spawned = std::process::Command::new(program)
        .args(["-d", "-c"])
        .stdin(input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SourceError::Bad {
                path: path.display().to_string(),
                why: format!(
                    "compressed with {program}; popsplit reads it through `{program}`, which is not installed: install it (Debian, Ubuntu: `apt-get install {package}`), or unpack it first (`{program} -dk {}`) and give popsplit the mbox",
                    quoted(path)
                ),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let out = child.stdout.take().ok_or_else(|| SourceError::Bad {
        path: path.display().to_string(),
        why: format!("{program} gave no output"),
    })?;
    Ok(Box::new(Piped {
        child,
        out,
        program,
    }))
}

/// Decompresses into an unnamed temporary file: memory stays bounded and every later pass
/// reads plain bytes instead of inflating again. Three threads overlap: one inflates, one
/// writes, and this one splits what is written so far and hands the messages to `early`
/// (the first pass), so that little is left to do once the stream ends.
pub(crate) fn open_compressed(
    path: &Path,
    format: InputFormat,
    temp: &Path,
    early: &mut Early<'_>,
) -> Result<Source, SourceError> {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let name = path.display().to_string();
    let mut decoder = decoder(path, format)?;
    let tmp = tempfile::tempfile_in(temp).map_err(|e| SourceError::Bad {
        path: path.display().to_string(),
        why: format!(
            "cannot create the temporary file to decompress it into in the folder {} ({e}); name a folder with room with --temp-dir",
            temp.display()
        ),
    })?;
    let mut sink = tmp.try_clone().map_err(io_err(path))?;
    let flushed = tmp.try_clone().map_err(io_err(path))?;
    let (flush_tx, flush_rx) = mpsc::channel::<u64>();
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    let (written_tx, written_rx) = mpsc::channel::<u64>();
    let stop = AtomicBool::new(false);
    let bad = |why: String| SourceError::Bad {
        path: path.display().to_string(),
        why,
    };
    let not_mbox = |source| SourceError::NotMbox {
        path: path.display().to_string(),
        source,
    };
    let (at, mut spans) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut written = 0;
            let mut next_check = 0;
            for block in full_rx {
                if written >= next_check {
                    // Looked at more often as the room shrinks.
                    next_check = written + room_for(&sink, written)?.min(SPACE_STEP * 2) / 2;
                }
                sink.write_all(&block)?;
                written += block.len() as u64;
                let _ = written_tx.send(written);
                let _ = flush_tx.send(written);
                let _ = empty_tx.send(block);
            }
            Ok(())
        });
        // The disk is idle while the stream inflates: the temporary file goes out to it now
        // rather than in the output's first syncfs, in the middle of delivery. In its own
        // thread, because starting a write-out may wait for the device's queue.
        scope.spawn(move || {
            let mut started = 0;
            for written in flush_rx {
                if written - started >= FLUSH_STEP {
                    start_writeback(&flushed, started, written - started);
                    started = written;
                }
            }
        });
        let stop = &stop;
        let inflater = scope.spawn(move || -> Result<(), SourceError> {
            let mut inflated: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut block = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; INFLATE_BLOCK]);
                block.resize(INFLATE_BLOCK, 0);
                let mut filled = 0;
                let step = loop {
                    match decoder.read(&mut block[filled..]) {
                        Ok(0) => break Ok(true),
                        Ok(n) => {
                            filled += n;
                            if filled == block.len() {
                                break Ok(false);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                block.truncate(filled);
                inflated += filled as u64;
                let done = step.map_err(|e| {
                    bad(format!(
                        "{} stream unreadable after {inflated} decompressed bytes: {e} (truncated or damaged file?)",
                        match format {
                            InputFormat::Gzip => "gzip",
                            other => decompressor(other).0,
                        }
                    ))
                })?;
                if !block.is_empty() && full_tx.send(block).is_err() {
                    return Ok(()); // the writer stopped: its error says why
                }
                if done {
                    return Ok(());
                }
            }
            Ok(())
        });
        // Split and learn from what is written while the rest is inflated.
        let mut at = mbox::Resume::default();
        let mut spans = Spans::default();
        let mut next_look = EARLY_STEP;
        let mut looked = Ok(());
        while let Ok(mut written) = written_rx.recv() {
            written = written_rx.try_iter().last().unwrap_or(written).max(written);
            if written < next_look || looked.is_err() {
                continue;
            }
            looked =
                early_look(&name, &tmp, written, &mut at, &mut spans, early).map_err(|e| match e {
                    Look::Io(e) => io_err(path)(e),
                    Look::NotMbox(e) => not_mbox(e),
                });
            if looked.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            // A message longer than a step is looked at again only once the stream has
            // grown as much again, so that it is not scanned over and over.
            next_look = written + EARLY_STEP.max(written.saturating_sub(at.position() as u64));
        }
        let inflated = inflater
            .join()
            .map_err(|_| bad("the decompression thread failed".into()))?;
        let written = writer
            .join()
            .map_err(|_| bad("the decompression writer failed".into()))?;
        inflated?;
        written.map_err(|e| match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => bad(format!(
                "decompressing it needs more room than the folder {} has for temporary files ({e}); name a folder on a file system with room for the whole inflated mailbox with --temp-dir",
                temp.display()
            )),
            _ => io_err(path)(e),
        })?;
        looked?;
        Ok::<_, SourceError>((at, spans))
    })?;
    let map = map(path, &tmp)?;
    let data = map.as_deref().unwrap_or_default();
    let mut rest = Splitter::resume(data, at, true).map_err(not_mbox)?;
    let last: Vec<Span> = rest.by_ref().collect();
    early(&name, data, &last);
    for span in last {
        spans.push(span);
    }
    release_range(map.as_ref(), 0, data.len());
    Ok(Source {
        name,
        body: Body::Mapped(Mapped {
            map,
            spans,
            backing: Backing::Inflated(Scratch::new(tmp)),
        }),
    })
}

/// Inflated bytes between two looks at the temporary file system's free space, at most.
pub(crate) const SPACE_STEP: u64 = 64 << 20;

/// Bytes the inflating thread hands to the writer at a time.
pub(crate) const INFLATE_BLOCK: usize = 4 << 20;

/// The bytes the temporary file may still grow by, or "storage full" when that is less than
/// one more block: a small gzip can inflate to any size (36 MB gave more than 5 GB in
/// 15 s), and a full disk breaks the rest of the machine too, so a twentieth of the file
/// system, at most 1 GiB, is left to others.
pub(crate) fn room_for(file: &File, written: u64) -> io::Result<u64> {
    let st = rustix::fs::fstatvfs(file)?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let reserve = (st.f_blocks.saturating_mul(st.f_frsize) / 20).min(1 << 30);
    let room = free.saturating_sub(reserve);
    if room >= INFLATE_BLOCK as u64 {
        return Ok(room);
    }
    Err(io::Error::new(
        io::ErrorKind::StorageFull,
        format!(
            "{written} bytes inflated so far and more to come, {free} bytes free, {reserve} of them kept for the rest of the machine"
        ),
    ))
}

/// Inflated bytes between two write-outs of the temporary file.
pub(crate) const FLUSH_STEP: u64 = 32 << 20;

/// Starts writing `len` bytes of `file` from `from` to disk, without waiting for them: a
/// hint, so a failure is left to the syncs that follow.
pub(crate) fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the whole call, which only reads its arguments.
    let _ =
        unsafe { libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE) };
}
