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

/// Maps an address to its canonical local form, or `None` if it is not at a local domain.
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
}
