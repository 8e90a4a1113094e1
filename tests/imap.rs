//! End-to-end with a real IMAP server: popsplit's output served by Dovecot on 127.0.0.1,
//! checked over IMAP (Python's imaplib) for every user of the sample: message counts, bytes,
//! INTERNALDATE, flags, and the confidence as a keyword that SEARCH finds. Without Dovecot
//! the test says so and is skipped; under CI (CI=true) a missing Dovecot is a failure.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The Dovecot master process; stopped by its PID when dropped, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Dovecot with `conf` (logging into `dir`) and waits until it listens on `port`.
fn serve(dovecot: &Path, conf: &Path, port: u16, dir: &Path) -> Server {
    let server = Server(
        Command::new(dovecot)
            .arg("-c")
            .arg(conf)
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "Dovecot did not listen: {}",
            fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Dovecot, or `None` after saying the test is skipped (a failure under CI=true).
fn dovecot_or_skip() -> Option<PathBuf> {
    let found = dovecot();
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Dovecot is not installed: .ci/run must install dovecot-imapd");
        }
        skipped(
            "Dovecot is not installed (apt-get install dovecot-imapd); the IMAP test did not run",
        );
    }
    found
}

fn dovecot() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The configuration the README's "Migrating the result" section shows, on a free port and
/// with everything in `dir`.
fn config(dir: &Path, mail: &Path, port: u16, root: bool) -> String {
    let (internal, login, owner) = if root {
        (
            "dovecot".to_string(),
            "dovenull".to_string(),
            "dovecot".to_string(),
        )
    } else {
        (id("-un"), id("-un"), id("-un"))
    };
    format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\nssl = no\n\
         disable_plaintext_auth = no\nauth_mechanisms = plain\nfirst_valid_uid = 1\ndefault_internal_user = {internal}\ndefault_login_user = {login}\n\
         mail_location = maildir:{m}/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid={owner} gid={owner} home={d}/home/%u\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
        d = dir.display(),
        m = mail.display(),
    )
}

const CLIENT: &str = r#"
import imaplib, json, re, sys, datetime
port, users = int(sys.argv[1]), sys.argv[2:]
out = {}
for user in users:
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(user, 'secret')
    typ, data = m.select('INBOX', readonly=True)
    count = int(data[0])
    msgs = []
    if count:
        typ, meta = m.fetch('1:*', '(FLAGS INTERNALDATE)')
        typ, bodies = m.fetch('1:*', '(BODY.PEEK[])')
        bodies = [b[1] for b in bodies if isinstance(b, tuple)]
        for line, body in zip(meta, bodies):
            line = line.decode()
            flags = re.search(r'FLAGS \(([^)]*)\)', line).group(1).split()
            date = re.search(r'INTERNALDATE "([^"]+)"', line).group(1)
            t = datetime.datetime.strptime(date, '%d-%b-%Y %H:%M:%S %z').timestamp()
            msgs.append({'flags': flags, 'internaldate': int(t), 'body': body.hex()})
    search = {}
    for level in ['high', 'medium', 'low', 'none']:
        typ, data = m.search(None, 'KEYWORD', 'popsplit-' + level)
        search[level] = [int(x) for x in data[0].split()]
    out[user] = {'count': count, 'messages': msgs, 'search': search}
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn dovecot_serves_every_user_their_mail_with_dates_flags_and_keywords() {
    let Some(dovecot) = dovecot_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let mail = dir.join("mail");
    let mbox = sample("shared-pop.mbox");
    Run::split(&mbox).office().out(&mail).ok();
    let tree = read_tree(&mail);
    let users: Vec<String> = tree.keys().cloned().collect();
    let res = ask_dovecot(&dovecot, dir, &mail, &users, CLIENT);
    let served: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&res.stdout).expect("json");

    let expected = expected();
    let originals = naive_messages(&fs::read(&mbox).expect("mbox"), "2019");
    let lf = |b: &[u8]| String::from_utf8_lossy(b).replace("\r\n", "\n");
    let mut checked = 0;
    for (user, files) in &tree {
        let s = &served[user];
        assert_eq!(
            s["count"].as_u64(),
            Some(files.len() as u64),
            "{user}: INBOX count"
        );
        let mut by_level: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (seq, m) in s["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .enumerate()
        {
            let hex = m["body"].as_str().expect("body").as_bytes();
            let body: Vec<u8> = hex
                .chunks(2)
                .map(|p| {
                    u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0)
                })
                .collect();
            let text = lf(&body);
            let file = files
                .iter()
                .find(|d| lf(&d.bytes) == text)
                .unwrap_or_else(|| panic!("{user}: a served message is no delivered file"));
            // The original, plus only popsplit's added fields.
            assert!(
                originals.iter().any(|(_, o)| text.ends_with(&lf(o))),
                "{user}: not an original message"
            );
            let msg_id = file.header("Message-ID").expect("id");
            let e = expected
                .iter()
                .find(|e| e.message_id == msg_id && e.folders.contains(user))
                .expect("expected");
            assert_eq!(
                m["internaldate"].as_i64(),
                Some(epoch(&e.arrival)),
                "{user} {msg_id}: INTERNALDATE"
            );
            let flags: Vec<&str> = m["flags"]
                .as_array()
                .expect("flags")
                .iter()
                .filter_map(|f| f.as_str())
                .collect();
            for (letter, flag) in [('S', "\\Seen"), ('R', "\\Answered"), ('F', "\\Flagged")] {
                assert_eq!(
                    flags.contains(&flag),
                    e.flags.contains(letter),
                    "{user} {msg_id}: {flag}"
                );
            }
            let keyword = format!("popsplit-{}", e.confidence);
            assert!(
                flags.contains(&keyword.as_str()),
                "{user} {msg_id}: {flags:?}"
            );
            by_level
                .entry(e.confidence.clone())
                .or_default()
                .push(seq as u64 + 1);
            checked += 1;
        }
        for level in ["high", "medium", "low", "none"] {
            let found: Vec<u64> = s["search"][level]
                .as_array()
                .expect("search")
                .iter()
                .filter_map(|v| v.as_u64())
                .collect();
            assert_eq!(
                found,
                by_level.remove(level).unwrap_or_default(),
                "{user}: SEARCH KEYWORD popsplit-{level}"
            );
        }
    }
    assert_eq!(checked, expected_counts(&expected).3);
    assert!(served.contains_key("_unassigned"));
}

