//! Stage 5, for people (`--html`): one self-contained page the admin can hand to the
//! office: totals and the conservation check, a bar per user by confidence, the evidence
//! that decided, what the profile learned, the messages to review, and the command line.
//! No network (a Content-Security-Policy forbids it): inline CSS, and one inline script
//! that makes the review list a tool: filters, pages, a choice of users per message, and
//! "Download corrections", the CSV `--corrections` reads.

use std::fmt::Write as _;

use crate::decide::Confidence;
use crate::decide::corrections::Corrections;
use crate::decide::directory::Directory;
use crate::decide::profile::{Affix, Profile};
use crate::output::report::{Audit, ReviewRow, Summary, day};
use crate::text::html;

const COLORS: [&str; 5] = ["#2e7d32", "#1565c0", "#ef6c00", "#9e9e9e", "#6a1b9a"];

/// Renders the audit page; `corrections` are the ones this run applied, which the page
/// writes out again with the new ones.
pub fn render(
    summary: &Summary,
    audit: &Audit,
    profile: &Profile,
    dir: &Directory,
    command: &str,
    corrections: Option<&Corrections>,
) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\
         <title>popsplit audit</title><style>{CSS}</style></head><body>\n<h1>popsplit audit</h1>\n"
    );
    // Totals and conservation.
    let ok = summary.conserved();
    let _ = write!(
        h,
        "<section id=\"totals\"><h2>Totals</h2><p class=\"{}\">messages read: <b>{}</b> = {} delivered to users + {} unassigned + {} set aside — {}</p>\
         <p>{} in the output ({} written by this run, {} already there from an earlier run).</p>",
        if ok { "ok" } else { "bad" },
        summary.read,
        summary.delivered,
        summary.unassigned,
        crate::text::count(summary.duplicates, "duplicate", "duplicates"),
        if ok {
            "every message is accounted for"
        } else {
            "MISMATCH: some message is unaccounted for"
        },
        crate::text::count(summary.copies, "copy", "copies"),
        summary.written(),
        summary.previously
    );
    if summary.uncertain_splits > 0 {
        let _ = write!(
            h,
            "<p class=\"bad\">{} split from {} neighbours with doubt (a damaged mbox): see <code>split_note</code> in the report.</p>",
            crate::text::count(summary.uncertain_splits, "message was", "messages were"),
            if summary.uncertain_splits == 1 {
                "its"
            } else {
                "their"
            }
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
            "</div></td><td class=\"n\">{total}</td><td class=\"detail\">{}<br><span class=\"figures\">{} bytes, {} to {}</span></td></tr>",
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
        .map(|s| {
            format!(
                "{} ({})",
                s.name,
                crate::text::count(s.messages, "message", "messages")
            )
        })
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
    // Messages to review: the rows as data, drawn a page at a time by the script.
    let _ = write!(
        h,
        "<section id=\"review\"><h2>To review: unassigned, low- and medium-confidence messages ({})</h2>",
        audit.review_total
    );
    if audit.review_total > audit.review.len() as u64 {
        let _ = write!(
            h,
            "<p>The first {} are listed; the report (<code>--report</code>) has them all.</p>",
            audit.review.len()
        );
    }
    let users: Vec<String> = match dir.listed_users() {
        Some(u) => u.into_iter().collect(),
        None => summary
            .per_user
            .keys()
            .filter(|u| !u.starts_with('_'))
            .cloned()
            .collect(),
    };
    let data = serde_json::json!({
        "users": users,
        "rows": audit.review,
        "earlier": earlier(corrections, &audit.review),
    });
    h.push_str(REVIEW_CONTROLS);
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"review-data\">{}</script>\n<script>{REVIEW_SCRIPT}</script>\n\
         <noscript><p>The review list needs JavaScript; the report (<code>--report</code>) lists the same messages.</p></noscript></section>\n",
        inert_json(&data.to_string())
    );
    let _ = write!(
        h,
        "<section id=\"command\"><h2>Command line</h2><pre>{}</pre></section>\n</body></html>\n",
        html(command)
    );
    h
}

