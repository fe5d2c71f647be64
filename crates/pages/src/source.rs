//! Where the pages get their data: a [`PageSource`] returns view models, so the pages know
//! nothing of SQL and tests render from fixtures.

use std::future::Future;

use crate::model::{Download, Leaderboard, OperatorPage, PipelineLink, RoundPage, SubmissionPage};

/// A data source's failure. Its text goes to the log, never to a page.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The data behind the pages. Every method answers `Ok(None)` for something that does not exist
/// (the page says "not found"); `Err` is the source's own failure (the page says the data could
/// not be read, and the message is logged only).
pub trait PageSource: Send + Sync + 'static {
    /// The pipelines with a leaderboard, in menu order.
    fn pipelines(&self) -> impl Future<Output = Result<Vec<PipelineLink>, SourceError>> + Send;

    /// The current leaderboard of `pipeline`.
    fn leaderboard(
        &self,
        pipeline: &str,
    ) -> impl Future<Output = Result<Option<Leaderboard>, SourceError>> + Send;

    /// One submission.
    fn submission(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<SubmissionPage>, SourceError>> + Send;

    /// One epoch or round of `pipeline`; `None`: the latest.
    fn round(
        &self,
        pipeline: &str,
        epoch: Option<i64>,
    ) -> impl Future<Output = Result<Option<RoundPage>, SourceError>> + Send;

    /// The operator's view of the queue and workers.
    fn operator(&self) -> impl Future<Output = Result<OperatorPage, SourceError>> + Send;

    /// The bytes of a file `submission` produced. The pages ask only for names listed in that
    /// submission's [`SubmissionPage::files`], so a source need not check again, but may.
    fn file(
        &self,
        submission: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Download>, SourceError>> + Send;
}