/// Logs in as each `user password` pair, counts INBOX, and, for those whose name is in
/// `strip`, removes popsplit's keywords with `STORE -FLAGS` and searches for them again.
const HANDOVER_CLIENT: &str = r#"
import imaplib, json, sys
port, strip, pairs = int(sys.argv[1]), sys.argv[2].split(','), sys.argv[3:]
levels = ['high', 'medium', 'low', 'none', 'reviewed']
out = {}
for pair in pairs:
    user, password = pair.split(' ', 1)
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(user, password)
    typ, data = m.select('INBOX')
    count = int(data[0])
    left = None
    if user in strip and count:
        flags = '(' + ' '.join('popsplit-' + l for l in levels) + ')'
        m.store('1:*', '-FLAGS', flags)
        left = sum(len(m.search(None, 'KEYWORD', 'popsplit-' + l)[1][0].split()) for l in levels)
    out[user] = {'count': count, 'left': left}
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn dovecot_accepts_the_handover_files_and_each_user_logs_in_with_their_password() {
    let Some(dovecot) = dovecot_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let mail = tmp.path().join("mail");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&mail)
        .ok();
    let tree = read_tree(&mail);
    let root = id("-u") == "0";
    if root {
        // As the README says: the Maildirs belong to the server's mail user first.
        assert!(
            Command::new("chown")
                .args(["-R", "dovecot:dovecot"])
                .arg(&mail)
                .status()
                .expect("chown")
                .success()
        );
    }
    let port = free_port();
    let handover = tmp.path().join("handover");
    let said = Run::new(&[
        "handover",
        mail.to_str().expect("utf8"),
        "--to",
        handover.to_str().expect("utf8"),
        "--domain",
        "example.com",
        "--directory",
        sample("directory.csv").to_str().expect("utf8"),
        "--port",
        &port.to_string(),
    ])
    .ok();
    assert!(said.contains("6 Dovecot logins"), "{said}");
    for name in ["passwd", "dovecot.conf", "imapsync.txt", "m365.csv"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(handover.join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    // Handed over once: a second run never replaces the passwords.
    let again = Run::new(&[
        "handover",
        mail.to_str().expect("utf8"),
        "--to",
        handover.to_str().expect("utf8"),
        "--domain",
        "example.com",
    ])
    .output();
    assert_eq!(again.status.code(), Some(1));

    let passwd = fs::read_to_string(handover.join("passwd")).expect("passwd");
    let logins: Vec<(String, String)> = passwd
        .lines()
        .map(|l| {
            let (user, rest) = l.split_once(':').expect("user:");
            (
                user.to_string(),
                rest.trim_start_matches("{PLAIN}").to_string(),
            )
        })
        .collect();
    assert_eq!(
        logins.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>(),
        tree.keys().cloned().collect::<Vec<_>>(),
        "one login a folder"
    );
    // Microsoft 365 and imapsync get the people, with the same passwords.
    let m365 = fs::read_to_string(handover.join("m365.csv")).expect("m365");
    let imapsync = fs::read_to_string(handover.join("imapsync.txt")).expect("imapsync");
    assert_eq!(m365.lines().next(), Some("EmailAddress,UserName,Password"));
    for (user, pass) in logins.iter().filter(|(u, _)| !u.starts_with('_')) {
        assert!(
            m365.contains(&format!("{user}@example.com,{user},{pass}\n")),
            "{m365}"
        );
        assert!(
            imapsync.contains(&format!(
                "127.0.0.1;{user};{pass};outlook.office365.com;{user}@example.com;\n"
            )),
            "{imapsync}"
        );
    }
    assert_eq!(m365.lines().count(), 1 + 4);
    assert_eq!(imapsync.lines().count(), 4);

    let mut conf = fs::read_to_string(handover.join("dovecot.conf")).expect("conf");
    if !root {
        // Without root, Dovecot runs as the test's user: the only change to the file.
        let me = id("-un");
        conf = conf
            .replace(
                "default_internal_user = dovecot",
                &format!("default_internal_user = {me}"),
            )
            .replace(
                "default_login_user = dovenull",
                &format!("default_login_user = {me}"),
            );
        fs::write(handover.join("dovecot.conf"), conf).expect("conf");
    }
    let _server = serve(&dovecot, &handover.join("dovecot.conf"), port, &handover);
    let res = Command::new("python3")
        .args([
            "-c",
            HANDOVER_CLIENT,
            &port.to_string(),
            "alice,_unassigned",
        ])
        .args(logins.iter().map(|(u, p)| format!("{u} {p}")))
        .output()
        .expect("python3");
    assert!(
        res.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&res.stderr),
        fs::read_to_string(handover.join("dovecot.log")).unwrap_or_default()
    );
    let served: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&res.stdout).expect("json");
    for (user, files) in &tree {
        assert_eq!(
            served[user]["count"].as_u64(),
            Some(files.len() as u64),
            "{user}"
        );
    }
    // Keywords dropped on the server: none is left, and the files lost their letters.
    for user in ["alice", "_unassigned"] {
        assert_eq!(served[user]["left"].as_u64(), Some(0), "{user}");
        let letters = keyword_letters(&mail.join(user));
        let ours: Vec<char> = letters
            .iter()
            .filter(|(k, _)| k.starts_with("popsplit-"))
            .map(|(_, l)| *l)
            .collect();
        for f in &read_tree(&mail)[user] {
            assert!(!f.info().contains(&ours[..]), "{user}: {}", f.name);
        }
    }
    assert!(
        read_tree(&mail)["bob"]
            .iter()
            .all(|f| f.info().chars().any(|c| c.is_ascii_lowercase()))
    );
}

