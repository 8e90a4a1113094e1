//! After the split (`popsplit handover`): what the migration to the new server needs for
//! the folders popsplit made, written once, private: a Dovecot passwd-file and a
//! configuration that serves `--out` as it is, an imapsync batch file, and the CSV a
//! Microsoft 365 IMAP migration batch takes. Passwords are generated here.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::decide::directory::Directory;
use crate::output::outfs;
use crate::output::outfs::DeliverError;

/// Why the handover files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// `--out` could not be read.
    #[error("{0}")]
    Out(#[from] DeliverError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// `--to` is inside `--out`, where a server would look for mail.
    #[error("--to {0} is inside the output; choose a folder outside it")]
    Inside(PathBuf),
    /// There is nothing to hand over.
    #[error("{0} holds no Maildir made by popsplit")]
    Empty(PathBuf),
}

/// Where the new server is and how to reach the one that serves `--out`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host Dovecot listens on (and imapsync reads from).
    pub listen: String,
    /// Dovecot's IMAP port.
    pub port: u16,
    /// The new server's IMAP host (imapsync's `--host2`).
    pub host2: String,
    /// The user Dovecot's own processes run as (its `default_internal_user`).
    pub server_user: String,
}

/// What was written: the folders handed over (logins) and the people among them.
#[derive(Debug)]
pub struct Handed {
    /// Every folder, a Dovecot login each (`_unassigned` too).
    pub logins: Vec<String>,
    /// The people: folders not starting with `_`, with their new address.
    pub people: Vec<(String, String)>,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Letters of a generated password: none that any of the files' formats (`:`, `;`, `,`,
/// quotes, `{`) would need escaped.
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A new password of 20 letters from the system's random source (about 117 bits).
fn password(random: &mut File) -> io::Result<String> {
    let mut bytes = [0u8; 20];
    random.read_exact(&mut bytes)?;
    // 256 is not a multiple of the alphabet's size; the bias (under 1%) costs nothing
    // here, where the bits are many.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// The uid and gid of the system user `name`, from `/etc/passwd` (where Debian's packages
/// put their users); `None` when it is not there.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// The Maildirs of `out` that popsplit made: folders with a `cur/` and a `dovecot-keywords`
/// file, in name order.
fn folders(out: &Path) -> Result<Vec<String>, DeliverError> {
    let Some((top, names)) = outfs::top_folders(out)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for name in names {
        let path = out.join(&name);
        let Some(dir) = outfs::existing_dir(top.as_fd(), &name, &path)? else {
            continue;
        };
        let made = outfs::existing_dir(dir.as_fd(), "cur", &path.join("cur"))?.is_some()
            && outfs::kind(
                dir.as_fd(),
                "dovecot-keywords",
                &path.join("dovecot-keywords"),
            )?
            .is_some();
        if made {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

/// Writes the handover files for the Maildirs of `out` into the folder `to` (made 0700 if
/// missing); every file is new (an existing one stops the run) and 0600.
pub fn write(
    out: &Path,
    to: &Path,
    dir: &Directory,
    target: &Target,
) -> Result<Handed, HandoverError> {
    let logins = folders(out)?;
    if logins.is_empty() {
        return Err(HandoverError::Empty(out.to_path_buf()));
    }
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HandoverError::Io { path, source }
    };
    let out_abs = std::fs::canonicalize(out).map_err(io_at(out))?;
    // 0711: Dovecot's auth process, which runs as its own user, must reach the passwd
    // file; nobody may list the folder, and every file in it is 0600.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(to)
        .map_err(io_at(to))?;
    let to_abs = std::fs::canonicalize(to).map_err(io_at(to))?;
    if to_abs.starts_with(&out_abs) {
        return Err(HandoverError::Inside(to.to_path_buf()));
    }
    let owner = std::fs::metadata(&out_abs).map_err(io_at(out))?;
    let mut random = File::open("/dev/urandom").map_err(io_at(Path::new("/dev/urandom")))?;
    let mut passwords = Vec::with_capacity(logins.len());
    for _ in &logins {
        passwords.push(password(&mut random).map_err(io_at(Path::new("/dev/urandom")))?);
    }
    let people: Vec<(String, String)> = logins
        .iter()
        .filter(|l| !l.starts_with('_'))
        .map(|l| (l.clone(), dir.address_of(l)))
        .collect();
    let pass_of = |login: &str| {
        logins
            .iter()
            .position(|l| l == login)
            .map_or("", |i| passwords[i].as_str())
    };

    let passwd: String = logins
        .iter()
        .zip(&passwords)
        .map(|(l, p)| format!("{l}:{{PLAIN}}{p}\n"))
        .collect();
    let d = to_abs.display();
    let conf = format!(
        "# Serves {out} as it is, one login a folder (passwd). Start: dovecot -c {d}/dovecot.conf\n\
         # Plain-text logins on {listen} only; put TLS in front (ssl = required) before mail crosses a network.\n\
         base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = {listen}\nssl = no\n\
         disable_plaintext_auth = no\nauth_mechanisms = plain\nfirst_valid_uid = 1\ndefault_internal_user = {server_user}\ndefault_login_user = dovenull\n\
         mail_location = maildir:{out}/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         # The Maildirs' owner when this file was written; Dovecot never serves mail as root.\n\
         userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    address = {listen}\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
        out = out_abs.display(),
        listen = target.listen,
        port = target.port,
        uid = owner.uid(),
        gid = owner.gid(),
        server_user = target.server_user,
    );
    // imapsync's own batch format (its FAQ's sync_loop scripts): host1;user1;password1;
    // host2;user2;password2. The new server's passwords are the admin's to fill in.
    let imapsync: String = people
        .iter()
        .map(|(user, address)| {
            format!(
                "{};{user};{};{};{address};\n",
                target.listen,
                pass_of(user),
                target.host2
            )
        })
        .collect();
    // Microsoft 365's IMAP migration batch: the new mailbox, then the login on this server.
    let m365: String = std::iter::once("EmailAddress,UserName,Password\n".to_string())
        .chain(
            people
                .iter()
                .map(|(user, address)| format!("{address},{user},{}\n", pass_of(user))),
        )
        .collect();

    let mut files = Vec::new();
    for (name, text) in [
        ("passwd", passwd.as_str()),
        ("dovecot.conf", conf.as_str()),
        ("imapsync.txt", imapsync.as_str()),
        ("m365.csv", m365.as_str()),
    ] {
        let path = to_abs.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(outfs::FILE_MODE)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(io_at(&path))?;
        files.push(path);
    }
    // The passwd file is read by Dovecot's auth process as Dovecot's own user: it owns
    // the file (mode 0600 still), when this run may give it away (as root).
    let passwd_path = to_abs.join("passwd");
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if let Some((uid, gid)) = system_user(&target.server_user)
        && root
    {
        std::os::unix::fs::chown(&passwd_path, Some(uid), Some(gid))
            .map_err(io_at(&passwd_path))?;
    }
    for sub in ["run", "state", "home"] {
        let path = to_abs.join(sub);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(io_at(&path))?;
    }
    // The users' homes belong to whoever owns the mail, as the imap processes run as it.
    let home = to_abs.join("home");
    std::os::unix::fs::chown(&home, Some(owner.uid()), Some(owner.gid())).map_err(io_at(&home))?;
    Ok(Handed {
        logins,
        people,
        files,
    })
}
