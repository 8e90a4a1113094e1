//! Property tests: for any sequence of messages, writing an mbox (mboxo, mboxrd, mboxcl2;
//! LF or CRLF) and reading it back gives the same messages byte for byte, and every
//! message lands in some Maildir.

mod common;

use proptest::prelude::*;

use popsplit::input::mbox::{MboxError, Resume, Span, Splitter, unquote};

#[derive(Debug, Clone, Copy)]
enum Variant {
    Mboxo,
    Mboxrd,
    Mboxcl2,
}

/// A line of a message body or header block, including the traps.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,:;<>@=-]{0,40}",
        Just("From here on we talk".to_string()),
        Just("From x@example.org Mon Jan  1 00:00:00 2001".to_string()),
        Just(">From quoted once".to_string()),
        Just(">>From quoted twice".to_string()),
        Just(String::new()),
        Just("To: alice@example.com".to_string()),
    ]
}

/// (header lines, body lines) of one message.
fn message() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    (
        prop::collection::vec("[A-Z][a-z]{1,8}: [a-z0-9@. ]{0,20}", 0..4),
        prop::collection::vec(line(), 0..12),
    )
}

fn render(headers: &[String], body: &[String], eol: &str, variant: Variant) -> Vec<u8> {
    let quoted_from = |l: &str| l.trim_start_matches('>').starts_with("From ");
    let body: Vec<String> = body
        .iter()
        // mboxo cannot tell an original `>From` from a quoted one, and mboxcl2 does not
        // quote at all: keep those lines out of the variants that cannot carry them.
        .filter(|l| match variant {
            Variant::Mboxo | Variant::Mboxcl2 => !(l.starts_with('>') && quoted_from(l)),
            Variant::Mboxrd => true,
        })
        .cloned()
        .collect();
    let mut m = String::new();
    for h in headers {
        m.push_str(h);
        m.push_str(eol);
    }
    m.push_str(eol);
    for l in &body {
        m.push_str(l);
        m.push_str(eol);
    }
    m.into_bytes()
}

/// Writes messages as an mbox writer of `variant` does; returns the file and what a reader
/// must give back for each message.
fn write_mbox(
    messages: &[(Vec<String>, Vec<String>)],
    eol: &str,
    variant: Variant,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut file = Vec::new();
    let mut expected = Vec::new();
    for (i, (h, b)) in messages.iter().enumerate() {
        file.extend_from_slice(
            format!(
                "From sender{i}@example.org Mon Jan  1 00:00:{:02} 2001{eol}",
                i % 60
            )
            .as_bytes(),
        );
        let msg = render(h, b, eol, variant);
        match variant {
            Variant::Mboxcl2 => {
                // The writer puts a Content-Length field on top and quotes nothing.
                let header_end = match h.is_empty() {
                    true => eol.len(),
                    false => msg
                        .windows(eol.len() * 2)
                        .position(|w| w == format!("{eol}{eol}").as_bytes())
                        .map_or(msg.len(), |p| p + eol.len() * 2),
                };
                let mut stored =
                    format!("Content-Length: {}{eol}", msg.len() - header_end).into_bytes();
                stored.extend_from_slice(&msg);
                file.extend_from_slice(&stored);
                expected.push(stored);
            }
            Variant::Mboxo | Variant::Mboxrd => {
                for l in msg.split_inclusive(|&b| b == b'\n') {
                    let gts = l.iter().take_while(|&&c| c == b'>').count();
                    let quote = match variant {
                        Variant::Mboxrd => l[gts..].starts_with(b"From "),
                        _ => l.starts_with(b"From "),
                    };
                    if quote {
                        file.push(b'>');
                    }
                    file.extend_from_slice(l);
                }
                expected.push(msg);
            }
        }
        file.extend_from_slice(eol.as_bytes());
    }
    (file, expected)
}

