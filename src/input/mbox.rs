//! Stage 1 (read → split): cut an mbox file into messages, keeping every byte accounted for.
//!
//! A separator is a `From ` line that has the shape an mbox writer gives it (a sender and an
//! asctime-style date) and that follows a blank line, or, where a writer forgot the blank
//! line, is followed by a header line. Body lines that merely start with `From ` (mboxo
//! never quoted them) therefore do not split a message.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::{self, Finder};

/// Why a file could not be read as an mbox.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MboxError {
    /// The first non-blank line is not a `From ` separator.
    #[error("not an mbox file: byte offset {offset} does not start a \"From \" line")]
    NotMbox {
        /// Where the first non-blank byte is.
        offset: usize,
    },
}

/// Where one message lies in the file: `from_line`, then `content`, then `trailer` (the
/// blank line the writer put before the next separator), back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// 1-based position of the message in its file.
    pub number: usize,
    /// The `From ` line, with its line ending.
    pub from_line: Range<usize>,
    /// The message as stored (still `>From`-quoted).
    pub content: Range<usize>,
    /// The separating blank line, empty when the writer left none.
    pub trailer: Range<usize>,
    /// Why the split before or inside this message is uncertain, when it is.
    pub note: Option<&'static str>,
    /// Whether the content may hold a `>From ` line to unquote: false only when the
    /// splitter's own scan saw none, so that reading the message needs no second scan.
    pub quoted: bool,
}

impl Span {
    /// Bytes of the file the span covers, separator and trailer included.
    pub fn size(&self) -> u64 {
        (self.trailer.end - self.from_line.start) as u64
    }
}

/// How sure the splitter is that a `From ` line starts a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// Dated, after a blank line: what every mbox writer produces.
    Sure,
    /// Dated but without the blank line before it, or undated: a writer's quirk, or an
    /// unquoted body line that happens to look like a separator.
    Doubtful,
}

/// Iterator over the messages of an mbox held in memory.
pub struct Splitter<'a> {
    data: &'a [u8],
    pos: usize,
    number: usize,
    finder: memmem::Finder<'static>,
    /// Blank bytes before the first separator.
    pub prefix: Range<usize>,
    /// Note for the message that starts at `pos`.
    pending: Option<&'static str>,
    /// Whether `data` is the whole file, or a prefix of a file still being written.
    complete: bool,
    /// Whether the file is known to be an mbox: a short prefix may not tell yet.
    started: bool,
}

/// Where a [`Splitter`] over a prefix stopped, to go on over a longer prefix
/// (`Default`: at the start of the file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resume {
    pos: usize,
    number: usize,
    pending: Option<&'static str>,
    started: bool,
}

/// How a message's Content-Length field places its end.
enum ByLength {
    /// No field: separators decide.
    NoField,
    /// It ends at the first offset; the next separator starts at the second.
    Ends(usize, usize),
    /// The field is not used, for this reason: separators decide.
    Ignored(&'static str),
    /// Bytes past the prefix decide.
    More,
}

impl Resume {
    /// Byte offset of the next message (the start of the file before any).
    pub fn position(&self) -> usize {
        if self.started { self.pos } else { 0 }
    }
}

impl<'a> Splitter<'a> {
    /// Checks that `data` looks like an mbox (or is empty) and prepares to split it.
    pub fn new(data: &'a [u8]) -> Result<Self, MboxError> {
        Splitter::resume(data, Resume::default(), true)
    }

    /// Splits `data`, a prefix of a file still being written: messages come out only while
    /// no later byte could change them, and [`Splitter::resume`] goes on from there over a
    /// longer prefix. The spans are those a split of the whole file gives.
    pub fn partial(data: &'a [u8]) -> Result<Self, MboxError> {
        Splitter::resume(data, Resume::default(), false)
    }

    /// Where this split stands, for [`Splitter::resume`].
    pub fn state(&self) -> Resume {
        Resume {
            pos: self.pos,
            number: self.number,
            pending: self.pending,
            started: self.started,
        }
    }

