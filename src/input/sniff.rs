//! What an input is, from its name and first bytes; archives of several files refused
//! with the command that unpacks them.

use crate::input::mbox;
use crate::input::{InputFormat, SourceError, io_err};
use std::fs::{self, File};
use std::path::Path;

pub(crate) fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Decides a file's format from its first bytes (and name).
pub(crate) fn sniff(path: &Path) -> Result<InputFormat, SourceError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut file = File::open(path).map_err(io_err(path))?;
    let n = file.read(&mut head).map_err(io_err(path))?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(InputFormat::Gzip);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(InputFormat::Xz);
    }
    if head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit) {
        return Ok(InputFormat::Bzip2);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(InputFormat::Zstd);
    }
    if head.starts_with(PST_SIGNATURE) {
        return Ok(InputFormat::Pst);
    }
    if let Some(why) = archive_advice(head, path) {
        return Err(SourceError::Bad {
            path: path.display().to_string(),
            why,
        });
    }
    let start = head
        .iter()
        .position(|&b| b != b'\n' && b != b'\r')
        .unwrap_or(head.len());
    if head[start..].starts_with(b"From ") || start == head.len() {
        return Ok(InputFormat::Mbox);
    }
    if has_ext(path, "eml") && mbox::looks_like_header(head) {
        return Ok(InputFormat::Eml);
    }
    // Let the mbox reader say exactly where and why it is not an mbox.
    Ok(InputFormat::Mbox)
}

/// The first bytes of every Outlook PST and OST file.
pub(crate) const PST_SIGNATURE: &[u8] = b"!BDN";

/// For an archive of several files (which popsplit does not unpack itself), what it is
/// and the command that unpacks it. An admin's export often arrives packed; naming the
/// tool beats "not an mbox".
pub(crate) fn archive_advice(head: &[u8], path: &Path) -> Option<String> {
    let file = quoted(path);
    let (what, unpack) = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        ("a zip archive", format!("unzip {file} -d FOLDER"))
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        ("a 7-Zip archive", format!("7z x -oFOLDER {file}"))
    } else if head.get(257..262) == Some(b"ustar") {
        (
            "a tar archive",
            format!("mkdir FOLDER && tar -xf {file} -C FOLDER"),
        )
    } else {
        return None;
    };
    Some(format!(
        "{what}, which popsplit does not unpack: unpack it first (`{unpack}`) and give popsplit what it holds"
    ))
}

/// A path as a shell command would need it written.
pub(crate) fn quoted(path: &Path) -> String {
    let p = path.display().to_string();
    if !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        p
    } else {
        format!("'{}'", p.replace('\'', "'\\''"))
    }
}

/// What a file that is neither a regular file nor a folder is, in words.
pub(crate) fn what_is(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a link to nothing readable"
    } else {
        "something else"
    }
}
