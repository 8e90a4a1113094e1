//! The mbox splitter on any bytes: never panics, its spans tile the input exactly, and a
//! split over growing prefixes (as while a gzip input is inflated) gives the same spans.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use popsplit::input::mbox::{Resume, Span, Splitter, parse_from_line, unquote};

fuzz_target!(|data: &[u8]| {
    let whole: Result<Vec<Span>, _> = Splitter::new(data).map(Iterator::collect);
    // Cut points from the first bytes, so the fuzzer steers them too.
    let mut cuts: Vec<usize> = data
        .iter()
        .take(4)
        .scan(0usize, |acc, &b| {
            *acc += usize::from(b) * 7;
            Some(*acc % (data.len() + 1))
        })
        .collect();
    cuts.sort_unstable();
    let mut at = Resume::default();
    let mut stepped = Vec::new();
    let steps = (|| {
        for cut in cuts {
            let mut s = Splitter::resume(&data[..cut], at, false)?;
            stepped.extend(s.by_ref());
            at = s.state();
        }
        let mut s = Splitter::resume(data, at, true)?;
        stepped.extend(s.by_ref());
        Ok(stepped)
    })();
    assert_eq!(steps, whole);
    let Ok(spans) = whole else { return };
    let mut at = Splitter::new(data).map(|s| s.prefix.end).unwrap_or(0);
    for span in spans {
        assert_eq!(span.from_line.start, at);
        assert_eq!(span.from_line.end, span.content.start);
        assert_eq!(span.content.end, span.trailer.start);
        at = span.trailer.end;
        let content = &data[span.content.clone()];
        let unquoted = unquote(content);
        assert!(unquoted.len() <= content.len());
        // The split's flag never misses a line to unquote.
        assert!(span.quoted || matches!(unquoted, Cow::Borrowed(_)));
        let _ = parse_from_line(&data[span.from_line.clone()]);
    }
    assert_eq!(at, data.len());
});
