//! One error type for the whole crate. Every message names the input (file, column, row or
//! line where known), says what was expected, and carries a hint where one helps.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The input was read but does not have the expected shape or content.
    #[error("{}{}: {message}{}", path.display(), location_suffix(location), hint_suffix(hint))]
    BadInput {
        path: PathBuf,
        location: Option<String>,
        message: String,
        hint: Option<String>,
    },

    /// A setting (flag or config value) is invalid or inconsistent with the data.
    #[error("invalid setting: {message}{}", hint_suffix(hint))]
    Settings {
        message: String,
        hint: Option<String>,
    },

    /// The GPU backend could not be used for the requested work.
    #[error("GPU backend: {0}")]
    Gpu(String),

    /// An output file or directory could not be written.
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },

    /// A computation produced a non-finite number or could not proceed.
    #[error("numerical failure: {0}")]
    Numerical(String),

    /// The analysis was asked to stop (Ctrl-C in the Python package) after the named stage.
    #[error("interrupted after the `{0}` stage")]
    Interrupted(String),
}

fn location_suffix(location: &Option<String>) -> String {
    location
        .as_ref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default()
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\n  hint: {h}"))
        .unwrap_or_default()
}

impl Error {
    /// A [`Error::BadInput`] without location or hint.
    pub fn bad_input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.into(),
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A [`Error::Settings`] without hint.
    pub fn settings(message: impl Into<String>) -> Self {
        Error::Settings {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds (or replaces) the location of a [`Error::BadInput`]; other variants are unchanged.
    pub fn at(mut self, where_: impl Into<String>) -> Self {
        if let Error::BadInput { location, .. } = &mut self {
            *location = Some(where_.into());
        }
        self
    }

    /// Adds a hint to a [`Error::BadInput`] or [`Error::Settings`]; other variants are unchanged.
    pub fn hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::BadInput { hint, .. } | Error::Settings { hint, .. } => {
                *hint = Some(text.into())
            }
            _ => {}
        }
        self
    }
}
