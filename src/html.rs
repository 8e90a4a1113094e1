//! Stage 5, for people (`--html`): one self-contained page the admin can hand to the
//! office: totals and the conservation check, a bar per user by confidence, the evidence
//! that decided, what the profile learned, the messages to review, and the command line.
//! No scripts, no network: the page is plain HTML with inline CSS.

use std::fmt::Write as _;

use crate::decide::Confidence;
use crate::directory::Directory;
use crate::mbox::asctime;
use crate::profile::{Affix, Profile};
use crate::report::{Audit, Summary, day};
use crate::sanitize::html;

const COLORS: [&str; 5] = ["#2e7d32", "#1565c0", "#ef6c00", "#9e9e9e", "#6a1b9a"];

/// Renders the audit page.
pub fn render(
    summary: &Summary,
    audit: &Audit,
    profile: &Profile,
    dir: &Directory,
    command: &str,
) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>popsplit audit</title><style>{CSS}</style></head><body>\n<h1>popsplit audit</h1>\n"
    );
    // Totals and conservation.
    let ok = summary.conserved();
    let _ = write!(
        h,
        "<section id=\"totals\"><h2>Totals</h2><p class=\"{}\">messages read: <b>{}</b> = {} delivered to users + {} unassigned + {} duplicates set aside — {}</p>\
         <p>{} copies in the output ({} written by this run, {} already there from an earlier run).</p>",
        if ok { "ok" } else { "bad" },
        summary.read,
        summary.delivered,
        summary.unassigned,
        summary.duplicates,
        if ok {
            "every message is accounted for"
        } else {
            "MISMATCH: some message is unaccounted for"
        },
        summary.copies,
        summary.written(),
        summary.previously
    );
    if summary.uncertain_splits > 0 {
        let _ = write!(
            h,
            "<p class=\"bad\">{} messages were split from their neighbours with doubt (a damaged mbox): see <code>split_note</code> in the report.</p>",
            summary.uncertain_splits
        );
    }
    h.push_str("</section>\n");
    // A bar per folder.
    h.push_str(
        "<section id=\"users\"><h2>Messages per user, by confidence</h2><p class=\"legend\">",
    );
    for (c, color) in Confidence::ALL.iter().zip(COLORS) {
        let _ = write!(
            h,
            "<span><i style=\"background:{color}\"></i>{}</span>",
            c.name()
        );
    }
    h.push_str("</p><table class=\"bars\">");
    let most = summary
        .per_user
        .values()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    for (user, counts) in &summary.per_user {
        let total: u64 = counts.iter().sum();
        let _ = write!(
            h,
            "<tr><th>{}</th><td><div class=\"bar\" style=\"width:{:.1}%\">",
            html(user),
            100.0 * total as f64 / most as f64
        );
        for ((c, n), color) in Confidence::ALL.iter().zip(counts).zip(COLORS) {
            if *n > 0 {
                let _ = write!(
                    h,
                    "<span style=\"flex:{n};background:{color}\" title=\"{}: {n}\"></span>",
                    c.name()
                );
            }
        }
        let f = summary.figures.get(user).copied().unwrap_or_default();
        let _ = write!(
            h,
            "</div></td><td class=\"n\">{total}</td><td class=\"detail\">{}</td><td class=\"detail figures\">{} bytes, {} to {}</td></tr>",
            counts
                .iter()
                .zip(Confidence::ALL)
                .filter(|(n, _)| **n > 0)
                .map(|(n, c)| format!("{} {n}", c.name()))
                .collect::<Vec<_>>()
                .join(" · "),
            f.bytes,
            day(f.first),
            day(f.last)
        );
    }
    h.push_str("</table></section>\n");
    // Evidence kinds.
    h.push_str("<section id=\"evidence\"><h2>What decided</h2><table><tr><th>evidence</th><th>messages</th></tr>");
    let mut kinds: Vec<(&String, &u64)> = audit.evidence_kinds.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in kinds {
        let _ = write!(h, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", html(k));
    }
    h.push_str("</table></section>\n");
    // Profile.
    h.push_str("<section id=\"profile\"><h2>What popsplit learned about this mailbox</h2><ul>");
    let envelope: Vec<String> = profile
        .envelope_headers
        .iter()
        .map(|s| format!("{} ({} messages)", s.name, s.messages))
        .collect();
    let _ = write!(
        h,
        "<li>Envelope fields: {}</li>",
        html(&or_none(envelope.join(", ")))
    );
    let boxes: Vec<&str> = profile.boxes.iter().map(|b| b.name.as_str()).collect();
    let _ = write!(
        h,
        "<li>The shared box itself (never a recipient): {}</li>",
        html(&or_none(boxes.join(", ")))
    );
    let rewrites: Vec<String> = profile
        .rewrites
        .iter()
        .map(|r| {
            let what = match &r.affix {
                Affix::Prefix(p) => format!("prefix {p}"),
                Affix::Suffix(s) => format!("suffix {s}"),
            };
            format!(
                "{what} at {} → @{}",
                r.domain.as_deref().unwrap_or("any domain"),
                r.target
            )
        })
        .collect();
    let _ = write!(
        h,
        "<li>Envelope address rewrites: {}</li>",
        html(&or_none(rewrites.join("; ")))
    );
    let relays = if profile.relays.is_empty() {
        "none learned: the top 3 Received fields are trusted".to_string()
    } else {
        profile.relays.join(", ")
    };
    let _ = write!(
        h,
        "<li>Trusted relays ({}): {}</li>",
        if profile.relays_given {
            "given"
        } else {
            "learned"
        },
        html(&relays)
    );
    let strangers: Vec<&str> = profile
        .local_addresses
        .iter()
        .filter(|l| !l.user)
        .map(|l| l.address.as_str())
        .take(30)
        .collect();
    if dir.is_closed() {
        let _ = write!(
            h,
            "<li>Local addresses not in the directory: {}</li>",
            html(&or_none(strangers.join(", ")))
        );
    }
    h.push_str("</ul></section>\n");
    // Messages to review.
    let _ = write!(
        h,
        "<section id=\"review\"><h2>To review: unassigned and low-confidence messages ({})</h2>",
        audit.review_total
    );
    if audit.review_total > audit.review.len() as u64 {
        let _ = write!(
            h,
            "<p>The first {} are listed; the report (<code>--report</code>) has them all.</p>",
            audit.review.len()
        );
    }
    h.push_str("<table class=\"review\"><tr><th>date</th><th>from</th><th>subject</th><th>went to</th><th>why</th><th>where</th></tr>");
    for r in &audit.review {
        let date = r.arrival.map(asctime).unwrap_or_else(|| "?".into());
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} #{}</td></tr>",
            r.confidence.name(),
            html(&date),
            html(&r.from),
            html(&r.subject),
            html(&r.folders.join(", ")),
            html(&r.why),
            html(&r.source),
            r.index
        );
    }
    h.push_str("</table></section>\n");
    let _ = write!(
        h,
        "<section id=\"command\"><h2>Command line</h2><pre>{}</pre></section>\n</body></html>\n",
        html(command)
    );
    h
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse}td,th{padding:3px 8px;text-align:left;vertical-align:top}\
.ok{color:#2e7d32}.bad{color:#c62828;font-weight:bold}.n{text-align:right;font-variant-numeric:tabular-nums}\
table.bars{width:100%}table.bars th{width:12em;font-weight:normal}table.bars td:nth-child(2){width:60%}\
.bar{display:flex;height:1.1em;min-width:2px}.bar span{display:block}.detail{color:#666;font-size:.9em}\
.legend span{margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-1px}\
table.review{font-size:.9em;width:100%}table.review tr:nth-child(even){background:#f5f5f5}table.review tr.none td:nth-child(4){color:#757575}\
pre{background:#f5f5f5;padding:.8em;white-space:pre-wrap;word-break:break-all}";
