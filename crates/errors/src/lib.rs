//! What every assay error says besides its message: whose fault it is and what to do about it.
//!
//! Each crate keeps its own error enum (with its cause chain through `#[source]`) and implements
//! [`Diagnose`] for it. The front ends act on the two answers without matching on variants:
//! the CLI prints the hint under the message, the validator service retries [`Blame::Transient`]
//! failures and scores [`Blame::Miner`] failures zero, and the Python bindings raise one
//! exception class per blame.
#![warn(missing_docs)]

use std::error::Error;
use std::fmt;

/// Whose fault a failure is, which decides what a validator does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The submission is at fault (malformed data, a broken model, a bundle that breaks the rules):
    /// score it zero with the message as the reason; retrying cannot help.
    Miner,
    /// The validator's own configuration or inputs are wrong (a missing file, a bad flag, an
    /// unwritable output folder): stop and tell the operator; no miner should pay for it.
    Operator,
    /// A passing condition (out of memory, a lost database connection, a timeout that may not
    /// recur): retry the work, within the attempt limit.
    Transient,
    /// An internal invariant failed: a bug in assay. Report it; do not blame the miner.
    Bug,
}

impl Blame {
    /// The word used in logs, JSON and exception class names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Miner => "miner",
            Self::Operator => "operator",
            Self::Transient => "transient",
            Self::Bug => "bug",
        }
    }

    /// Whether the same work may succeed if tried again.
    pub fn is_retryable(self) -> bool {
        self == Self::Transient
    }
}

impl fmt::Display for Blame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that can say whose fault it is and what to do.
pub trait Diagnose: Error {
    /// Whose fault the failure is.
    fn blame(&self) -> Blame;

    /// What to do about it, when there is something better to say than the message itself.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The message of `error` followed by each of its causes, `: `-separated, the way people read an
/// error chain on one line (`cannot load model: config.json: missing field ...`).
///
/// Causes whose text the previous message already ends with are skipped, so an error that embeds
/// its source's text (many do) is not printed twice.
pub fn chain(error: &dyn Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// An I/O failure's blame: resources that come and go (interrupted calls, timeouts, a full disk
/// that may be cleared) are transient; a missing file or a denied permission is the operator's.
pub fn io_blame(error: &std::io::Error) -> Blame {
    use std::io::ErrorKind::*;
    match error.kind() {
        Interrupted | TimedOut | WouldBlock | ConnectionReset | ConnectionAborted
        | ConnectionRefused | BrokenPipe | StorageFull | OutOfMemory | ResourceBusy => {
            Blame::Transient
        }
        _ => Blame::Operator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot read round.json")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_joins_causes_and_skips_repeats() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(chain(&e), "cannot read round.json: no such file");

        #[derive(Debug)]
        struct Echo(std::io::Error);
        impl fmt::Display for Echo {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "x: {}", self.0)
            }
        }
        impl Error for Echo {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Echo(std::io::Error::other("boom"));
        assert_eq!(chain(&e), "x: boom");
    }

    #[test]
    fn io_blame_separates_passing_faults_from_setup() {
        use std::io::{Error, ErrorKind};
        assert_eq!(io_blame(&Error::from(ErrorKind::NotFound)), Blame::Operator);
        assert_eq!(
            io_blame(&Error::from(ErrorKind::PermissionDenied)),
            Blame::Operator
        );
        assert_eq!(
            io_blame(&Error::from(ErrorKind::TimedOut)),
            Blame::Transient
        );
        assert!(Blame::Transient.is_retryable());
        assert!(!Blame::Miner.is_retryable());
        assert_eq!(serde_json_like(Blame::Miner), "miner");
    }

    fn serde_json_like(b: Blame) -> String {
        b.to_string()
    }
}
