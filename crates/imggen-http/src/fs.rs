//! Files written whole or not at all, and checked.
//!
//! A paid image saved over a full disk must not become a truncated file under its final name
//! reported as a success. [`write_atomically`] writes a temporary file in the same folder,
//! flushes and syncs it, checks its length, and only then renames it over the final name;
//! any failure is an error naming the path and the cause, and the temporary file is removed.
//!
//! The writes are plain blocking `std::fs` calls (run on tokio's blocking pool by
//! [`write_atomically_async`]): a blocking `write` reports a full disk where it happens, whereas
//! an async file's buffered write can report it only on a later call that is easy to skip
//! (tokio-rs/tokio#6005: `sync_all` after `write_all` without `flush` loses the error).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// A file that could not be written. Nothing was left under its final name (an earlier
/// file there, if any, is untouched).
#[derive(Debug, thiserror::Error)]
#[error("could not write {}: {cause}", path.display())]
pub struct WriteError {
    /// The file that was being written.
    pub path: PathBuf,
    /// Why (a full disk, a read-only folder, a path that is not a folder).
    pub cause: io::Error,
}

/// Writes `bytes` to `dir/name` atomically: the folder is created if missing, the bytes go
/// to a temporary `.<name>.<16 hex>.part` beside the target, which is flushed, synced,
/// checked for its length and renamed over the target; then the folder is synced so the
/// rename survives a crash.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, WriteError> {
    write_atomically_with(dir, name, |out| out.write_all(bytes))
}

/// [`write_atomically`] for a file written piece by piece — `results.jsonl` of a million
/// lines is never whole in memory: `write` fills the temporary file (buffered), which is then
/// flushed, synced, checked against the bytes `write` gave and renamed over `dir/name`.
/// `write`'s own error fails the write the same way.
pub fn write_atomically_with(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<PathBuf, WriteError> {
    let target = dir.join(name);
    let fail = |cause| WriteError {
        path: target.clone(),
        cause,
    };
    fs::create_dir_all(dir).map_err(fail)?;
    let temporary = dir.join(temporary_name(name));
    let written = File::options()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|file| {
            let mut counted = Counted {
                inner: io::BufWriter::with_capacity(256 * 1024, file),
                bytes: 0,
            };
            write(&mut counted)?;
            let bytes = counted.bytes;
            let file = counted
                .inner
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            finish(file, bytes)
        })
        .and_then(|()| fs::rename(&temporary, &target));
    if let Err(cause) = written {
        let _ = fs::remove_file(&temporary);
        return Err(fail(cause));
    }
    sync_dir(dir).map_err(fail)?;
    Ok(target)
}

/// A writer that counts what it was given, to check the length on disk against.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: io::Write> io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// [`write_atomically`] on tokio's blocking pool.
pub async fn write_atomically_async(
    dir: PathBuf,
    name: String,
    bytes: impl AsRef<[u8]> + Send + 'static,
) -> Result<PathBuf, WriteError> {
    let target = dir.join(&name);
    tokio::task::spawn_blocking(move || write_atomically(&dir, &name, bytes.as_ref()))
        .await
        .unwrap_or_else(|join| {
            Err(WriteError {
                path: target,
                cause: io::Error::other(format!("the writing thread stopped: {join}")),
            })
        })
}

/// How many names [`write_new_atomically`] tries before it gives up.
const MAX_SUFFIX: u32 = 10_000;