    /// Goes on splitting from `at` over `data`: a longer prefix of the same file, or the
    /// whole file when `complete`.
    pub fn resume(data: &'a [u8], at: Resume, complete: bool) -> Result<Self, MboxError> {
        let mut s = Splitter {
            data,
            pos: at.pos,
            number: at.number,
            // `From ` rather than `\nFrom `: one scan finds both the separators and the
            // `>From ` lines [`unquote`] would look for again in every message (3.4% of a
            // run's samples, perf, before).
            finder: memmem::Finder::new(b"From ").into_owned(),
            prefix: 0..0,
            pending: at.pending,
            complete,
            started: at.started,
        };
        if !s.started {
            let start = data
                .iter()
                .position(|&b| b != b'\n' && b != b'\r')
                .unwrap_or(data.len());
            let head = &data[start..];
            if !complete && b"From ".starts_with(head) {
                // Blank so far, or too short to tell.
                s.pos = data.len();
                return Ok(s);
            }
            if !head.is_empty() && !head.starts_with(b"From ") {
                return Err(MboxError::NotMbox { offset: start });
            }
            (s.pos, s.prefix, s.started) = (start, 0..start, true);
        }
        Ok(s)
    }

    /// Whether the line starting at `at` and the line after it both end within `data` (or
    /// `data` is the whole file): only then are judgements about them final.
    fn lines_known(&self, at: usize) -> bool {
        let data = self.data;
        self.complete
            || memchr::memchr(b'\n', &data[at.min(data.len())..]).is_some_and(|i| {
                memchr::memchr(b'\n', &data[(at + i + 1).min(data.len())..]).is_some()
            })
    }

    /// Finds the start of the next separator line at or after `from` (the start of a line),
    /// or the end of data, and whether a `>From ` line to unquote comes before it; `None`
    /// when bytes past the prefix decide.
    fn next_separator(&self, from: usize) -> Option<(usize, Strength, bool)> {
        let data = self.data;
        let (mut at, mut quoted) = (from, false);
        while let Some(hit) = self.finder.find(&data[at..]) {
            let line = at + hit;
            at = line + 1;
            if line == from || data[line - 1] == b'\n' {
                if !self.lines_known(line) {
                    return None;
                }
                if let Some(strength) = separator(data, line) {
                    return Some((line, strength, quoted));
                }
            } else if data[line - 1] == b'>' {
                // `>+From ` at the start of a line: `from` starts one, so the run of `>`
                // stops there at the latest.
                let gts = data[from..line]
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'>')
                    .count();
                let start = line - gts;
                quoted |= start == from || data[start - 1] == b'\n';
            }
        }
        self.complete
            .then_some((data.len(), Strength::Sure, quoted))
    }

    /// mboxcl/mboxcl2: where the message ends by its Content-Length field, if the field is
    /// there and lands exactly on the next separator or the end of the file. Otherwise the
    /// field lies (or the file is cut short) and separators decide.
    fn content_length_end(&self, content_start: usize) -> ByLength {
        let data = self.data;
        let rest = &data[content_start..];
        let Some(body_start) = blank_line_end(rest) else {
            // A header block cut by the prefix may still hold the field.
            return match self.complete {
                true => ByLength::NoField,
                false => ByLength::More,
            };
        };
        let Some(length) = content_length(&rest[..body_start]) else {
            return ByLength::NoField;
        };
        let end = match (content_start + body_start).checked_add(length) {
            Some(e) if e <= data.len() => e,
            _ if !self.complete => return ByLength::More,
            _ => {
                return ByLength::Ignored(
                    "truncated: its Content-Length says more than the file holds",
                );
            }
        };
        // The checks below read the (up to two) blank bytes at `end` and the line after.
        if !self.complete && memchr::memchr(b'\n', &data[(end + 2).min(data.len())..]).is_none() {
            return ByLength::More;
        }
        let rest = &data[end..];
        for (blank, skip) in [(&b""[..], 0), (b"\n", 1), (b"\r\n", 2)] {
            if rest == blank {
                return ByLength::Ends(end, end + skip);
            }
            if rest.starts_with(blank)
                && rest[skip..].starts_with(b"From ")
                && separator_line_dated(data, end + skip)
            {
                return ByLength::Ends(end, end + skip);
            }
        }
        ByLength::Ignored("its Content-Length does not end at a separator and was not used")
    }
}

