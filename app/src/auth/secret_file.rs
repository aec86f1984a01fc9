//! Small secrets kept in the data directory, readable by the server's user only.

use std::io::Write as _;
use std::path::Path;

/// Reads a 32-byte secret, creating it from the OS CSPRNG on first use.
pub fn read_or_create(path: &Path) -> Result<[u8; 32], String> {
    match std::fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|_| format!("{} must hold exactly 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            write_private(path, &secret)?;
            Ok(secret)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Creates `dir` and its missing parents with mode 0700: the data directory holds the keys and,
/// on SQLite, the password hashes. A directory that exists keeps the mode its owner gave it.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Creates an empty file of mode 0600 unless it exists (SQLite then gives its journal files the same mode).
pub fn create_private_file(path: &Path) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Writes mode 0600 through a temporary file and a rename, so a crash never leaves half a file.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    out.write_all(contents)
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
