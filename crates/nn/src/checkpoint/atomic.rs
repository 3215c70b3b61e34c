//! Atomic file replacement ([`write_atomic`]) and numbered checkpoints that keep the
//! last N ([`Checkpoints`]).

use super::file::TensorFile;
use mixprec_autograd::{Error, Result};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of the temporary files [`write_atomic`] makes (hidden, next to the target).
const TMP_PREFIX: &str = ".mixprec-tmp-";

/// Replaces `path` with `bytes` atomically: writes a temporary file in the same folder,
/// fsyncs it, renames it over `path` (atomic on POSIX file systems) and fsyncs the
/// folder, so after a crash or kill at any moment `path` holds the old contents or the
/// new ones, never a mix. On an error the temporary file is removed and `path` is
/// untouched. (A kill between the write and the rename can leave a hidden
/// `.mixprec-tmp-*` file behind; [`Checkpoints`] removes those.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a rename in `dir` durable (fsync of the folder; a no-op where folders cannot be
/// opened as files).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Numbered checkpoints in a folder: `<stem>-<step, 10 digits>.safetensors`, written
/// atomically, the oldest removed beyond `keep`.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    stem: String,
    keep: Option<usize>,
}

impl Checkpoints {
    /// Checkpoints named `<stem>-<step>.safetensors` in `dir` (made if missing), all kept.
    /// Errors when `stem` is empty or holds a path separator.
    pub fn new(dir: impl Into<PathBuf>, stem: &str) -> Result<Checkpoints> {
        if stem.is_empty() || stem.contains(['/', '\\']) {
            return Err(Error::invalid(
                "Checkpoints::new",
                format!("the stem must be a plain file name, got {stem:?}"),
            ));
        }
        Ok(Checkpoints {
            dir: dir.into(),
            stem: stem.to_string(),
            keep: None,
        })
    }

    /// Keeps only the newest `n` checkpoints (at least 1) after each save.
    pub fn keep_last(mut self, n: usize) -> Checkpoints {
        self.keep = Some(n.max(1));
        self
    }

    /// The path of the checkpoint of `step`.
    pub fn path(&self, step: u64) -> PathBuf {
        self.dir
            .join(format!("{}-{step:010}.safetensors", self.stem))
    }

    /// Writes `file` as the checkpoint of `step` (atomically), then removes checkpoints
    /// beyond `keep_last` and temporary files left by killed writes. Errors name the
    /// path; the older checkpoints stay when the write fails.
    pub fn save(&self, step: u64, file: &TensorFile) -> Result<PathBuf> {
        let io_err = |p: &Path, e: io::Error| Error::io("Checkpoints::save", Some(p), &e);
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let path = self.path(step);
        file.save(&path)?;
        self.remove_stale_temporaries();
        if let Some(keep) = self.keep {
            let all = self.list()?;
            for (_, old) in all.iter().rev().skip(keep) {
                match fs::remove_file(old) {
                    // Another process (a second writer, a cleanup) took it first.
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(old, e)),
                    _ => {}
                }
            }
        }
        Ok(path)
    }

    /// The checkpoints on disk, oldest first, with their steps (none when the folder
    /// does not exist yet).
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let io_err = |e: io::Error| Error::io("Checkpoints::list", Some(&self.dir), &e);
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(e)),
        };
        let prefix = format!("{}-", self.stem);
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let step = name
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".safetensors"))
                .filter(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok());
            if let Some(step) = step {
                found.push((step, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The newest checkpoint, if any.
    pub fn latest(&self) -> Result<Option<(u64, PathBuf)>> {
        Ok(self.list()?.pop())
    }

    /// The newest checkpoint, read and checked ([`TensorFile::load`]), with its step;
    /// `None` when there is none yet (a fresh run). A file that does not read is an error
    /// naming it: writes are atomic, so that is damage from outside, not a killed save.
    pub fn load_latest(&self) -> Result<Option<(u64, TensorFile)>> {
        self.latest()?
            .map(|(step, path)| Ok((step, TensorFile::load(&path)?)))
            .transpose()
    }

    /// Removes `.mixprec-tmp-<stem>-*` files that killed writes left: those of processes
    /// that no longer run (best effort; Linux only, where `/proc` says which run).
    fn remove_stale_temporaries(&self) {
        let prefix = format!("{TMP_PREFIX}{}-", self.stem);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(&prefix) {
                continue;
            }
            // `<prefix><file>-<pid>-<counter>`: the writer's pid is second from the end.
            let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && writer_is_gone(pid)
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// True when no process `pid` runs (Linux; elsewhere always false, so nothing is
/// removed).
fn writer_is_gone(pid: u32) -> bool {
    cfg!(target_os = "linux")
        && pid != std::process::id()
        && !Path::new(&format!("/proc/{pid}")).exists()
}