/// Writes `bytes` atomically under a name no file in `dir` has: `<stem>.<extension>`, or
/// `<stem>-2.<extension>`, `<stem>-3.<extension>`… — an existing file is never replaced. The
/// temporary file is linked to the free name (a link fails if the name is taken, so two
/// writers cannot take the same one), then removed; a file system without links gets the
/// name checked just before the rename instead.
pub fn write_new_atomically(
    dir: &Path,
    stem: &str,
    extension: &str,
    bytes: &[u8],
) -> Result<PathBuf, WriteError> {
    let first = format!("{stem}.{extension}");
    let fail = |path: PathBuf, cause| WriteError { path, cause };
    fs::create_dir_all(dir).map_err(|cause| fail(dir.join(&first), cause))?;
    let temporary = dir.join(temporary_name(&first));
    if let Err(cause) = write_whole(&temporary, bytes) {
        let _ = fs::remove_file(&temporary);
        return Err(fail(dir.join(&first), cause));
    }
    let mut placed = None;
    for number in 1..=MAX_SUFFIX {
        let name = if number == 1 {
            first.clone()
        } else {
            format!("{stem}-{number}.{extension}")
        };
        let target = dir.join(&name);
        match fs::hard_link(&temporary, &target) {
            Ok(()) => {
                placed = Some(Ok(target));
                break;
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) if !target.exists() => {
                placed = Some(
                    fs::rename(&temporary, &target)
                        .map(|()| target.clone())
                        .map_err(|cause| fail(target, cause)),
                );
                break;
            }
            Err(_) => {}
        }
    }
    let _ = fs::remove_file(&temporary);
    let target = match placed {
        Some(result) => result?,
        None => {
            return Err(fail(
                dir.join(&first),
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{MAX_SUFFIX} files named {stem}(-N).{extension} are there already"),
                ),
            ));
        }
    };
    sync_dir(dir).map_err(|cause| fail(target.clone(), cause))?;
    Ok(target)
}

/// [`write_new_atomically`] on tokio's blocking pool.
pub async fn write_new_atomically_async(
    dir: PathBuf,
    stem: String,
    extension: &'static str,
    bytes: impl AsRef<[u8]> + Send + 'static,
) -> Result<PathBuf, WriteError> {
    let target = dir.join(format!("{stem}.{extension}"));
    tokio::task::spawn_blocking(move || {
        write_new_atomically(&dir, &stem, extension, bytes.as_ref())
    })
    .await
    .unwrap_or_else(|join| {
        Err(WriteError {
            path: target,
            cause: io::Error::other(format!("the writing thread stopped: {join}")),
        })
    })
}

/// Whether `name` is one of [`write_atomically`]'s temporary files (left by a process that
/// was killed mid-write): `.<name>.<16 hex digits>.part`.
pub fn is_temporary_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(".part"))
    else {
        return false;
    };
    let Some((base, suffix)) = stem.rsplit_once('.') else {
        return false;
    };
    !base.is_empty() && suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that `dir` can hold new files, and leaves no trace: the folders missing on its
/// path are created, a small probe file is written, synced and removed, and the folders this
/// created are removed again. Run before paying for what will be saved there.
pub fn check_writable_dir(dir: &Path) -> Result<(), WriteError> {
    let fail = |cause| WriteError {
        path: dir.to_path_buf(),
        cause,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(fail(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it exists and is not a folder",
        )));
    }
    // Deepest first, the folders that do not exist yet.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|folder| !folder.as_os_str().is_empty() && !folder.exists())
        .collect();
    let checked = fs::create_dir_all(dir).and_then(|()| {
        let probe = dir.join(temporary_name("imggen-probe"));
        let written = write_whole(&probe, b"imggen");
        let _ = fs::remove_file(&probe);
        written
    });
    for folder in missing {
        // Only empty folders go; one that another process filled meanwhile stays.
        let _ = fs::remove_dir(folder);
    }
    checked.map_err(fail)
}

fn temporary_name(name: &str) -> String {
    format!(".{name}.{:016x}.part", fastrand::u64(..))
}

/// Creates `path` (never over an existing file), writes all of `bytes`, flushes, syncs and
/// checks the length on disk.
fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = File::options().write(true).create_new(true).open(path)?;
    fill(file, bytes)
}

/// Writes all of `bytes` to a new, empty `file`, flushes, syncs and checks the length on
/// disk.
fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    finish(file, bytes.len() as u64)
}

/// Flushes and syncs a file `expected` bytes were written to, and checks its length on disk.
fn finish(mut file: File, expected: u64) -> io::Result<()> {
    file.flush()?;
    file.sync_all()?;
    let length = file.metadata()?.len();
    if length != expected {
        return Err(io::Error::other(format!(
            "{length} of {expected} bytes reached the disk"
        )));
    }
    Ok(())
}