/// LISTs each user's folders and SELECTs every selectable one: `{user: {folder: count}}`.
const FOLDERS_CLIENT: &str = r#"
import imaplib, json, re, sys
port, users = int(sys.argv[1]), sys.argv[2:]
out = {}
for user in users:
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(user, 'secret')
    typ, data = m.list()
    folders = {}
    for line in data:
        flags, sep, name = re.match(r'\(([^)]*)\) ("[^"]*"|NIL) (.*)$', line.decode()).groups()
        if name.startswith('"'):
            name = name[1:-1]
        if '\\Noselect' in flags or '\\NonExistent' in flags:
            continue
        typ, d = m.select('"' + name + '"', readonly=True)
        assert typ == 'OK', (user, name, d)
        folders[name] = int(d[0])
    out[user] = folders
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn dovecot_lists_the_kept_folders_and_selects_their_messages() {
    let Some(dovecot) = dovecot_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // A Thunderbird profile: Inbox, Inbox.sbd/Archive, its 2019, and a folder whose name
    // is not ASCII; each with a part of the sample.
    let profile = dir.join("Local Folders");
    fs::create_dir_all(profile.join("Inbox.sbd/Archive.sbd")).expect("mkdir");
    let mbox = fs::read(sample("shared-pop.mbox")).expect("mbox");
    let text = String::from_utf8_lossy(&mbox);
    let cut = |line: &str| text.find(line).expect("cut");
    let cuts = [
        0,
        cut("From list-bounces@lists.example.org Thu Mar  7 08:00:00 2019"),
        cut("From hans@vendor.example.org Sat Mar  9 10:00:00 2019"),
        cut("From MAILER-DAEMON Sun Mar 10 08:00:00 2019"),
        mbox.len(),
    ];
    let parts = [
        "Inbox",
        "Inbox.sbd/Archive",
        "Rechnungen Ä",
        "Inbox.sbd/Archive.sbd/2019",
    ];
    for (i, part) in parts.iter().enumerate() {
        fs::write(profile.join(part), &mbox[cuts[i]..cuts[i + 1]]).expect("write");
    }
    let mail = dir.join("mail");
    Run::split(&profile).office().out(&mail).ok();

    // What is on disk: each user's INBOX and Maildir++ folders, with their copies.
    let count = |p: &Path| {
        ["cur", "new"]
            .iter()
            .map(|s| fs::read_dir(p.join(s)).map_or(0, |d| d.count()))
            .sum::<usize>() as u64
    };
    let mut on_disk: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for user in read_tree(&mail).keys() {
        let base = mail.join(user);
        let folders = on_disk.entry(user.clone()).or_default();
        folders.insert("INBOX".into(), count(&base));
        for e in fs::read_dir(&base).expect("user") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if let Some(folder) = name.strip_prefix('.') {
                folders.insert(folder.to_string(), count(&base.join(&name)));
            }
        }
    }
    assert!(
        on_disk.values().any(|f| f.contains_key("Archive.2019")),
        "{on_disk:?}"
    );
    assert!(
        on_disk.values().any(|f| f.contains_key("Rechnungen &AMQ-")),
        "{on_disk:?}"
    );

    let users: Vec<String> = on_disk.keys().cloned().collect();
    let res = ask_dovecot(&dovecot, dir, &mail, &users, FOLDERS_CLIENT);
    let served: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_slice(&res.stdout).expect("json");
    assert_eq!(served, on_disk);
}

