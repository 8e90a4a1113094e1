//! Before the pipeline starts: which paths a run may write. An output file (the report, the
//! audit page) may not be, or be inside, an input, the directory CSV, another output file,
//! or a folder of `--out`; `--out` and the inputs may not overlap; no input is named twice.
//! Paths are compared as the file system resolves them (links followed, `..` applied) and
//! by device and inode, so another spelling, a link or a hard link is caught too.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::output::outfs::LOCK;

/// A path as the file system resolves it.
#[derive(Debug, Clone)]
pub struct Place {
    /// As the user gave it, for messages.
    pub given: PathBuf,
    /// Absolute, links resolved; for a path not there yet, its nearest existing ancestor
    /// resolved and the rest appended.
    canon: PathBuf,
    /// Device and inode, when it exists.
    id: Option<(u64, u64)>,
    is_dir: bool,
    /// Hard links of an existing file.
    links: u64,
}

impl Place {
    /// Resolves `given`.
    pub fn of(given: &Path) -> io::Result<Place> {
        let meta = match fs::metadata(given) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Place {
            given: given.to_path_buf(),
            canon: resolve(given)?,
            id: meta.as_ref().map(|m| (m.dev(), m.ino())),
            is_dir: meta.as_ref().is_some_and(|m| m.is_dir()),
            links: meta.as_ref().map_or(0, |m| m.nlink()),
        })
    }

    fn same(&self, other: &Place) -> bool {
        self.canon == other.canon || (self.id.is_some() && self.id == other.id)
    }

    /// Whether `self` is `other`, or inside it when `other` is a folder.
    fn within(&self, other: &Place) -> bool {
        self.same(other) || (other.is_dir && self.canon.starts_with(&other.canon))
    }
}