impl Iterator for Splitter<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let data = self.data;
        if self.pos >= data.len() {
            return None;
        }
        let start = self.pos;
        let line_end = match memchr::memchr(b'\n', &data[start..]) {
            Some(i) => start + i + 1,
            None if self.complete => data.len(),
            None => return None,
        };
        // Nothing changes until the message is known in full: over a prefix, `None` means
        // "resume with more".
        let mut note = self.pending;
        let by_length = self.content_length_end(line_end);
        if let ByLength::Ends(end, next) = by_length {
            self.pending = None;
            self.number += 1;
            self.pos = next;
            return Some(Span {
                number: self.number,
                from_line: start..line_end,
                content: line_end..end,
                trailer: end..next,
                note,
                // The length skipped the separator scan: any `>From ` may be a quoted line.
                quoted: memmem::find(&data[line_end..end], b">From ").is_some(),
            });
        }
        match by_length {
            ByLength::More => return None,
            ByLength::Ignored(why) => note = note.or(Some(why)),
            ByLength::NoField | ByLength::Ends(..) => {}
        }
        // The search starts at the content, so that a message with an empty body region (a
        // `From ` line right after another) is still seen.
        let (next, strength, quoted) = self.next_separator(line_end)?;
        self.pending = None;
        if strength == Strength::Doubtful {
            self.pending = Some(
                "starts at a `From ` line that is undated or not after a blank line: check that the message before it was not split in two",
            );
        }
        let region = &data[line_end..next];
        let trailer_len =
            if next < data.len() || region.ends_with(b"\n\n") || region.ends_with(b"\r\n\r\n") {
                trailer_len(region)
            } else {
                0
            };
        self.number += 1;
        self.pos = next;
        Some(Span {
            number: self.number,
            from_line: start..line_end,
            content: line_end..next - trailer_len,
            trailer: next - trailer_len..next,
            note,
            quoted,
        })
    }
}

/// Length of the blank line that ends `region`, if it ends with one after other content.
fn trailer_len(region: &[u8]) -> usize {
    if region.ends_with(b"\r\n\r\n") || region == b"\r\n" {
        2
    } else if region.ends_with(b"\n\n") || region == b"\n" {
        1
    } else {
        0
    }
}

/// The value of the Content-Length field of the header block `head` (the last, when
/// there are several, as a reader line by line keeps it).
fn content_length(head: &[u8]) -> Option<usize> {
    // The field's name ends in `h:`: only lines holding that are read, found by two
    // searches rather than one per line (a memchr per line was 3.5% of a run on list mail).
    static LOWER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"h:"));
    static UPPER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"H:"));
    const NAME: &[u8] = b"content-length:";
    let line = [&*LOWER, &*UPPER]
        .into_iter()
        .flat_map(|f| f.find_iter(head))
        .filter_map(|h| {
            let start = (h + 2).checked_sub(NAME.len())?;
            let at_line_start = start == 0 || head[start - 1] == b'\n';
            (at_line_start && head[start..h + 2].eq_ignore_ascii_case(NAME)).then_some(start)
        })
        .max()?;
    let value = &head[line + NAME.len()..];
    let value = &value[..memchr::memchr(b'\n', value).map_or(value.len(), |i| i + 1)];
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Where the header block of `msg` ends (after its blank line), or its length.
pub(crate) fn header_end(msg: &[u8]) -> usize {
    blank_line_end(msg).unwrap_or(msg.len())
}