fn variant() -> impl Strategy<Value = Variant> {
    prop_oneof![
        Just(Variant::Mboxo),
        Just(Variant::Mboxrd),
        Just(Variant::Mboxcl2)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn written_messages_read_back_byte_for_byte(
        messages in prop::collection::vec(message(), 0..8),
        crlf in any::<bool>(),
        variant in variant(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let (file, expected) = write_mbox(&messages, eol, variant);
        let splitter = Splitter::new(&file).expect("an mbox");
        let mut at = splitter.prefix.end;
        let mut got = Vec::new();
        for span in splitter {
            prop_assert_eq!(span.from_line.start, at);
            at = span.trailer.end;
            got.push(unquote(&file[span.content.clone()]).into_owned());
        }
        prop_assert_eq!(at, file.len());
        prop_assert_eq!(got, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn every_message_lands_in_some_maildir(
        messages in prop::collection::vec(message(), 1..10),
        crlf in any::<bool>(),
        variant in variant(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let (file, expected) = write_mbox(&messages, eol, variant);
        let tmp = tempfile::tempdir().expect("tmp");
        let input = tmp.path().join("box.mbox");
        std::fs::write(&input, &file).expect("write");
        let out = tmp.path().join("out");
        common::Run::new(&["split", input.to_str().expect("utf8"), "--domain", "example.com", "--allow-unseen-domain", "--out", out.to_str().expect("utf8")]).ok();
        let delivered: Vec<Vec<u8>> = common::read_tree(&out).into_values().flatten().map(|d| d.bytes).collect();
        prop_assert_eq!(delivered.len(), expected.len());
        for m in &expected {
            prop_assert!(delivered.iter().any(|d| d.ends_with(m)), "a message is in no Maildir");
        }
    }
}

/// Splits `file` the way a compressed input is split while it is inflated: over growing
/// prefixes ending at `cuts`, then over the whole file.
fn split_in_steps(file: &[u8], cuts: &[usize]) -> Result<Vec<Span>, MboxError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (file.len() + 1)).collect();
    cuts.sort_unstable();
    let mut at = Resume::default();
    let mut spans = Vec::new();
    for cut in cuts {
        let mut s = Splitter::resume(&file[..cut], at, false)?;
        spans.extend(s.by_ref());
        at = s.state();
    }
    let mut s = Splitter::resume(file, at, true)?;
    spans.extend(s.by_ref());
    Ok(spans)
}

/// An mbox-like file with the traps that make a split depend on later bytes: Content-Length
/// fields that are right, too long or too short, missing blank lines, undated and
/// unquoted `From ` lines, CRLF and LF mixed, a cut-off end.
fn hostile_file() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        line().prop_map(|l| format!("{l}\n")),
        Just("From a@example.org Mon Jan  1 00:00:00 2001\n".to_string()),
        Just("From a@example.org Mon Jan  1 00:00:00 2001\r\n".to_string()),
        Just("From nobody\n".to_string()),
        // Dated only when cut short: "2001" is a year, "20011" is not.
        Just("From b@example.org Mon Jan  1 00:00:00 20011\n".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("Subject: s\n".to_string()),
        (0usize..60).prop_map(|n| format!("Content-Length: {n}\n")),
        Just("Content-Length: 99999999999999999999999\n".to_string()),
    ];
    (
        prop::collection::vec(piece, 0..40),
        any::<bool>(),
        0usize..8,
    )
        .prop_map(|(pieces, cut_end, cut)| {
            let mut f = b"From first@example.org Mon Jan  1 00:00:00 2001\n".to_vec();
            for p in pieces {
                f.extend_from_slice(p.as_bytes());
            }
            if cut_end {
                f.truncate(f.len().saturating_sub(cut));
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_split_over_growing_prefixes_is_the_whole_files_split(
        file in prop_oneof![
            hostile_file(),
            (prop::collection::vec(message(), 0..6), any::<bool>(), variant())
                .prop_map(|(m, crlf, v)| write_mbox(&m, if crlf { "\r\n" } else { "\n" }, v).0),
        ],
        blank in prop_oneof![Just(""), Just("\n\n"), Just("\r\n")],
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let file = [blank.as_bytes(), &file].concat();
        let whole: Result<Vec<Span>, MboxError> = Splitter::new(&file).map(Iterator::collect);
        prop_assert_eq!(split_in_steps(&file, &cuts), whole);
    }
}

#[test]
fn a_file_that_is_not_an_mbox_is_refused_in_steps_too() {
    let file = b"\n\nFrom: someone\n\nbody\n";
    for cut in 0..file.len() {
        assert_eq!(
            split_in_steps(file, &[cut]),
            Err(MboxError::NotMbox { offset: 2 }),
            "cut at {cut}"
        );
    }
}

/// The generated mailboxes the accuracy checks run on split into exactly the copies the
/// generator says it wrote, in every ISP style.
#[test]
fn generated_mailboxes_split_into_their_copies() {
    for style in synth::Style::ALL {
        let spec = synth::Spec {
            style,
            messages: 200,
            seed: 7,
            per_recipient_copies: true,
            body_bytes: 300,
        };
        let mut mbox = Vec::new();
        let truth = synth::generate(&spec, &mut mbox).expect("generate");
        let spans = Splitter::new(&mbox).expect("mbox").count();
        assert_eq!(spans, truth.len(), "{style:?}");
    }
}
