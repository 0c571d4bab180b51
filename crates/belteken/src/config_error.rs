//! The error of a configuration file: where it is (file, line, key) and what is wrong. Below
//! every module that reads a part of the file (`config`, `trunks`, `providers`, `web_config`).

/// A configuration error that names where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}