/// The absolute, resolved form of `p`, also when its last components do not exist yet.
fn resolve(p: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut rest = Vec::new();
    let mut head = abs.as_path();
    loop {
        match fs::canonicalize(head) {
            Ok(mut c) => {
                for part in rest.iter().rev() {
                    match part {
                        Component::ParentDir => {
                            c.pop();
                        }
                        Component::Normal(n) => c.push(n),
                        _ => {}
                    }
                }
                return Ok(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(last)) = (head.parent(), head.components().next_back())
                else {
                    return Err(e);
                };
                rest.push(last);
                head = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What one run reads and writes, resolved.
#[derive(Debug)]
pub struct Paths {
    /// The inputs.
    pub inputs: Vec<Place>,
    /// Files read besides the inputs (`--directory`, `--corrections`), with their option.
    pub read: Vec<(&'static str, Place)>,
    /// `--out`, when the run writes it.
    pub out: Option<Place>,
    /// Output files with the option that names them (`--report`, `--html`).
    pub outputs: Vec<(&'static str, Place)>,
}

/// Why a set of paths is refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A path could not be resolved.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The paths overlap in a way that would lose or reread data.
    #[error("{0}")]
    Overlap(String),
}

impl Paths {
    /// Resolves every path of a run.
    pub fn resolve(
        inputs: &[PathBuf],
        read: &[(&'static str, Option<&Path>)],
        out: Option<&Path>,
        outputs: &[(&'static str, Option<&Path>)],
    ) -> Result<Paths, PathError> {
        let place = |p: &Path| {
            Place::of(p).map_err(|source| PathError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        Ok(Paths {
            inputs: inputs.iter().map(|p| place(p)).collect::<Result<_, _>>()?,
            read: read
                .iter()
                .filter_map(|(flag, p)| p.map(|p| place(p).map(|pl| (*flag, pl))))
                .collect::<Result<_, _>>()?,
            out: out.map(place).transpose()?,
            outputs: outputs
                .iter()
                .filter_map(|(flag, p)| p.map(|p| place(p).map(|pl| (*flag, pl))))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Refuses overlaps that would destroy input or output, or read the output back.
    pub fn check(&self) -> Result<(), PathError> {
        let refuse = |text: String| Err(PathError::Overlap(text));
        let show = |p: &Place| p.given.display().to_string();
        for (i, a) in self.inputs.iter().enumerate() {
            if let Some(b) = self.inputs[..i].iter().find(|b| a.within(b) || b.within(a)) {
                return refuse(format!(
                    "input {} and input {} are the same mail (one is, or is inside, the other); name it once",
                    show(a),
                    show(b)
                ));
            }
        }
        if let Some(out) = &self.out {
            if out.id.is_some() && !out.is_dir {
                return refuse(format!("--out {} exists and is not a folder", show(out)));
            }
            for input in &self.inputs {
                if out.within(input) {
                    return refuse(format!(
                        "--out {} is inside the input {}: a rerun would read its own output",
                        show(out),
                        show(input)
                    ));
                }
                if input.within(out) {
                    return refuse(format!(
                        "input {} is inside --out {}: the output would grow with each rerun",
                        show(input),
                        show(out)
                    ));
                }
            }
        }
        for (i, (flag, o)) in self.outputs.iter().enumerate() {
            let what = format!("{flag} {}", show(o));
            if o.is_dir {
                return refuse(format!("{what} is a folder"));
            }
            if let Some(input) = self.inputs.iter().find(|i| o.within(i)) {
                return refuse(format!(
                    "{what} is, or is inside, the input {}; popsplit never writes to its input",
                    show(input)
                ));
            }
            if let Some((flag, d)) = self.read.iter().find(|(_, d)| o.same(d)) {
                return refuse(format!("{what} is the {flag} file {}", show(d)));
            }
            if let Some((other, _)) = self.outputs[..i].iter().find(|(_, p)| o.same(p)) {
                return refuse(format!(
                    "{what} is also given as {other}; give each its own file"
                ));
            }
            if let Some(out) = &self.out
                && o.canon.starts_with(&out.canon)
                && !popsplit_free(o, out)
            {
                return refuse(format!(
                    "{what} is inside a folder of --out {}, or is one of popsplit's own files there: it would be taken for mail",
                    show(out)
                ));
            }
            if o.links > 1 {
                return refuse(format!(
                    "{what} has other hard links (one may be mail or an input); popsplit will not empty it: remove it or choose another name"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `o`, inside `out`, sits at its top with a name popsplit never gives a file there.
fn popsplit_free(o: &Place, out: &Place) -> bool {
    let name = o.canon.file_name().map(|n| n.to_string_lossy());
    o.canon.parent() == Some(out.canon.as_path())
        && name.is_some_and(|n| n != LOCK && !n.ends_with(".mbox") && !n.ends_with(".mbox.partial"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a run with these paths may start.
    fn accepted(inputs: &[&Path], out: &Path, outputs: &[(&'static str, &Path)]) -> bool {
        let outputs: Vec<(&'static str, Option<&Path>)> =
            outputs.iter().map(|(f, p)| (*f, Some(*p))).collect();
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.to_path_buf()).collect();
        Paths::resolve(&inputs, &[], Some(out), &outputs).is_ok_and(|p| p.check().is_ok())
    }

    #[test]
    fn a_path_not_there_yet_resolves_through_its_existing_ancestor() {
        let tmp = tempfile::tempdir().expect("tmp");
        let real = fs::canonicalize(tmp.path()).expect("canon");
        fs::create_dir(real.join("a")).expect("mkdir");
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).expect("symlink");
        let p = resolve(&real.join("link/new/../x")).expect("resolve");
        assert_eq!(p, real.join("a/x"));
    }

    /// An independent oracle: whether `output` (which need not exist) names the file
    /// `input`, or lies inside the folder `input`, judged by device and inode alone while
    /// walking up the physical `..` chain from the output's parent.
    fn physically_within(output: &Path, input: &Path) -> bool {
        let id = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let Some(target) = id(input) else {
            return false;
        };
        if id(output) == Some(target) {
            return true;
        }
        let Some(mut dir) = output.parent().map(Path::to_path_buf) else {
            return false;
        };
        // The nearest existing ancestor (what does not exist yet has no inode to match).
        while id(&dir).is_none() {
            if !dir.pop() {
                return false;
            }
        }
        for _ in 0..64 {
            let here = id(&dir);
            if here == Some(target) {
                return true;
            }
            let up = dir.join("..");
            if id(&up) == here {
                return false;
            }
            dir = up;
        }
        false
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever the spelling (links, `..`, hard links), an accepted output file is never
        /// an input nor inside an input folder.
        #[test]
        fn an_accepted_output_never_lands_on_an_input(
            input in 0usize..6,
            parts in proptest::collection::vec(0usize..9, 1..5),
        ) {
            let tmp = tempfile::tempdir().expect("tmp");
            let r = fs::canonicalize(tmp.path()).expect("canon");
            for d in ["tree/sub", "other", "out"] {
                fs::create_dir_all(r.join(d)).expect("mkdir");
            }
            fs::write(r.join("tree/sub/Sent"), "x").expect("write");
            fs::write(r.join("box.mbox"), "x").expect("write");
            fs::hard_link(r.join("box.mbox"), r.join("other/hard.mbox")).expect("link");
            std::os::unix::fs::symlink(r.join("tree"), r.join("other/to-tree")).expect("symlink");
            std::os::unix::fs::symlink(r.join("box.mbox"), r.join("soft.mbox")).expect("symlink");
            let inputs = ["tree", "tree/sub", "tree/sub/Sent", "box.mbox", "soft.mbox", "other/to-tree"];
            let words = ["tree", "sub", "Sent", "other", "to-tree", "..", "box.mbox", "hard.mbox", "new"];
            let mut output = r.clone();
            for p in &parts {
                output.push(words[*p]);
            }
            // A name ending in `..`, or under a file, is no file popsplit could create.
            proptest::prop_assume!(parts.last() != Some(&5));
            proptest::prop_assume!(
                output.parent().is_none_or(|d| fs::metadata(d).map_or(true, |m| m.is_dir()))
            );
            let input_path = r.join(inputs[input]);
            let out = r.join("out");
            let accepted = accepted(&[&input_path], &out, &[("--report", &output)]);
            if accepted {
                proptest::prop_assert!(
                    !physically_within(&output, &input_path),
                    "{} accepted though it lands on {}", output.display(), input_path.display()
                );
            }
        }
    }
}