/// Syncs a folder so a rename in it is durable. Filesystems that cannot sync a folder say
/// so with `EINVAL`; that is not a failed write.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|folder| folder.sync_all()) {
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_replaces_the_whole_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomically(dir.path(), "t-1.png", b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomically(dir.path(), "t-1.png", b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["t-1.png"]);
    }

    #[test]
    fn a_write_that_cannot_happen_names_the_path_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), b"x").unwrap();
        let blocked = dir.path().join("file").join("sub");
        let error = write_atomically(&blocked, "x.png", b"x").unwrap_err();
        assert!(
            error.to_string().starts_with(&format!(
                "could not write {}",
                blocked.join("x.png").display()
            )),
            "{error}"
        );
        // A folder where the file should go: the rename fails, the temporary file is removed.
        fs::create_dir(dir.path().join("taken.png")).unwrap();
        fs::write(dir.path().join("taken.png").join("inside"), b"x").unwrap();
        assert!(write_atomically(dir.path(), "taken.png", b"new").is_err());
        assert_eq!(names(dir.path()), ["file", "taken.png"]);
    }

    #[test]
    fn a_full_device_is_an_error_not_a_success() {
        // /dev/full answers every write with ENOSPC: the same error a full disk gives, seen
        // by the same calls.
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let file = File::options().write(true).open(full).unwrap();
        let error = fill(file, &[7u8; 64 * 1024]).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28), "{error}");
    }

    #[test]
    fn a_file_written_in_pieces_is_whole_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomically_with(dir.path(), "results.jsonl", |out| {
            for n in 0..10_000 {
                writeln!(out, "{{\"line\":{n}}}")?;
            }
            Ok(())
        })
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 10_000);
        assert!(text.ends_with("{\"line\":9999}\n"));
        // The writer's own failure halfway: the earlier file stays, no temporary is left.
        let error = write_atomically_with(dir.path(), "results.jsonl", |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("the journal could not be read"))
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("the journal could not be read"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert_eq!(names(dir.path()), ["results.jsonl"]);
    }

    #[test]
    fn the_probe_leaves_no_trace_and_refuses_a_file_where_a_folder_should_be() {
        let dir = tempfile::tempdir().unwrap();
        check_writable_dir(&dir.path().join("new/deeper")).unwrap();
        assert!(names(dir.path()).is_empty(), "the folders it made are gone");
        fs::create_dir(dir.path().join("kept")).unwrap();
        check_writable_dir(&dir.path().join("kept")).unwrap();
        assert_eq!(names(dir.path()), ["kept"]);
        assert!(names(&dir.path().join("kept")).is_empty());
        fs::write(dir.path().join("a-file"), b"x").unwrap();
        let error = check_writable_dir(&dir.path().join("a-file")).unwrap_err();
        assert!(error.to_string().contains("not a folder"), "{error}");
    }

    #[test]
    fn a_new_file_never_replaces_one_that_is_there() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hero-1.png"), b"mine").unwrap();
        let first = write_new_atomically(dir.path(), "hero-1", "png", b"paid").unwrap();
        assert_eq!(first, dir.path().join("hero-1-2.png"));
        let second = write_new_atomically(dir.path(), "hero-1", "png", b"paid too").unwrap();
        assert_eq!(second, dir.path().join("hero-1-3.png"));
        assert_eq!(fs::read(dir.path().join("hero-1.png")).unwrap(), b"mine");
        assert_eq!(fs::read(&second).unwrap(), b"paid too");
        let fresh = write_new_atomically(dir.path(), "lamp-1", "png", b"x").unwrap();
        assert_eq!(fresh, dir.path().join("lamp-1.png"));
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|name| !is_temporary_name(name)),
            "no temporary file left: {names:?}"
        );
    }

    #[test]
    fn temporary_names_are_recognised_and_nothing_else() {
        let name = temporary_name("run_1-1.png");
        assert!(is_temporary_name(&name), "{name}");
        assert!(!is_temporary_name("run_1-1.png"));
        assert!(!is_temporary_name(".hidden.part"));
        assert!(!is_temporary_name(".x.0123456789abcdeg.part"));
    }
}
