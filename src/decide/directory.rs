//! Who the office's users are: the `--domain` list and the optional `address,user` CSV.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use crate::evidence::address::{LocalAddress, forms, localize, rsplit_ascii};
use crate::text::{folder_name, one_line};

/// Why a directory CSV could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file could not be read or is not CSV.
    #[error("{path}: {source}")]
    Csv {
        /// The CSV file.
        path: String,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// A row is unusable; `line` is 1-based and counts the header line.
    #[error("{path}: line {line}: {why}")]
    Row {
        /// The CSV file.
        path: String,
        /// The line number.
        line: u64,
        /// What is wrong with it.
        why: String,
    },
}

/// The office: its domains and, when a directory was given, its users.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Lower-case local domains.
    pub domains: Vec<String>,
    /// Address as written in the CSV (lower case) → users; `None` means "no directory:
    /// every local address is a user".
    entries: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Without a directory: folder → address, for the folders whose name is not the
    /// address's local part (see [`folder_name`]), so that the summary can say whose they
    /// are. Filled by worker threads as addresses are met; rare, so a lock is cheap.
    renamed: Arc<Mutex<BTreeMap<String, String>>>,
    /// What [`Directory::resolve`] made of the local addresses met so far, by address as
    /// written and ISP form: the same few recur on thousands of messages, and building
    /// their rewritten forms each time was 224M of 3,285M instructions on real list mail
    /// (callgrind). Bounded by [`MAX_RESOLVED`], so a box of spam to invented addresses
    /// cannot grow it.
    resolved: Arc<RwLock<ResolvedCache>>,
}

/// Address as written → (ISP form, what it resolved to).
/// Shared, so that a hit costs a reference count rather than copies of every name.
type ResolvedCache = crate::compact::Map<String, Vec<(Option<String>, Arc<Resolved>)>>;

/// Addresses kept in the cache of resolutions: far more than an office's users and lists.
const MAX_RESOLVED: usize = 4096;

/// What an address found in mail is to the office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Its canonical local form (rewrites applied, `+tag` removed).
    pub canonical: LocalAddress,
    /// The users it delivers to; empty when it is no user.
    pub users: Vec<String>,
}

impl Directory {
    /// An office without a directory: every local-domain address is a user.
    pub fn open(domains: &[String]) -> Self {
        Directory {
            domains: domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            entries: None,
            renamed: Arc::default(),
            resolved: Arc::default(),
        }
    }

    /// An office whose users are exactly those of an `address,user` CSV.
    ///
    /// Also as Excel saves it: a byte-order mark, CRLF line ends, and `;` between the fields
    /// (Excel's separator where the decimal mark is a comma).
    pub fn from_csv(domains: &[String], path: &Path) -> Result<Self, DirectoryError> {
        let name = path.display().to_string();
        let csv_err = |source| DirectoryError::Csv {
            path: name.clone(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| csv_err(e.into()))?;
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let delimiter = if first.contains(&b';') && !first.contains(&b',') {
            b';'
        } else {
            b','
        };
        let expected = format!("address{}user", delimiter as char);
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(text);
        let headers = reader.headers().map_err(csv_err)?.clone();
        if headers.len() != 2
            || !headers[0].eq_ignore_ascii_case("address")
            || !headers[1].eq_ignore_ascii_case("user")
        {
            let found = String::from_utf8_lossy(first);
            return Err(DirectoryError::Row {
                path: name,
                line: 1,
                why: format!(
                    "found `{}`, expected the header line `{expected}`",
                    one_line(found.trim_end_matches('\r'))
                ),
            });
        }
        let mut dir = Directory::open(domains);
        let mut entries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map_or(0, |p| p.line());
            let bad = |why: String| DirectoryError::Row {
                path: name.clone(),
                line,
                why,
            };
            if record.len() != 2 {
                let found: Vec<&str> = record.iter().collect();
                return Err(bad(format!(
                    "found {} `{}`, expected two: `{expected}`",
                    crate::text::count(record.len() as u64, "field", "fields"),
                    one_line(&found.join(&(delimiter as char).to_string()))
                )));
            }
            dir.add_row(&mut entries, &record[0], &record[1], &expected)
                .map_err(bad)?;
        }
        dir.entries = Some(entries);
        Ok(dir)
    }

    /// An office whose users are exactly `rows` of (address, user), checked as the CSV's
    /// lines are; an error names the row by its 1-based number as `line`, in `rows`.
    pub fn from_rows(rows: &[(&str, &str)], domains: &[String]) -> Result<Self, DirectoryError> {
        let mut dir = Directory::open(domains);
        let mut entries = BTreeMap::new();
        for (i, (addr, user)) in rows.iter().enumerate() {
            dir.add_row(&mut entries, addr, user, "address,user")
                .map_err(|why| DirectoryError::Row {
                    path: "rows".to_string(),
                    line: i as u64 + 1,
                    why,
                })?;
        }
        dir.entries = Some(entries);
        Ok(dir)
    }

