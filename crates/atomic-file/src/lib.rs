//! Replaces a small file durably and all at once: the bytes go to a temporary file beside it,
//! which is fsynced, renamed over the file, and the directory fsynced, so that a crash leaves
//! either the old contents or the new, never a mix, and a rename that returned is not lost.
//!
//! One implementation for every such file of csp-ledger: the credential store, the API keys,
//! the sessions, the transparency log's signing key, the KurrentDB door's TLS key (all
//! [`Access::Private`]), the tiles and the door's certificates ([`Access::Public`]).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Its owner alone (mode 0600 on Unix): secrets, and what is derived from them.
    Private,
    /// As the process's umask allows.
    Public,
}

/// Numbers the temporary files of this process, so that two writers of one file never
/// share one.
static TEMPORARY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces the file at `path` with `bytes`. Its directory must exist. On an error the
/// temporary file is removed and the old contents stay.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        ));
    };
    let counter = TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temporary_name = name.to_os_string();
    temporary_name.push(format!(".tmp-{}-{counter}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = write_then_rename(&temporary, path, bytes, access);
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Replaces the file at `path` with `bytes` all at once (a reader sees the old contents or
/// the new), but not durably: nothing is fsynced, so a crash may lose the new contents or
/// leave the file empty. For files derived from durable data that can be rebuilt from it
/// (the Merkle tree's tiles), written too often to sync each one; [`sync`] them later.
pub fn replace_unsynced(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        ));
    };
    let counter = TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temporary_name = name.to_os_string();
    temporary_name.push(format!(".tmp-{}-{counter}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = open_new(&temporary, access)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Makes a file written by [`replace_unsynced`] durable: fsyncs it, then its directory.
pub fn sync(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()?;
    sync_directory(path)
}

/// Fsyncs the directory holding `path`, so that a rename or removal there is durable.
pub fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => fs::File::open(dir)?.sync_all(),
        None => fs::File::open(".")?.sync_all(),
    }
}

fn open_new(temporary: &Path, access: Access) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    // A fresh name each time: a file there is not ours, so it is not written through.
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::Private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = access;
    options.open(temporary)
}

fn write_then_rename(
    temporary: &Path,
    path: &Path,
    bytes: &[u8],
    access: Access,
) -> io::Result<()> {
    let mut file = open_new(temporary, access)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(temporary, path)?;
    sync_directory(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_contents_and_leaves_no_temporary_file() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        replace(&path, b"first", Access::Public)?;
        replace(&path, b"second", Access::Public)?;
        assert_eq!(fs::read(&path)?, b"second");
        let names: Vec<_> = fs::read_dir(dir.path())?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()?;
        assert_eq!(names, ["state.json"]);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_its_owners_alone_whatever_it_replaced() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret");
        fs::write(&path, b"old")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        replace(&path, b"new", Access::Private)?;
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn a_missing_directory_is_an_error_and_writes_nothing() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("absent").join("file");
        assert!(replace(&path, b"x", Access::Private).is_err());
        assert!(!dir.path().join("absent").exists());
        Ok(())
    }
}