/// Where the first blank line of `msg` (starting at a line start) ends, if it holds one.
fn blank_line_end(msg: &[u8]) -> Option<usize> {
    // Searched as the two byte strings a blank line makes after a line, not line by line:
    // a search per line was 5% of a run on list mail, whose header blocks run to
    // hundreds of lines (perf).
    static LF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
    static CRLF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));
    // Windows bound the search: `msg` may be the rest of a large file, where a message
    // without a blank line of the kind looked for first must not cost a search to its end.
    // A few bytes in unit tests, so that their short messages cross windows' edges.
    const WINDOW: usize = if cfg!(test) { 4 } else { 8 << 10 };
    if msg.starts_with(b"\n") {
        return Some(1);
    }
    if msg.starts_with(b"\r\n") {
        return Some(2);
    }
    // The ending of the first line is looked for first; the other only before where that
    // was found.
    let crlf = memchr::memchr(b'\n', msg).is_some_and(|i| i > 0 && msg[i - 1] == b'\r');
    let (first, other) = match crlf {
        true => (&*CRLF, &*LF),
        false => (&*LF, &*CRLF),
    };
    let mut from = 0;
    while from < msg.len() {
        // The window holds every blank line whose `\n` before it is in [from, to); the
        // next window starts at `to`.
        let to = (from + WINDOW).min(msg.len());
        let window = &msg[from..(to + 2).min(msg.len())];
        let found = match first.find(window) {
            // One of the other kind found before `at` lies within this prefix.
            Some(at) => {
                let before = &window[..(at + other.needle().len() - 1).min(window.len())];
                match other.find(before) {
                    Some(o) => Some((o, other)),
                    None => Some((at, first)),
                }
            }
            None => other.find(window).map(|o| (o, other)),
        };
        // None starts before `from`: the first in the window is the first of all.
        if let Some((at, kind)) = found {
            return Some(from + at + kind.needle().len());
        }
        from = to;
    }
    None
}

/// Whether the `From ` line at `line` carries a date.
fn separator_line_dated(data: &[u8], line: usize) -> bool {
    let end = memchr::memchr(b'\n', &data[line..]).map_or(data.len(), |i| line + i);
    parse_from_line(&data[line..end]).time.is_some()
}

/// Whether the line starting at `line` (just after a `\n`) is a message separator, and
/// how sure that is.
fn separator(data: &[u8], line: usize) -> Option<Strength> {
    let end = memchr::memchr(b'\n', &data[line..]).map_or(data.len(), |i| line + i);
    let dated = parse_from_line(&data[line..end]).time.is_some();
    let before = &data[..line];
    let blank_before = before == b"\n"
        || before == b"\r\n"
        || before.ends_with(b"\n\n")
        || before.ends_with(b"\n\r\n");
    let header_after = looks_like_header(&data[(end + 1).min(data.len())..]);
    // Two of the three signs: a writer's date, the blank line writers put before a
    // separator, a header line after it.
    match (dated, blank_before, header_after) {
        (true, true, _) => Some(Strength::Sure),
        (true, false, true) | (false, true, true) => Some(Strength::Doubtful),
        _ => None,
    }
}

/// Whether `rest` starts with a `Name:` header line.
pub fn looks_like_header(rest: &[u8]) -> bool {
    let name_len = rest
        .iter()
        .take_while(|&&b| b.is_ascii_graphic() && b != b':')
        .count();
    name_len > 0 && rest.get(name_len) == Some(&b':')
}

/// What a `From ` separator line says: the envelope sender and the arrival time.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FromLine {
    /// The envelope sender (`MAILER-DAEMON` for bounces), as written.
    pub sender: String,
    /// Arrival time in seconds since the Unix epoch, when the date could be read.
    pub time: Option<i64>,
}

/// Reads a `From sender Www Mmm dd hh:mm:ss yyyy [zone]` line; lenient about field order,
/// zone names and numeric offsets, because every mbox writer varies it.
pub fn parse_from_line(line: &[u8]) -> FromLine {
    let text = crate::text::lossy(line);
    let mut tokens = text.split_ascii_whitespace();
    if tokens.next() != Some("From") {
        return FromLine::default();
    }
    let sender = tokens.next().unwrap_or_default().to_string();
    // Room for the usual seven date tokens at once: grown step by step, this Vec was two
    // of the few allocations made per message in each pass.
    let mut rest: Vec<&str> = Vec::with_capacity(8);
    rest.extend(tokens);
    FromLine {
        sender,
        time: parse_loose_date(&rest),
    }
}

/// Finds month, day, time, year and an optional `+hhmm` offset among date tokens, or an
/// ISO `yyyy-mm-dd hh:mm:ss` date as some exporters write it.
fn parse_loose_date(tokens: &[&str]) -> Option<i64> {
    if let Some(t) = parse_iso_date(tokens) {
        return Some(t);
    }
    let month_at = tokens.iter().position(|t| month_number(t).is_some())?;
    let month = month_number(tokens[month_at])?;
    let num = |t: &str| t.trim_end_matches(',').parse::<i64>().ok();
    let day = tokens
        .get(month_at + 1)
        .and_then(|t| num(t))
        .filter(|d| (1..=31).contains(d))
        .or_else(|| month_at.checked_sub(1).and_then(|i| num(tokens[i])))
        .filter(|d| (1..=31).contains(d))?;
    let after = &tokens[month_at + 1..];
    let secs = time_of_day(after)?;
    let year = after
        .iter()
        .filter_map(|t| t.parse::<i64>().ok())
        .find(|y| (1970..=2200).contains(y))?;
    Some(days_from_civil(year, month, day) * 86_400 + secs - zone_offset(after))
}

