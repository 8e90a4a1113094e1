//! Stage 2 helper: addresses out of hostile header fields, and their canonical local form.

use mailparse::{MailAddr, MailHeader, addrparse_header};

/// The addresses of an address-list field, and whether they had to be salvaged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AddressList {
    /// Bare `local@domain` addresses, in field order.
    pub addrs: Vec<String>,
    /// True when mailparse rejected the field and the addresses were picked out one by one.
    pub salvaged: bool,
}

/// Parses an address-list field with mailparse (display names, comments, groups, RFC 2047);
/// when mailparse rejects the whole field, salvages each well-formed entry on its own.
pub fn parse_list(header: &MailHeader<'_>) -> AddressList {
    if let Ok(list) = addrparse_header(header) {
        let mut addrs = Vec::new();
        for a in list.iter() {
            match a {
                MailAddr::Single(s) => addrs.push(s.addr.trim().to_string()),
                MailAddr::Group(g) => {
                    addrs.extend(g.addrs.iter().map(|s| s.addr.trim().to_string()))
                }
            }
        }
        // mailparse accepts `g: a@x;, c@x` but returns ", c@x": drop what is not an address.
        let clean: Vec<String> = addrs.iter().filter_map(|a| bare_address(a)).collect();
        if clean.len() == addrs.len() {
            return AddressList {
                addrs: clean,
                salvaged: false,
            };
        }
    }
    AddressList {
        addrs: split_entries(&header.get_value())
            .iter()
            .filter_map(|e| salvage_entry(e))
            .collect(),
        salvaged: true,
    }
}

