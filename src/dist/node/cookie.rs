//! The cookie: given, or read from `$HOME/.erlang.cookie`, which is created (mode 0400,
//! 20 random capital letters) when absent, as `erl` does.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dist::error::DistError;

/// The cookie file `erl` uses.
pub fn default_cookie_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".erlang.cookie"))
}

/// A given cookie must not be empty.
pub(crate) fn validate_cookie(cookie: &str) -> Result<(), DistError> {
    if cookie.is_empty() {
        return Err(DistError::InvalidOption {
            option: "cookie",
            reason: "the cookie is empty",
        });
    }
    Ok(())
}

/// Reads the cookie file at `path`, creating it first if it does not exist.
pub fn read_or_create_cookie(path: &Path) -> Result<String, DistError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let cookie = text.trim().to_owned();
            validate_cookie(&cookie)?;
            Ok(cookie)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_cookie(path),
        Err(error) => Err(error.into()),
    }
}

fn create_cookie(path: &Path) -> Result<String, DistError> {
    let mut random = [0u8; 20];
    getrandom::getrandom(&mut random)?;
    let cookie: String = random.iter().map(|b| char::from(b'A' + b % 26)).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o400);
    }
    let mut file = options.open(path)?;
    file.write_all(cookie.as_bytes())?;
    log::info!("created cookie file {}", path.display());
    Ok(cookie)
}