    /// Checks one (address, user) row and adds it to `entries`; why it is unusable if not.
    /// `expected` is the header line, as the messages show the form of a row.
    fn add_row(
        &self,
        entries: &mut BTreeMap<String, BTreeSet<String>>,
        addr: &str,
        user: &str,
        expected: &str,
    ) -> Result<(), String> {
        if addr.is_empty() {
            return Err(format!(
                "the address is empty (user `{}`); each line is `{expected}`",
                one_line(user)
            ));
        }
        if user.is_empty() {
            return Err(format!(
                "the user is empty for `{}`; write the user's folder name after the address",
                one_line(addr)
            ));
        }
        if localize(addr, &self.domains).is_none() {
            return Err(format!(
                "`{}` is not an address at one of the --domain domains",
                one_line(addr)
            ));
        }
        // Kept as written: `lists+a@` and `lists+b@` may be two people.
        let exact = forms(addr, None, &self.domains).swap_remove(0);
        let safe = folder_name(user);
        if safe != user {
            return Err(format!(
                "user `{}` is not a safe folder name; use `{safe}`",
                one_line(user)
            ));
        }
        entries.entry(exact).or_default().insert(safe);
        Ok(())
    }

    /// The address of each of `folders` whose name is not its address's local part.
    pub fn renamed<'a>(&self, folders: impl Iterator<Item = &'a String>) -> Vec<(String, String)> {
        let Ok(renamed) = self.renamed.lock() else {
            return Vec::new();
        };
        folders
            .filter_map(|f| renamed.get(f).map(|a| (f.clone(), a.clone())))
            .collect()
    }

    /// Every user of the directory, or `None` without one (then any address may be a user).
    pub fn listed_users(&self) -> Option<BTreeSet<String>> {
        self.entries
            .as_ref()
            .map(|e| e.values().flatten().cloned().collect())
    }

    /// The address a user's new mailbox gets: of the directory's addresses that are the
    /// user's alone (not a list's), the one whose local part is the user's name, else the
    /// first; without one, the user's name at the first domain.
    pub fn address_of(&self, user: &str) -> String {
        let own: Vec<&String> = self
            .entries
            .iter()
            .flatten()
            .filter(|(_, users)| users.len() == 1 && users.contains(user))
            .map(|(a, _)| a)
            .collect();
        let named = own
            .iter()
            .find(|a| a.split('@').next() == Some(user))
            .or(own.first());
        match named {
            Some(a) => a.to_string(),
            None => format!(
                "{user}@{}",
                self.domains.first().map_or("localhost", String::as_str)
            ),
        }
    }

    /// Whether users come from a directory rather than from the addresses found.
    pub fn is_closed(&self) -> bool {
        self.entries.is_some()
    }

    /// Whether `user` is a user of the directory (always, without one).
    pub fn has_user(&self, user: &str) -> bool {
        match &self.entries {
            None => true,
            Some(map) => map.values().any(|users| users.contains(user)),
        }
    }

    /// What an address is to the office, or `None` when it is not at a local domain. The
    /// directory is asked for each of the address's [`forms`] in turn, most literal first,
    /// so a rewrite applies only when the address as written is not in it. `isp` is the
    /// address with the ISP's learned or given affix removed.
    pub fn resolve(&self, addr: &str, isp: Option<String>) -> Option<Arc<Resolved>> {
        if isp.is_none() && !self.may_be_local(addr) {
            return None;
        }
        let cached = self.resolved.read().ok().and_then(|cache| {
            cache
                .get(addr)?
                .iter()
                .find(|(i, _)| *i == isp)
                .map(|(_, r)| Arc::clone(r))
        });
        if let Some(found) = cached {
            return Some(found);
        }
        let found = Arc::new(self.resolve_forms(addr, isp.clone())?);
        if let Ok(mut cache) = self.resolved.write()
            && (cache.len() < MAX_RESOLVED || cache.contains_key(addr))
        {
            let seen = cache.entry(addr.to_string()).or_default();
            if !seen.iter().any(|(i, _)| *i == isp) {
                seen.push((isp, Arc::clone(&found)));
            }
        }
        Some(found)
    }

    /// [`Directory::resolve`] through every form of `addr`.
    fn resolve_forms(&self, addr: &str, isp: Option<String>) -> Option<Resolved> {
        let forms = forms(addr, isp, &self.domains);
        let canonical = forms
            .iter()
            .rev()
            .find_map(|f| localize(f, &self.domains))?;
        let users = match &self.entries {
            None => {
                let folder = folder_name(&canonical.local);
                if folder != canonical.local
                    && let Ok(mut renamed) = self.renamed.lock()
                {
                    renamed
                        .entry(folder.clone())
                        .or_insert_with(|| canonical.to_address());
                }
                vec![folder]
            }
            Some(map) => forms
                .iter()
                .find_map(|f| map.get(f))
                .map(|u| u.iter().cloned().collect())
                .unwrap_or_default(),
        };
        Some(Resolved { canonical, users })
    }

    /// Whether one of the [`forms`] of `addr` without an ISP's rewrite can be at a local
    /// domain: its own domain is one, or SRS decoding (the only rewrite that changes the
    /// domain) may apply. Most addresses in list mail are neither, and computing their forms
    /// was most of `resolve` (577M of 4,182M instructions on real list mail, callgrind).
    fn may_be_local(&self, addr: &str) -> bool {
        let Some((local, domain)) = rsplit_ascii(addr, b'@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.');
        if self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return true;
        }
        // The SRS form is a piece of the lower-cased local part, after the qmail prefix
        // and BATV are taken off; outside ASCII, lower-casing is left to `forms`.
        let has = |tag: &[u8]| {
            local
                .as_bytes()
                .windows(tag.len())
                .any(|w| w.eq_ignore_ascii_case(tag))
        };
        !local.is_ascii() || has(b"srs0=") || has(b"srs1=")
    }

    /// Whether an address delivers to a user: [`Directory::users`] without the copy.
    pub fn is_user(&self, addr: &str) -> bool {
        self.resolve(addr, None)
            .is_some_and(|r| !r.users.is_empty())
    }

    /// The users an address delivers to (several for a distribution list), or none.
    pub fn users(&self, addr: &str) -> Vec<String> {
        self.resolve(addr, None)
            .map(|r| r.users.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn csv(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn lists_aliases_and_departed() {
        let f = csv(
            "address,user\nalice@example.com,alice\nali@Example.com,alice\nteam@example.com,alice\nteam@example.com,bob\n",
        );
        let d = Directory::from_csv(&["example.com".into()], f.path()).expect("dir");
        assert_eq!(d.users("ALI+x@example.com"), vec!["alice"]);
        assert_eq!(d.users("team@example.com"), vec!["alice", "bob"]);
        assert!(d.users("carol@example.com").is_empty());
        assert!(d.resolve("alice@example.org", None).is_none());
        assert!(d.is_user("ALI+x@example.com") && d.is_user("team@example.com"));
        assert!(!d.is_user("carol@example.com") && !d.is_user("alice@example.org"));
    }

    proptest::proptest! {
        /// Whatever `may_be_local` turns away has no form at a local domain.
        #[test]
        fn addresses_turned_away_early_resolve_to_nothing(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Bob", "example.com", "EXAMPLE.COM", "example.org", "@", "@", ".", "-",
                "+", "=", "==", "\"", "prvs=", "PRVS=", "msprvs1=", "btv1==", "srs0=", "SRS0=",
                "sRs1=", "SRS", "0=", "example.com-", "\u{212a}", "\u{130}", "\u{17f}",
                "\u{e9}", " ", "x.",
            ]), 0..10),
        ) {
            let addr = parts.concat();
            let d = Directory::open(&["example.com".into(), "x.example.net".into()]);
            if !d.may_be_local(&addr) {
                proptest::prop_assert_eq!(d.resolve_forms(&addr, None), None);
            }
        }
    }

    #[test]
    fn a_kept_resolution_is_what_resolving_again_gives() {
        let f = csv("address,user\nteam@example.com,alice\nteam@example.com,bob\n");
        let d = Directory::from_csv(&["example.com".into()], f.path()).expect("dir");
        let first = d.resolve("Team+x@example.com", None);
        assert_eq!(d.resolve("Team+x@example.com", None), first);
        assert_eq!(
            d.resolve_forms("Team+x@example.com", None),
            first.as_deref().cloned()
        );
        let isp = Some("carol@example.com".to_string());
        assert_eq!(
            d.resolve("Team+x@example.com", isp.clone())
                .as_deref()
                .cloned(),
            d.resolve_forms("Team+x@example.com", isp)
        );
        for i in 0..MAX_RESOLVED + 10 {
            d.resolve(&format!("u{i}@example.com"), None);
        }
        assert_eq!(d.resolved.read().map(|c| c.len()).ok(), Some(MAX_RESOLVED));
    }

    #[test]
    fn srs_and_batv_still_reach_a_local_address() {
        let d = Directory::open(&["example.com".into()]);
        for addr in [
            "SRS0=HHHH=TT=example.com=bob@fwd.example.net",
            "prvs=1a2b=SRS1=x=fwd1.example==HH=TT=example.com=bob@fwd2.example",
            "Bob@EXAMPLE.com.",
        ] {
            assert_eq!(d.users(addr), vec!["bob"], "{addr}");
        }
        assert!(d.resolve("bob@example.org", None).is_none());
    }

    #[test]
    fn without_directory_every_local_part_is_a_user() {
        let d = Directory::open(&["Example.COM".into()]);
        let users = d.users("../Carol@example.com");
        assert!(
            users.len() == 1 && users[0].starts_with("u.._carol-"),
            "{users:?}"
        );
        assert_eq!(d.users("Dave@example.com"), vec!["dave"]);
        // The summary can say whose the changed name is.
        let folders = [users[0].clone(), "dave".to_string()];
        assert_eq!(
            d.renamed(folders.iter()),
            vec![(users[0].clone(), "../carol@example.com".to_string())]
        );
    }

    #[test]
    fn the_exact_address_wins_over_its_rewrites() {
        let f = csv(
            "address,user\nlists+pwm@example.com,pwm\nlists+leds@example.com,leds\njudy@example.com,judy\nlists@example.com,postmaster\n",
        );
        let d = Directory::from_csv(&["example.com".into()], f.path()).expect("dir");
        assert_eq!(d.users("Lists+PWM@example.com"), vec!["pwm"]);
        assert_eq!(d.users("lists+leds@example.com"), vec!["leds"]);
        assert_eq!(d.users("lists+other@example.com"), vec!["postmaster"]);
        assert_eq!(d.users("prvs=1a2b3c4d5=judy@example.com"), vec!["judy"]);
        assert_eq!(
            d.resolve("lists+pwm@example.com", None)
                .expect("local")
                .canonical
                .to_address(),
            "lists@example.com"
        );
    }

    #[test]
    fn rows_are_checked_and_read_as_the_csv_is() {
        let domains = ["example.com".to_string()];
        let rows = [
            ("alice@example.com", "alice"),
            ("ali@Example.com", "alice"),
            ("team@example.com", "alice"),
            ("team@example.com", "bob"),
        ];
        let f = csv(
            "address,user\nalice@example.com,alice\nali@Example.com,alice\nteam@example.com,alice\nteam@example.com,bob\n",
        );
        let (d, c) = (
            Directory::from_rows(&rows, &domains).expect("rows"),
            Directory::from_csv(&domains, f.path()).expect("csv"),
        );
        assert_eq!(d.entries, c.entries);
        assert_eq!(d.users("ALI+x@example.com"), vec!["alice"]);
        let e = Directory::from_rows(
            &[("alice@example.com", "alice"), ("bob@other.org", "bob")],
            &domains,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("bob@other.org"), "{e}");
        for bad in [
            ("", "alice"),
            ("alice@example.com", ""),
            ("alice@example.com", "../root"),
        ] {
            assert!(Directory::from_rows(&[bad], &domains).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_rows_name_their_line() {
        let f = csv("address,user\nalice@example.com,alice\nbob@other.org,bob\n");
        let e = Directory::from_csv(&["example.com".into()], f.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("bob@other.org"), "{e}");
        let g = csv("address,user\nalice@example.com,../root\n");
        let e = Directory::from_csv(&["example.com".into()], g.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("safe folder name"),
            "{e}"
        );
        let h = csv("mail,name\n");
        assert!(Directory::from_csv(&["example.com".into()], h.path()).is_err());
    }

    #[test]
    fn excel_csv_with_bom_semicolons_and_crlf_is_read() {
        let f = csv("\u{feff}Address;User\r\nalice@example.com;alice\r\nteam@example.com;bob\r\n");
        let d = Directory::from_csv(&["example.com".into()], f.path()).expect("dir");
        assert_eq!(d.users("alice@example.com"), vec!["alice"]);
        assert_eq!(d.users("team@example.com"), vec!["bob"]);
    }

    #[test]
    fn a_header_typo_shows_what_was_found_and_expected() {
        let f = csv("adress;user\r\nalice@example.com;alice\r\n");
        let e = Directory::from_csv(&["example.com".into()], f.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1: found `adress;user`, expected the header line `address;user`"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_user_or_a_missing_field_is_said() {
        let dir = ["example.com".to_string()];
        let f = csv("address,user\nalice@example.com,alice\nbob@example.com,\n");
        let e = Directory::from_csv(&dir, f.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 3: the user is empty for `bob@example.com`"),
            "{e}"
        );
        let g = csv("address,user\nbob@example.com\n");
        let e = Directory::from_csv(&dir, g.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 2: found 1 field `bob@example.com`, expected two"),
            "{e}"
        );
    }
}
