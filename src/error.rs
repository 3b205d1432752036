//! The one error type: something that stopped a run (findings are data, not errors).

use crate::exit::ExitStatus;

/// What kind of failure stopped the run; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad flags or environment.
    Usage,
    /// Invalid configuration file.
    Config,
    /// A source (node, database, snapshot file) could not be read.
    Source,
    /// A report could not be written.
    Report,
}

/// An error with the operation and object in its message and never a secret.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    /// The kind, which picks the exit code.
    pub kind: ErrorKind,
    /// Human message naming what failed and where.
    pub msg: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error without an underlying cause.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// A new error wrapping its cause.
    pub fn with_source(
        kind: ErrorKind,
        msg: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            msg: msg.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The exit status this error maps to.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self.kind {
            ErrorKind::Usage | ErrorKind::Config => ExitStatus::Usage,
            ErrorKind::Source | ErrorKind::Report => ExitStatus::Incomplete,
        }
    }

    /// The message followed by each cause, `a: b: c`. A cause whose text the message already
    /// ends with is not said twice: many errors (`mysql_async`'s I/O error, `std::io::Error`
    /// wrapping another) put their source's text in their own.
    #[must_use]
    pub fn chain(&self) -> String {
        let mut out = self.msg.clone();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            let text = e.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cur = e.source();
        }
        out
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wraps(std::io::Error);
    impl std::fmt::Display for Wraps {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Input/output error: {}", self.0)
        }
    }
    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::other("broken pipe");
        let e = Error::with_source(ErrorKind::Source, "reading `nacos`", Wraps(io));
        assert_eq!(
            e.chain(),
            "reading `nacos`: Input/output error: broken pipe"
        );
        let e = Error::with_source(
            ErrorKind::Source,
            "reading `nacos`",
            std::io::Error::other("refused"),
        );
        assert_eq!(e.chain(), "reading `nacos`: refused");
    }
}