/// The corrections applied, each under the key of the review row it names (so that the
/// page shows it there and writes one line for the message), else as the file wrote it.
fn earlier(corrections: Option<&Corrections>, rows: &[ReviewRow]) -> Vec<(String, String)> {
    let bare = |k: &str| {
        k.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    };
    corrections
        .map(Corrections::entries)
        .unwrap_or_default()
        .into_iter()
        .map(|(named, users)| {
            let row = rows.iter().find(|r| {
                format!("{}:{}", r.source, r.index) == named || bare(&r.key) == bare(&named)
            });
            match row {
                Some(r) => (r.key.clone(), users),
                None => (named, users),
            }
        })
        .collect()
}

/// JSON that stays data inside a `<script>` element: `<`, `>`, `&` and `/` (which could
/// close the element or start a comment) are written as escapes, which only occur inside
/// strings, so the value is unchanged.
fn inert_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '/' => out.push_str("\\/"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Lines of a message's text the review list shows.
const PREVIEW_LINES: usize = 4;
/// Longest preview, in characters.
const PREVIEW_CHARS: usize = 400;

/// The first lines of a message's text: its first `text/plain` part decoded (quoted-
/// printable, base64, charset), else the raw body; each line made safe.
pub fn preview(content: &[u8], body_start: usize) -> String {
    let text = mailparse::parse_mail(content)
        .ok()
        .and_then(|m| first_text(&m))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(content.get(body_start..).unwrap_or_default()).into_owned()
        });
    let mut out = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(PREVIEW_LINES)
    {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&crate::text::one_line(line));
    }
    out.chars().take(PREVIEW_CHARS).collect()
}

