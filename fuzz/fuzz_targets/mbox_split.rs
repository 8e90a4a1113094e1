//! The mbox splitter on any bytes: never panics, and its spans tile the input exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popsplit::mbox::{Splitter, parse_from_line, unquote};

fuzz_target!(|data: &[u8]| {
    let Ok(splitter) = Splitter::new(data) else { return };
    let mut at = splitter.prefix.end;
    for span in splitter {
        assert_eq!(span.from_line.start, at);
        assert_eq!(span.from_line.end, span.content.start);
        assert_eq!(span.content.end, span.trailer.start);
        at = span.trailer.end;
        let content = &data[span.content.clone()];
        let unquoted = unquote(content);
        assert!(unquoted.len() <= content.len());
        let _ = parse_from_line(&data[span.from_line.clone()]);
    }
    assert_eq!(at, data.len());
});