/// `yyyy-mm-dd` followed by a time and an optional offset.
fn parse_iso_date(tokens: &[&str]) -> Option<i64> {
    let at = tokens
        .iter()
        .position(|t| t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-')?;
    let mut ymd = tokens[at].split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    if !(1970..=2200).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let after = &tokens[at + 1..];
    Some(days_from_civil(y, m, d) * 86_400 + time_of_day(after)? - zone_offset(after))
}

/// Seconds since midnight of the first `hh:mm[:ss]` token.
fn time_of_day(tokens: &[&str]) -> Option<i64> {
    let time = tokens.iter().find(|t| t.contains(':'))?;
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().flatten().unwrap_or(0);
    // Checked before any arithmetic: a hostile line may hold any number there.
    (h <= 23 && m <= 59 && s <= 60).then(|| i64::from(h * 3600 + m * 60 + s))
}

/// The first `+hhmm`/`-hhmm` token as seconds east of UTC (0 when absent).
fn zone_offset(tokens: &[&str]) -> i64 {
    tokens
        .iter()
        .find(|t| (t.starts_with('+') || t.starts_with('-')) && t.len() == 5)
        .and_then(|t| {
            let v: i64 = t[1..].parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            Some(if t.starts_with('-') { -secs } else { secs })
        })
        .unwrap_or(0)
}

/// English month abbreviations, as mail dates write them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Weekday abbreviations from Thursday, the weekday of 1970-01-01.
pub const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Month number (1–12) of an English month abbreviation.
fn month_number(token: &str) -> Option<i64> {
    // One `match` on the three bytes, lower-cased: every token of every `From ` line is
    // tried, and a case-blind comparison with each of twelve names was most of the
    // line's parsing (callgrind).
    let &[a, b, c] = token.trim_end_matches(',').as_bytes() else {
        return None;
    };
    Some(match &[a, b, c].map(|x| x.to_ascii_lowercase()) {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// (weekday, day, month, year, hour, minute, second) names and numbers of a UTC time.
pub fn calendar(t: i64) -> (&'static str, i64, &'static str, i64, i64, i64, i64) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    (
        WEEKDAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1).clamp(0, 11) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
    )
}

/// The date of a `From ` line (asctime form, UTC) for `t` seconds since the epoch.
pub fn asctime(t: i64) -> String {
    let (wd, d, mon, y, h, mi, s) = calendar(t);
    format!("{wd} {mon} {d:>2} {h:02}:{mi:02}:{s:02} {y}")
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Undoes mboxrd quoting: one `>` is removed from every line matching `^>+From `.
/// Borrows when the message has no quoted line, which is nearly always.
pub fn unquote(content: &[u8]) -> Cow<'_, [u8]> {
    // The start of each quoted line: every `>From ` whose run of `>` begins a line (one
    // per line, in order, as the run before a line's first `From ` is unique).
    let mut quoted = memmem::find_iter(content, b">From ").filter_map(|i| {
        let line_start = content[..i]
            .iter()
            .rposition(|&b| b != b'>')
            .map_or(0, |p| p + 1);
        (line_start == 0 || content[line_start - 1] == b'\n').then_some(line_start)
    });
    let Some(first) = quoted.next() else {
        return Cow::Borrowed(content);
    };
    // Copied between the dropped `>`s rather than line by line: a line at a time took 7
    // instructions a byte (callgrind).
    let mut out = Vec::with_capacity(content.len());
    let mut at = 0;
    for line_start in std::iter::once(first).chain(quoted) {
        out.extend_from_slice(&content[at..line_start]);
        at = line_start + 1;
    }
    out.extend_from_slice(&content[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: &[u8]) -> Vec<Span> {
        Splitter::new(data).expect("mbox").collect()
    }

    fn contents(data: &[u8]) -> Vec<&[u8]> {
        split(data).into_iter().map(|s| &data[s.content]).collect()
    }

    /// Spans plus prefix must tile the file exactly.
    fn assert_tiles(data: &[u8]) {
        let sp = Splitter::new(data).expect("mbox");
        let mut at = sp.prefix.end;
        for s in sp {
            assert_eq!(s.from_line.start, at);
            assert_eq!(s.from_line.end, s.content.start);
            assert_eq!(s.content.end, s.trailer.start);
            let unquoted = unquote(&data[s.content.clone()]);
            assert!(s.quoted || matches!(unquoted, Cow::Borrowed(_)), "{s:?}");
            at = s.trailer.end;
        }
        assert_eq!(at, data.len());
    }

    const A: &str = "From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nbody a\n\n";
    const B: &str = "From b@x Tue Jan  2 00:00:00 2001\nSubject: b\n\nbody b\n\n";

    #[test]
    fn splits_plain_mbox_and_strips_separator_blank_line() {
        let data = format!("{A}{B}");
        assert_eq!(
            contents(data.as_bytes()),
            vec![&b"Subject: a\n\nbody a\n"[..], b"Subject: b\n\nbody b\n"]
        );
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn keeps_last_message_without_trailing_newline() {
        let data = format!("{A}From c@x Wed Jan  3 00:00:00 2001\nSubject: c\n\nno newline");
        let c = contents(data.as_bytes());
        assert_eq!(c.len(), 2);
        assert_eq!(c[1], b"Subject: c\n\nno newline");
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn crlf_and_leading_blank_line() {
        let data = format!("\r\n{}{}", A.replace('\n', "\r\n"), B.replace('\n', "\r\n"));
        let c = contents(data.as_bytes());
        assert_eq!(c[0], b"Subject: a\r\n\r\nbody a\r\n");
        assert_eq!(c[1], b"Subject: b\r\n\r\nbody b\r\n");
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn unquoted_body_from_lines_do_not_split() {
        let data = format!(
            "From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nhi\n\nFrom here on we talk.\nFrom me\n\n{B}"
        );
        assert_eq!(split(data.as_bytes()).len(), 2);
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn separator_without_blank_line_needs_a_header_after_it() {
        let data = "From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nhi\nFrom b@x Tue Jan  2 00:00:00 2001\nSubject: b\n\nyo\n";
        assert_eq!(split(data.as_bytes()).len(), 2);
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn undated_separator_needs_blank_line_and_header() {
        let data = b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nhi\n\nFrom ()\nSubject: b\n\nyo\n\nFrom me, see you\n";
        assert_eq!(split(data).len(), 2);
        assert_tiles(data);
    }

    #[test]
    fn content_length_keeps_an_unquoted_separator_inside_the_body() {
        let body = "hi\n\nFrom x@y Mon Jan  1 00:00:00 2001\nSubject: looks like a message\n\nbut is body\n";
        let data = format!(
            "From a@x Mon Jan  1 00:00:00 2001\nContent-Length: {}\nSubject: a\n\n{body}\n{B}",
            body.len()
        );
        let s = split(data.as_bytes());
        assert_eq!(s.len(), 2);
        assert!(data.as_bytes()[s[0].content.clone()].ends_with(b"but is body\n"));
        assert_eq!(s[0].note, None);
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn lying_content_length_is_ignored_and_noted() {
        let data = format!(
            "From a@x Mon Jan  1 00:00:00 2001\nContent-Length: 3\nSubject: a\n\nbody a\n\n{B}"
        );
        let s = split(data.as_bytes());
        assert_eq!(s.len(), 2);
        assert_eq!(
            &data.as_bytes()[s[0].content.clone()],
            b"Content-Length: 3\nSubject: a\n\nbody a\n"
        );
        assert!(
            s[0].note
                .expect("note")
                .contains("Content-Length does not end")
        );
        let cut = "From a@x Mon Jan  1 00:00:00 2001\nContent-Length: 999\n\nshort";
        let t = split(cut.as_bytes());
        assert_eq!(t.len(), 1);
        assert!(t[0].note.expect("note").starts_with("truncated"));
        assert_tiles(cut.as_bytes());
    }

    #[test]
    fn doubtful_separator_is_noted_on_the_message_it_starts() {
        let data = b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nhi\nFrom b@x Tue Jan  2 00:00:00 2001\nSubject: b\n\nyo\n";
        let s = split(data);
        assert_eq!(s[0].note, None);
        assert!(s[1].note.expect("note").contains("split in two"));
    }

    #[test]
    fn rejects_non_mbox_with_offset() {
        assert_eq!(
            Splitter::new(b"\n%PDF-1.4").err(),
            Some(MboxError::NotMbox { offset: 1 })
        );
        assert_eq!(split(b"").len(), 0);
        assert_eq!(split(b"\n\n").len(), 0);
    }

    #[test]
    fn empty_message_between_separators() {
        let data = format!("From a@x Mon Jan  1 00:00:00 2001\n\n{B}");
        let s = split(data.as_bytes());
        assert_eq!(s.len(), 2);
        assert_tiles(data.as_bytes());
    }

    #[test]
    fn month_names_are_read_in_any_case_and_nothing_else_is() {
        for (i, m) in MONTHS.iter().enumerate() {
            let n = Some(i as i64 + 1);
            assert_eq!(month_number(m), n, "{m}");
            assert_eq!(month_number(&m.to_uppercase()), n, "{m}");
            assert_eq!(month_number(&format!("{},", m.to_lowercase())), n, "{m}");
        }
        for t in [
            "", "Ja", "Janu", "Jä", "J\u{e4}n", "Mai", "1", ",,,", "Jan,x",
        ] {
            assert_eq!(month_number(t), None, "{t:?}");
        }
    }

    #[test]
    fn from_line_dates() {
        let f = parse_from_line(b"From alice@example.com Mon Jan  1 00:00:00 2001");
        assert_eq!(f.sender, "alice@example.com");
        assert_eq!(f.time, Some(978_307_200));
        let z = parse_from_line(b"From x Sat Jan  3 01:05:34 1996 +0100");
        assert_eq!(z.time, Some(820_631_134 - 3600));
        let named = parse_from_line(b"From x Sat Jan  3 01:05:34 MET 1996");
        assert_eq!(named.time, Some(820_631_134));
        assert_eq!(parse_from_line(b"From here on we talk").time, None);
        let iso = parse_from_line(b"From () 2001-01-01 01:00:00 +0100");
        assert_eq!(iso.time, Some(978_307_200));
        assert_eq!(
            parse_from_line(b"From x Mon Jan 1 99:00:00 2001").time,
            None
        );
    }

    /// Found by the `mbox_split` fuzz target: an hour of 11 digits overflowed the
    /// multiplication before the range check.
    #[test]
    fn regression_fuzz_huge_hour_in_from_line() {
        assert_eq!(
            parse_from_line(b"From a@x Mon Jan  1 99999999999:00:00 2001").time,
            None
        );
        assert_eq!(
            parse_from_line(b"From () 2019-10-02 4294967295:04:34 +0000").time,
            None
        );
        assert_eq!(
            parse_from_line(b"From x Mon Jan 1 -1:00:00 2001").time,
            None
        );
        let data = b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nx\n\nFrom b@x Mon Jan  1 99999999999:00:00 2001\nSubject: b\n\ny\n";
        assert_tiles(data);
    }

    #[test]
    fn the_split_flags_exactly_the_messages_with_quoted_lines() {
        let data = format!(
            "{A}From c@x Wed Jan  3 00:00:00 2001\nSubject: c\n\n>From x\n\n\
             From d@x Thu Jan  4 00:00:00 2001\nSubject: d\n\nb>From c\nFrom y\n\n\
             From e@x Fri Jan  5 00:00:00 2001\n>>From z\n\n{B}"
        );
        let quoted: Vec<bool> = split(data.as_bytes()).iter().map(|s| s.quoted).collect();
        assert_eq!(quoted, vec![false, true, false, true, false]);
        assert_tiles(data.as_bytes());
        // A Content-Length span is flagged by any `>From `, to be safe.
        let cl = "From a@x Mon Jan  1 00:00:00 2001\nContent-Length: 9\n\nb>From c\n\n";
        assert!(split(cl.as_bytes())[0].quoted);
        assert_tiles(cl.as_bytes());
    }

    #[test]
    fn unquote_mboxrd() {
        assert_eq!(
            unquote(b"a\n>From x\n>>From y\n> From z\nb>From c\n").as_ref(),
            b"a\nFrom x\n>From y\n> From z\nb>From c\n"
        );
        assert!(matches!(unquote(b"plain\nb>From c\n"), Cow::Borrowed(_)));
        assert_eq!(unquote(b">From start").as_ref(), b"From start");
    }

    /// The line-by-line reading that [`header_end`] and [`content_length`] replaced: where
    /// the first line empty but for its ending ends, if there is one, and the value of the
    /// last `Content-Length` line before it.
    fn line_by_line(msg: &[u8]) -> (Option<usize>, Option<usize>) {
        let (mut pos, mut length) = (0, None);
        while pos < msg.len() {
            let end = memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1);
            let line = &msg[pos..end];
            if line == b"\n" || line == b"\r\n" {
                return (Some(end), length);
            }
            if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
                length = std::str::from_utf8(&line[15..])
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
            pos = end;
        }
        (None, length)
    }

    /// What the splitter reads of a message now: Content-Length and where the body starts.
    fn length_and_body(msg: &[u8]) -> Option<(usize, usize)> {
        blank_line_end(msg).and_then(|b| Some((content_length(&msg[..b])?, b)))
    }

    /// The same, read line by line.
    fn length_and_body_line_by_line(msg: &[u8]) -> Option<(usize, usize)> {
        match line_by_line(msg) {
            (Some(body), Some(length)) => Some((length, body)),
            _ => None,
        }
    }

    #[test]
    fn a_header_block_ends_after_its_first_blank_line() {
        for (msg, end) in [
            (&b"A: 1\nB: 2\n\nbody\n\nmore"[..], 11),
            (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n", 14),
            // Mixed endings: the first blank line wins, of either kind.
            (b"A: 1\r\nB: 2\n\nbody\r\n\r\n", 12),
            (b"A: 1\nB: 2\r\n\r\nbody\n\n", 13),
            // A blank line right before one of the first line's kind.
            (b"x\r\n\n\r\nbody", 4),
            (b"\nbody", 1),
            (b"\r\nbody", 2),
            (b"A: 1\nno blank line", 18),
            (b"A: 1\r\r\n\r\n", 9),
            (b"", 0),
        ] {
            assert_eq!(header_end(msg), end, "{:?}", String::from_utf8_lossy(msg));
        }
    }

    proptest::proptest! {
        #[test]
        fn header_end_agrees_with_reading_line_by_line(
            msg in proptest::collection::vec(proptest::sample::select(b"a:\r\n ".to_vec()), 0..64),
        ) {
            proptest::prop_assert_eq!(header_end(&msg), line_by_line(&msg).0.unwrap_or(msg.len()));
        }
    }

    #[test]
    fn content_length_is_read_from_the_last_field_that_names_it() {
        for (msg, want) in [
            (&b"A: 1\nContent-Length: 12\n\nbody"[..], Some((12, 25))),
            (b"CONTENT-LENGTH: 3\r\nX: y\r\n\r\nabc", Some((3, 27))),
            // The last field counts, even when its value does not read.
            (b"Content-Length: 3\nContent-length: 4\n\n", Some((4, 37))),
            (b"Content-Length: 3\nContent-Length: x\n\n", None),
            // Not a field of its own, or past the header block.
            (b"X-Content-Length: 3\n\n", None),
            (b"A: 1\n\nContent-Length: 3\n\n", None),
            (b" Content-Length: 3\n\n", None),
            (b"Content-Length: 3\nno blank line", None),
        ] {
            let got = length_and_body(msg);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(msg));
            assert_eq!(got, length_and_body_line_by_line(msg));
        }
    }

    proptest::proptest! {
        #[test]
        fn content_length_agrees_with_reading_line_by_line(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "Content-Length: 7", "content-LENGTH:12 ", "X-Content-Length: 9", "h:", "H:",
                "Content-Length: x", "a", " ", "\n", "\r\n", "\n\n", "\r",
            ]), 0..16),
        ) {
            let msg = parts.concat().into_bytes();
            proptest::prop_assert_eq!(length_and_body(&msg), length_and_body_line_by_line(&msg));
        }
    }
}