/// Serves `mail` with Dovecot on 127.0.0.1 for `users` (password `secret`), runs the
/// Python IMAP `client` against it with the port and the users, and returns what the
/// client printed; the server is stopped when this returns, pass or fail.
fn ask_dovecot(
    dovecot: &Path,
    dir: &Path,
    mail: &Path,
    users: &[String],
    client: &str,
) -> std::process::Output {
    for sub in ["run", "state", "home"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    fs::write(
        dir.join("passwd"),
        users
            .iter()
            .map(|u| format!("{u}:{{PLAIN}}secret\n"))
            .collect::<String>(),
    )
    .expect("passwd");
    let root = id("-u") == "0";
    if root {
        // Dovecot never serves mail as root: hand the test's own copy to its user.
        for p in [mail, &dir.join("home")] {
            assert!(
                Command::new("chown")
                    .args(["-R", "dovecot:dovecot"])
                    .arg(p)
                    .status()
                    .expect("chown")
                    .success(),
                "no dovecot user"
            );
        }
    }
    let port = free_port();
    let conf = dir.join("dovecot.conf");
    fs::write(&conf, config(dir, mail, port, root)).expect("conf");
    let _server = serve(dovecot, &conf, port, dir);
    let res = Command::new("python3")
        .args(["-c", client, &port.to_string()])
        .args(users)
        .output()
        .expect("python3");
    assert!(
        res.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&res.stderr),
        fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
    );
    res
}