/// Splits a list on commas that are outside quotes, angle brackets and comments.
fn split_entries(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quoted, mut angle, mut escaped) =
        (Vec::new(), 0, 0i32, false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = (depth - 1).max(0),
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            ',' | ';' if !quoted && depth == 0 && !angle => {
                out.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The address of one list entry: the last `<...>` if any, else a bare token with `@`.
fn salvage_entry(entry: &str) -> Option<String> {
    if let (Some(open), Some(close)) = (entry.rfind('<'), entry.rfind('>'))
        && open < close
    {
        return bare_address(&entry[open + 1..close]);
    }
    entry
        .split(|c: char| c.is_whitespace() || c == ':')
        .find_map(bare_address)
}

/// Accepts `local@domain` with nothing around it that an address cannot hold.
pub fn bare_address(raw: &str) -> Option<String> {
    let a = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = a.rsplit_once('@')?;
    let ok_local = !local.is_empty()
        && local.len() <= 256
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;".contains(c));
    let ok_domain = !domain.is_empty()
        && domain.len() <= 255
        && domain.chars().all(|c| {
            c.is_alphanumeric() || c == '-' || c == '.' || c == '[' || c == ']' || c == ':'
        });
    (ok_local && ok_domain).then(|| a.to_string())
}

/// The forms under which an address may be known, most literal first: as written (lower
/// case), then after each rewrite that a sender or an ISP applies, each step on the result
/// of the one before: the ISP's affix (`isp`, already rewritten by the caller), the
/// qmail/Courier `domain-` prefix, BATV (`prvs=1a2b3c4d5=judy@` is judy), SRS
/// (`SRS0=HH=TT=example.com=judy@fwd.example` is `judy@example.com`) and a `+tag`. A directory looks
/// each form up in this order, so an address it names exactly (`lists+a@`) is never
/// rewritten into another (`lists@`).
pub fn forms(addr: &str, isp: Option<String>, local_domains: &[String]) -> Vec<String> {
    let lower = |a: &str| match a.rsplit_once('@') {
        Some((l, d)) => format!(
            "{}@{}",
            l.trim_matches('"').to_lowercase(),
            d.trim_end_matches('.').to_ascii_lowercase()
        ),
        None => a.to_lowercase(),
    };
    let mut out = vec![lower(addr)];
    // Each step rewrites the latest form; a step that changes nothing adds nothing.
    // The latest form is borrowed, not cloned: five clones a call were a good part of the
    // profile learning's allocations.
    let step = |out: &mut Vec<String>, f: &dyn Fn(&str) -> Option<String>| {
        let last = out.last().map_or("", String::as_str);
        if let Some(next) = f(last).map(|n| lower(&n))
            && next != last
        {
            out.push(next);
        }
    };
    step(&mut out, &|_| isp.clone());
    // The delivering server's qmail prefix is the outermost layer; BATV and SRS are the
    // sender's, inside it.
    step(&mut out, &|a| {
        let (l, d) = a.rsplit_once('@')?;
        local_domains.iter().find_map(|ld| {
            l.strip_prefix(ld.as_str())
                .and_then(|r| r.strip_prefix('-'))
                .filter(|r| !r.is_empty())
                .map(|r| format!("{r}@{d}"))
        })
    });
    step(&mut out, &strip_batv);
    step(&mut out, &decode_srs);
    step(&mut out, &|a| {
        let (l, d) = a.rsplit_once('@')?;
        l.find('+')
            .filter(|&p| p > 0)
            .map(|p| format!("{}@{d}", &l[..p]))
    });
    out
}

/// `prvs=TAG=user@d` (and `msprvs1=`, `btv1==TAG==`) → `user@d`: bounce-address tagging
/// signs return paths, and auto-replies and bounces come back to the signed form.
fn strip_batv(addr: &str) -> Option<String> {
    let (local, domain) = addr.rsplit_once('@')?;
    let user = if let Some(rest) = local.strip_prefix("btv1==") {
        rest.split_once("==")?.1
    } else {
        let rest = local
            .strip_prefix("prvs=")
            .or_else(|| local.strip_prefix("msprvs1="))?;
        rest.split_once('=')?.1
    };
    (!user.is_empty()).then(|| format!("{user}@{domain}"))
}

/// The original address inside an SRS-rewritten one (Sender Rewriting Scheme, used by
/// forwarders): `SRS0=HHHH=TT=orig.example=user@fwd` and `SRS1=HHH=fwd1==HHHH=TT=orig=user@fwd2`.
fn decode_srs(addr: &str) -> Option<String> {
    let (local, _) = addr.rsplit_once('@')?;
    let lower = local.to_ascii_lowercase();
    let rest = if lower.starts_with("srs0=") {
        &local[5..]
    } else if lower.starts_with("srs1=") {
        local.split_once("==")?.1
    } else {
        return None;
    };
    let mut parts = rest.splitn(4, '=');
    let (_hash, _time) = (parts.next()?, parts.next()?);
    let (domain, user) = (parts.next()?, parts.next()?);
    (!domain.is_empty() && !user.is_empty()).then(|| format!("{user}@{domain}"))
}

/// An address at one of the office's domains, in the form the directory is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalAddress {
    /// Lower-case local part with any `+tag` and qmail-style `domain-` prefix removed.
    pub local: String,
    /// Lower-case domain, one of the local domains.
    pub domain: String,
}

impl LocalAddress {
    /// `local@domain`.
    pub fn to_address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Maps an address to its canonical local form (the last of [`forms`]), or `None` if it is
/// not at a local domain.
///
/// Local parts are compared case-insensitively: no mail server an office used treats
/// `Alice` and `alice` as two people, and merging them cannot leak mail between users.
pub fn localize(addr: &str, local_domains: &[String]) -> Option<LocalAddress> {
    let (local, domain) = addr.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !local_domains.contains(&domain) {
        return None;
    }
    let mut local = local.trim_matches('"').to_lowercase();
    // qmail and Courier virtual domains deliver to `example.com-alice@example.com`.
    for d in local_domains {
        if let Some(rest) = local
            .strip_prefix(d.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .filter(|r| !r.is_empty())
        {
            local = rest.to_string();
            break;
        }
    }
    if let Some(plus) = local.find('+').filter(|&p| p > 0) {
        local.truncate(plus);
    }
    (!local.is_empty()).then_some(LocalAddress { local, domain })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str) -> AddressList {
        let (h, _) = mailparse::parse_header(raw.as_bytes()).expect("header");
        parse_list(&h)
    }

    #[test]
    fn real_parser_handles_names_groups_and_encoded_words() {
        let l = list(
            "To: \"Smith, John\" <John@Example.com>, team: a@x, b@x;, =?utf-8?Q?J=C3=BCrgen?= <j@x>",
        );
        assert_eq!(l.addrs, vec!["John@Example.com", "a@x", "b@x", "j@x"]);
        assert!(!l.salvaged);
        let enc = list("To: =?utf-8?B?U21pdGgsIEpvaG4=?= <john@x>");
        assert_eq!(enc.addrs, vec!["john@x"]);
    }

    #[test]
    fn malformed_field_is_salvaged_not_dropped() {
        let l = list("To: Foo <foo@x>, postmaster, Smith, John <john@x>");
        assert_eq!(l.addrs, vec!["foo@x", "john@x"]);
        assert!(l.salvaged);
    }

    #[test]
    fn group_quirk_is_not_taken_as_an_address() {
        let l = list("To: g: a@x;, c@x");
        assert!(l.addrs.contains(&"c@x".to_string()));
        assert!(l.addrs.iter().all(|a| !a.starts_with(',')));
    }

    #[test]
    fn localize_folds_case_tags_and_qmail_prefix() {
        let d = vec!["example.com".to_string()];
        let a = localize("Alice+News@EXAMPLE.com.", &d).expect("local");
        assert_eq!(a.to_address(), "alice@example.com");
        assert_eq!(
            localize("example.com-bob@example.com", &d)
                .expect("q")
                .local,
            "bob"
        );
        assert_eq!(
            localize("+x@example.com", &d).expect("plus first").local,
            "+x"
        );
        assert!(localize("alice@example.org", &d).is_none());
        assert!(localize("alice@sub.example.com", &d).is_none());
    }

    #[test]
    fn forms_go_from_literal_to_rewritten() {
        let d = vec!["example.com".to_string()];
        assert_eq!(
            forms("Lists+A@Example.COM.", None, &d),
            vec!["lists+a@example.com", "lists@example.com"]
        );
        assert_eq!(
            forms("prvs=1a2b3c4d5=Judy@example.com", None, &d),
            vec!["prvs=1a2b3c4d5=judy@example.com", "judy@example.com"]
        );
        assert_eq!(
            forms("btv1==5a1==judy@example.com", None, &d)
                .last()
                .map(String::as_str),
            Some("judy@example.com")
        );
        assert_eq!(
            forms("SRS0=HHHH=TT=example.com=bob@fwd.example.net", None, &d),
            vec![
                "srs0=hhhh=tt=example.com=bob@fwd.example.net",
                "bob@example.com"
            ]
        );
        assert_eq!(
            forms(
                "SRS1=x=fwd1.example==HHHH=TT=example.com=bob+x@fwd2.example",
                None,
                &d
            )
            .last()
            .map(String::as_str),
            Some("bob@example.com")
        );
        assert_eq!(
            forms(
                "acmepop-carol@isp.net",
                Some("carol@example.com".into()),
                &d
            ),
            vec!["acmepop-carol@isp.net", "carol@example.com"]
        );
        assert_eq!(
            forms("example.com-dave+x@example.com", None, &d),
            vec![
                "example.com-dave+x@example.com",
                "dave+x@example.com",
                "dave@example.com"
            ]
        );
        assert_eq!(
            forms("srs0=broken@x.org", None, &d),
            vec!["srs0=broken@x.org"]
        );
    }
}