/// The decoded body of the first `text/plain` part (or of a message with no parts).
fn first_text(m: &mailparse::ParsedMail<'_>) -> Option<String> {
    if m.subparts.is_empty() {
        let plain = m.ctype.mimetype.eq_ignore_ascii_case("text/plain");
        return plain.then(|| m.get_body().ok()).flatten();
    }
    m.subparts.iter().find_map(first_text)
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
table.review{font-size:.9em;width:100%}table.review tr:nth-child(even){background:#f5f5f5}table.review td.body{white-space:pre-wrap;color:#555;max-width:22em}\
.controls label{margin-right:1em}.figures{white-space:nowrap}.pager{margin:.5em 0}.subject{font-weight:600}\
pre{background:#f5f5f5;padding:.8em;white-space:pre-wrap;word-break:break-all}";

/// The review list's controls and table, filled by [`REVIEW_SCRIPT`].
const REVIEW_CONTROLS: &str = "<div class=\"controls\"><label>folder <select id=\"f-folder\"><option value=\"\">all</option></select></label> \
<label>confidence <select id=\"f-conf\"><option value=\"\">all</option><option>none</option><option>low</option><option>medium</option><option>reviewed</option></select></label> \
<label>text <input id=\"f-text\" type=\"search\" placeholder=\"from, subject, address, body\"></label> \
<button id=\"download\" type=\"button\">Download corrections</button> <span id=\"chosen\"></span></div>\
<p class=\"pager\"><button id=\"prev\" type=\"button\">&lt; previous</button> <span id=\"where\"></span> <button id=\"next\" type=\"button\">next &gt;</button></p>\
<table class=\"review\"><thead><tr><th>date</th><th>from / subject</th><th>went to</th><th>evidence</th><th>text</th><th>goes to</th></tr></thead><tbody id=\"rows\"></tbody></table>";

/// The review list: every string from mail reaches the page through `textContent`, never
/// as markup; 100 rows a page, so that 100,000 rows stay quick to filter and draw.
const REVIEW_SCRIPT: &str = r#"(function(){
var D=JSON.parse(document.getElementById('review-data').textContent);
var rows=D.rows,chosen=new Map(),size=100,page=0,shown=rows;
D.earlier.forEach(function(e){chosen.set(e[0],e[1]);});
var byId=function(i){return document.getElementById(i);};
var folders={};rows.forEach(function(r){r.folders.forEach(function(f){folders[f]=1;});
 r.hay=[r.from,r.subject,r.why,r.evidence.join(' '),r.list||'',r.body,r.key].join(' ').toLowerCase();});
Object.keys(folders).sort().forEach(function(f){var o=document.createElement('option');o.textContent=f;byId('f-folder').appendChild(o);});
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined)e.textContent=text;if(cls)e.className=cls;return e;}
function day(t){return t==null?'?':new Date(t*1000).toISOString().slice(0,16).replace('T',' ');}
function count(){byId('chosen').textContent=chosen.size+' corrections';}
function choice(r){var s=el('select');s.setAttribute('aria-label','goes to');
 var opts=[['','(no correction)'],['_unassigned','leave unassigned']].concat(D.users.map(function(u){return [u,u];}));
 var now=chosen.get(r.key);if(now&&!opts.some(function(o){return o[0]===now;}))opts.push([now,now]);
 opts.forEach(function(o){var e=el('option',o[1]);e.value=o[0];s.appendChild(e);});
 s.value=now||'';
 s.addEventListener('change',function(){if(s.value)chosen.set(r.key,s.value);else chosen.delete(r.key);count();});
 return s;}
function draw(){var body=byId('rows');body.textContent='';
 var last=Math.max(0,Math.ceil(shown.length/size)-1);page=Math.min(page,last);
 shown.slice(page*size,page*size+size).forEach(function(r){var tr=el('tr',undefined,r.confidence);tr.setAttribute('data-key',r.key);
  tr.appendChild(el('td',day(r.arrival)));
  var fs=el('td');fs.appendChild(el('div',r.from));fs.appendChild(el('div',r.subject,'subject'));tr.appendChild(fs);
  var to=el('td',r.folders.join(', '));to.appendChild(el('div',r.confidence+': '+r.why,'detail'));to.appendChild(el('div',r.source+' #'+r.index,'detail'));tr.appendChild(to);
  var ev=el('td');r.evidence.forEach(function(x){ev.appendChild(el('div',x));});if(r.list)ev.appendChild(el('div','List-Id: '+r.list));tr.appendChild(ev);
  tr.appendChild(el('td',r.body,'body'));
  var c=el('td');c.appendChild(choice(r));tr.appendChild(c);body.appendChild(tr);});
 byId('where').textContent=shown.length?('rows '+(page*size+1)+'–'+Math.min(shown.length,page*size+size)+' of '+shown.length):'no rows';}
function filter(){var f=byId('f-folder').value,c=byId('f-conf').value,q=byId('f-text').value.toLowerCase();
 shown=rows.filter(function(r){return (!f||r.folders.indexOf(f)>=0)&&(!c||r.confidence===c)&&(!q||r.hay.indexOf(q)>=0);});page=0;draw();}
['f-folder','f-conf'].forEach(function(i){byId(i).addEventListener('change',filter);});
byId('f-text').addEventListener('input',filter);
byId('prev').addEventListener('click',function(){if(page>0){page--;draw();}});
byId('next').addEventListener('click',function(){page++;draw();});
function cell(v){return /[",\r\n]/.test(v)?'"'+v.replace(/"/g,'""')+'"':v;}
byId('download').addEventListener('click',function(){var csv='message,users\n';
 chosen.forEach(function(u,k){csv+=cell(k)+','+cell(u)+'\n';});
 var a=document.createElement('a');a.download='corrections.csv';a.setAttribute('href',URL.createObjectURL(new Blob([csv],{type:'text/csv'})));
 document.body.appendChild(a);a.click();a.remove();});
count();draw();})();"#;
