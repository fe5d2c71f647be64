//! The pages as HTML: pure functions from view models to markup (maud escapes every value).
//! Each page with live updates has a *region* (the part that changes) that the server-sent
//! events endpoint re-renders; the page carries that region's version so the stream only sends
//! a change.

use std::hash::{DefaultHasher, Hash, Hasher};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::charts;
use crate::model::{
    CrownHolder, Finding, Leaderboard, LeaderboardRow, OperatorPage, PipelineLink, RoundPage,
    Stage, Status, SubmissionPage,
};
use crate::text::{self, scrub};

/// A column the leaderboard can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// The pipeline's rank (default).
    Rank,
    /// Hotkey, alphabetically.
    Hotkey,
    /// Score, best first by default.
    Score,
    /// Weight share.
    Weight,
    /// Submitted-at block.
    Block,
    /// Status.
    Status,
}

impl SortKey {
    const ALL: [SortKey; 6] = [
        Self::Rank,
        Self::Hotkey,
        Self::Score,
        Self::Weight,
        Self::Block,
        Self::Status,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Rank => "rank",
            Self::Hotkey => "hotkey",
            Self::Score => "score",
            Self::Weight => "weight",
            Self::Block => "block",
            Self::Status => "status",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Self::Rank => "Rank",
            Self::Hotkey => "Hotkey",
            Self::Score => "Score",
            Self::Weight => "Weight",
            Self::Block => "Block",
            Self::Status => "Status",
        }
    }

    /// The order a first click gives: the useful end first.
    fn natural_descending(self, higher_is_better: bool) -> bool {
        match self {
            Self::Score => higher_is_better,
            Self::Weight => true,
            _ => false,
        }
    }
}

/// How the leaderboard is sorted: from the `sort` and `order` query parameters; anything unknown
/// falls back to the rank order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub key: SortKey,
    /// Largest first.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::Rank,
            descending: false,
        }
    }
}

impl Sort {
    /// Parses the query parameters (`sort=score&order=desc`); `None` or unknown values give the
    /// column's natural order, or the rank order.
    pub fn parse(key: Option<&str>, order: Option<&str>, higher_is_better: bool) -> Self {
        let Some(key) = SortKey::ALL.into_iter().find(|k| Some(k.as_str()) == key) else {
            return Self::default();
        };
        let descending = match order {
            Some("desc") => true,
            Some("asc") => false,
            _ => key.natural_descending(higher_is_better),
        };
        Self { key, descending }
    }

    fn query(self) -> String {
        format!(
            "sort={}&order={}",
            self.key.as_str(),
            if self.descending { "desc" } else { "asc" }
        )
    }

    /// Sorts `rows` in place; rows without the value go last either way, ties keep rank order.
    pub fn apply(self, rows: &mut [LeaderboardRow]) {
        fn opt<T: PartialOrd>(a: Option<T>, b: Option<T>, desc: bool) -> std::cmp::Ordering {
            use std::cmp::Ordering::*;
            match (a, b) {
                (Some(a), Some(b)) => {
                    let o = a.partial_cmp(&b).unwrap_or(Equal);
                    if desc { o.reverse() } else { o }
                }
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (None, None) => Equal,
            }
        }
        let d = self.descending;
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
        rows.sort_by(|a, b| {
            let primary = match self.key {
                SortKey::Rank => opt(a.rank, b.rank, d),
                SortKey::Hotkey => opt(Some(&a.hotkey), Some(&b.hotkey), d),
                SortKey::Score => opt(finite(a.score), finite(b.score), d),
                SortKey::Weight => opt(finite(a.weight_share), finite(b.weight_share), d),
                SortKey::Block => opt(a.submitted_block, b.submitted_block, d),
                SortKey::Status => opt(Some(a.status), Some(b.status), d),
            };
            primary.then_with(|| opt(a.rank, b.rank, false))
        });
    }
}

/// A path segment, percent-encoded (everything but unreserved characters).
pub fn seg(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The version of a region: a hash of its HTML, so the live stream sends only changes.
pub fn version(region: &str) -> String {
    let mut h = DefaultHasher::new();
    region.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Where a page sits, for the navigation's `aria-current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Leaderboards, submissions and rounds.
    Boards,
    /// The operator's page.
    Operator,
}

/// A page: title, section, breadcrumbs (label, link; the last one is the page itself), body.
fn layout(
    title: &str,
    section: Section,
    crumbs: &[(&str, Option<String>)],
    live: bool,
    body: Markup,
) -> Markup {
    let current = |s: Section| (s == section).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · assay" }
                link rel="stylesheet" href="/assets/style.css";
                @if live { script src="/assets/live.js" defer {} }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "assay" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="/" aria-current=[current(Section::Boards)] { "Leaderboards" } }
                            li { a href="/operator" aria-current=[current(Section::Operator)] { "Operator" } }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if crumbs.len() > 1 {
                        nav.crumbs aria-label="Breadcrumb" {
                            ol {
                                @for (i, (label, href)) in crumbs.iter().enumerate() {
                                    li {
                                        @match (href, i + 1 == crumbs.len()) {
                                            (_, true) => { span aria-current="page" { (label) } }
                                            (Some(h), false) => { a href=(h) { (label) } }
                                            (None, false) => { span { (label) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (body)
                }
                footer {
                    p { "Served by an assay validator. Times are UTC." }
                }
            }
        }
    }
}

/// A live region: `events` is the stream's URL (without the version), `region` its content.
fn live_region(events: &str, region: Markup) -> Markup {
    let v = version(&region.0);
    let sep = if events.contains('?') { '&' } else { '?' };
    html! {
        p.live-note #live-status role="status" aria-live="polite" {}
        div #live data-live={ (events) (sep) "v=" (v) } {
            (region)
        }
    }
}

fn time(ms: i64) -> Markup {
    let (shown, attr) = text::time(ms);
    html! { time datetime=(attr) { (shown) } }
}

fn status_badge(s: Status) -> Markup {
    let class = match s {
        Status::Queued => "st st-queued",
        Status::Running => "st st-running",
        Status::Done => "st st-done",
        Status::Held => "st st-held",
        Status::Rejected => "st st-rejected",
        Status::Failed => "st st-failed",
    };
    html! { span class=(class) { (s.label()) } }
}

fn hotkey(hk: &str) -> Markup {
    html! { code.hk title=(hk) { (hk) } }
}

fn score_with(score: Option<f64>, unc: Option<f64>) -> Markup {
    html! {
        span.num { (text::score(score)) }
        @if let Some(u) = text::uncertainty(unc) { " " span.unc { (u) } }
    }
}

fn submission_href(id: &str) -> String {
    format!("/submission/{}", seg(id))
}

fn board_href(pipeline: &str) -> String {
    format!("/board/{}", seg(pipeline))
}

fn round_href(pipeline: &str, epoch: i64) -> String {
    format!("/round/{}/{epoch}", seg(pipeline))
}

/// The index: every pipeline's board.
pub fn index_page(pipelines: &[PipelineLink]) -> Markup {
    let body = html! {
        h1 { "Leaderboards" }
        @if pipelines.is_empty() {
            p { "This validator runs no competition yet." }
        } @else {
            ul.cards {
                @for p in pipelines {
                    li.card {
                        h2 { a href=(board_href(&p.id)) { (p.title) } }
                        p { (p.summary) }
                        p.meta { (p.entries) " on the board · " a href={ "/round/" (seg(&p.id)) } { "latest round" } }
                    }
                }
            }
        }
    };
    layout(
        "Leaderboards",
        Section::Boards,
        &[("Leaderboards", None)],
        false,
        body,
    )
}

fn crowns(holders: &[CrownHolder]) -> Markup {
    html! {
        section.crowns aria-labelledby="crowns-h" {
            h2 #crowns-h { "Crowns" }
            p { "The owner of the best architecture family takes 60 % of the weight; the owner of that family's best training variant takes 40 % (one hotkey may hold both)." }
            ul {
                @for c in holders {
                    li.crown {
                        strong { (capitalise(c.tier.label())) } " (" (text::percent(c.share)) "): "
                        a href=(submission_href(&c.submission_id)) { (hotkey(&c.hotkey)) }
                        " · family " code { (c.family) }
                        @if c.score.is_some() { " · score " (text::score(c.score)) }
                    }
                }
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The live part of a leaderboard: crowns and the sorted table.
pub fn leaderboard_region(lb: &Leaderboard, sort: Sort) -> Markup {
    let mut rows = lb.rows.clone();
    sort.apply(&mut rows);
    let base = board_href(&lb.pipeline);
    let order_word = if sort.descending {
        "descending"
    } else {
        "ascending"
    };
    html! {
        @if !lb.crowns.is_empty() { (crowns(&lb.crowns)) }
        @if rows.is_empty() {
            p { "No submissions on this board yet." }
        } @else {
            div.scroll tabindex="0" role="region" aria-labelledby="board-caption" {
                table.board {
                    caption #board-caption {
                        (lb.title) " leaderboard, sorted by " (sort.key.as_str()) ", " (order_word)
                        ". Score: " (lb.score_label) ", " (if lb.higher_is_better { "higher is better" } else { "lower is better" }) "."
                    }
                    thead {
                        tr {
                            @for key in SortKey::ALL {
                                @let current = sort.key == key;
                                @let next = Sort {
                                    key,
                                    descending: if current { !sort.descending } else { key.natural_descending(lb.higher_is_better) },
                                };
                                th scope="col" aria-sort=[current.then_some(order_word)] {
                                    a href={ (base) "?" (next.query()) } {
                                        (key.header())
                                        @if current { span aria-hidden="true" { (if sort.descending { " ▼" } else { " ▲" }) } }
                                    }
                                }
                            }
                        }
                    }
                    tbody {
                        @for r in &rows {
                            tr {
                                td.num { @if let Some(rank) = r.rank { (rank) } @else { "–" } }
                                td {
                                    a href=(submission_href(&r.submission_id)) { (hotkey(&r.hotkey)) }
                                    @for c in &r.crowns { " " span.badge { (c.label()) } }
                                }
                                td { (score_with(r.score, r.uncertainty)) }
                                td {
                                    @if let Some(w) = r.weight_share { span.num { (text::percent(w)) } }
                                    @if let Some(u) = r.weight_u16 { " " span.unc { "(u16 " (u) ")" } }
                                    @if r.weight_share.is_none() && r.weight_u16.is_none() { "–" }
                                }
                                td.num { @if let Some(b) = r.submitted_block { (b) } @else { "–" } }
                                td { (status_badge(r.status)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A pipeline's leaderboard page.
pub fn leaderboard_page(lb: &Leaderboard, sort: Sort) -> Markup {
    let events = format!("{}/events?{}", board_href(&lb.pipeline), sort.query());
    let body = html! {
        h1 { (lb.title) " leaderboard" }
        p.meta {
            @if let Some(e) = lb.epoch { "Epoch " a href=(round_href(&lb.pipeline, e)) { (e) } " · " }
            @if let Some(b) = lb.latest_block { "latest block " (b) " · " }
            (lb.rows.len()) " entries"
        }
        (live_region(&events, leaderboard_region(lb, sort)))
    };
    layout(
        &format!("{} leaderboard", lb.title),
        Section::Boards,
        &[("Leaderboards", Some("/".into())), (&lb.title, None)],
        true,
        body,
    )
}

fn stages(list: &[Stage]) -> Markup {
    html! {
        ol.stages {
            @for s in list {
                li class={ "stage stage-" (format!("{:?}", s.state).to_lowercase()) } {
                    span.stage-name { (s.name) }
                    " — " span.stage-state { (s.state.label()) }
                    @if let Some(d) = &s.detail { span.stage-detail { " · " (scrub(d)) } }
                    @if let Some(t) = s.at_ms { " · " (time(t)) }
                }
            }
        }
    }
}

fn findings_list(list: &[Finding]) -> Markup {
    html! {
        ul.findings {
            @for f in list {
                li class={ "finding sev-" (format!("{:?}", f.severity).to_lowercase()) } {
                    strong { (capitalise(f.severity.label())) ": " }
                    (scrub(&f.message))
                    " " span.unc { "(" code { (f.code) } ")" }
                }
            }
        }
    }
}

/// The live part of a submission page: everything below the heading.
pub fn submission_region(s: &SubmissionPage) -> Markup {
    html! {
        dl.facts {
            dt { "Status" } dd #status { (status_badge(s.status)) }
            dt { "Miner" } dd { (hotkey(&s.hotkey)) }
            dt { "Competition" } dd { a href=(board_href(&s.pipeline)) { (s.pipeline_title) } }
            @if let Some(e) = s.epoch { dt { "Epoch" } dd { a href=(round_href(&s.pipeline, e)) { (e) } } }
            @if let Some(t) = s.submitted_at_ms { dt { "Received" } dd { (time(t)) } }
            @if let Some(b) = s.submitted_block { dt { "Block" } dd { (b) } }
            @if let Some(w) = &s.worker {
                dt { "Worker" } dd { (w.name) @if let Some(d) = &w.device { " on " (d) } }
            }
            dt { (capitalise(&s.score_label)) } dd #score { (score_with(s.score, s.uncertainty)) }
            @if let Some(r) = s.rank { dt { "Rank" } dd { (r) } }
        }
        @if !s.stages.is_empty() {
            section aria-labelledby="progress-h" {
                h2 #progress-h { "Progress" }
                (stages(&s.stages))
            }
        }
        @if let Some(f) = &s.failure {
            section.failure aria-labelledby="failure-h" {
                h2 #failure-h { "Why it did not score" }
                p { (scrub(f)) }
            }
        }
        @if !s.findings.is_empty() {
            section aria-labelledby="findings-h" {
                h2 #findings-h { "Integrity findings" }
                (findings_list(&s.findings))
            }
        }
        @if !s.tasks.is_empty() {
            section aria-labelledby="tasks-h" {
                h2 #tasks-h { "Scores per task" }
                div.scroll tabindex="0" role="region" aria-label="Table of task scores" {
                    table {
                        thead { tr { th scope="col" { "Task" } th scope="col" { "Score" } th scope="col" { "Weight" } } }
                        tbody {
                            @for t in &s.tasks {
                                tr {
                                    th scope="row" { (t.task) }
                                    td { (score_with(t.score, t.uncertainty)) }
                                    td.num { @if let Some(w) = t.weight { (text::percent(w)) } @else { "–" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = s.curve.as_ref().filter(|c| !c.points.is_empty()) {
            section aria-labelledby="curve-h" {
                h2 #curve-h { "Curve" }
                figure.chart {
                    (PreEscaped(charts::curve_svg(c, &capitalise(&c.y_label))))
                    figcaption { (capitalise(&c.y_label)) " by " (c.x_label) ", " (c.points.len()) " points." }
                }
                details {
                    summary { "The numbers" }
                    @let keep = charts::thin(c.points.len(), charts::CURVE_POINTS);
                    div.scroll tabindex="0" role="region" aria-label="Curve values" {
                        table {
                            thead { tr { th scope="col" { (c.x_label) } th scope="col" { (c.y_label) } } }
                            tbody {
                                @for i in keep {
                                    tr { td.num { (c.points[i].0) } td.num { (format!("{:.4}", c.points[i].1)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !s.files.is_empty() {
            section aria-labelledby="files-h" {
                h2 #files-h { "Files" }
                ul.files {
                    @for f in &s.files {
                        li {
                            a href={ (submission_href(&s.id)) "/files/" (seg(&f.name)) } download=(f.name) { (f.name) }
                            " · " (f.description) " · " (text::bytes(f.size))
                        }
                    }
                }
            }
        }
    }
}

/// A submission's page.
pub fn submission_page(s: &SubmissionPage) -> Markup {
    let body = html! {
        h1 { "Submission " code.id { (s.id) } }
        @if s.status.is_final() {
            div #live { (submission_region(s)) }
        } @else {
            (live_region(&format!("{}/events", submission_href(&s.id)), submission_region(s)))
        }
    };
    let board = board_href(&s.pipeline);
    layout(
        &format!("Submission {}", s.id),
        Section::Boards,
        &[
            ("Leaderboards", Some("/".into())),
            (&s.pipeline_title, Some(board)),
            (&s.id, None),
        ],
        !s.status.is_final(),
        body,
    )
}

/// An epoch or round's page.
pub fn round_page(r: &RoundPage) -> Markup {
    let moves: Vec<(String, f64)> = r
        .weights
        .iter()
        .filter(|w| w.previous_share.is_some() || !r.history.is_empty())
        .map(|w| (w.hotkey.clone(), w.share - w.previous_share.unwrap_or(0.0)))
        .collect();
    let body = html! {
        h1 { (r.pipeline_title) ", round " (r.epoch) }
        nav.pager aria-label="Rounds" {
            @if let Some(p) = r.previous { a href=(round_href(&r.pipeline, p)) rel="prev" { "← round " (p) } }
            @if let Some(n) = r.next { a href=(round_href(&r.pipeline, n)) rel="next" { "round " (n) " →" } }
        }
        dl.facts {
            dt { "Status" } dd { (r.status) }
            dt { "Started" } dd { (time(r.starts_at_ms)) }
            @if let Some(e) = r.ends_at_ms { dt { "Ended" } dd { (time(e)) } }
            dt { "Winner" }
            dd {
                @if let Some(w) = &r.winner {
                    a href=(submission_href(&w.submission_id)) { (hotkey(&w.hotkey)) }
                    @if w.score.is_some() { " · score " (text::score(w.score)) }
                } @else { "none yet" }
            }
        }
        section aria-labelledby="weights-h" {
            h2 #weights-h { "Weights" }
            @if r.weights.is_empty() {
                p { "No weights were set for this round." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Table of weights" {
                    table {
                        thead { tr {
                            th scope="col" { "Hotkey" } th scope="col" { "Share" } th scope="col" { "u16" }
                            th scope="col" { "Round before" } th scope="col" { "Change" }
                        } }
                        tbody {
                            @for w in &r.weights {
                                tr {
                                    th scope="row" { (hotkey(&w.hotkey)) }
                                    td.num { (text::percent(w.share)) }
                                    td.num { (w.weight_u16) }
                                    td.num { @if let Some(p) = w.previous_share { (text::percent(p)) } @else { "–" } }
                                    td.num { (format!("{:+.1}", (w.share - w.previous_share.unwrap_or(0.0)) * 100.0)) " pp" }
                                }
                            }
                        }
                    }
                }
            }
            @if !moves.is_empty() {
                figure.chart {
                    (PreEscaped(charts::movement_svg(&moves, "Change of weight share since the round before")))
                    figcaption { "Change of each hotkey's weight share since the round before, in percentage points." }
                }
            }
            @if r.history.len() >= 2 {
                figure.chart {
                    (PreEscaped(charts::history_svg(&r.history, 6, "Weight share over recent rounds")))
                    figcaption { "Weight share of the largest holders over the last " (r.history.len()) " rounds." }
                }
            }
        }
        section aria-labelledby="exploits-h" {
            h2 #exploits-h { "Exploit findings" }
            @if r.findings.is_empty() {
                p { "None in this round." }
            } @else {
                ul.findings {
                    @for f in &r.findings {
                        li class={ "finding sev-" (format!("{:?}", f.finding.severity).to_lowercase()) } {
                            a href=(submission_href(&f.submission_id)) { (hotkey(&f.hotkey)) } ": "
                            strong { (capitalise(f.finding.severity.label())) } " — " (scrub(&f.finding.message))
                            " " span.unc { "(" code { (f.finding.code) } ")" }
                        }
                    }
                }
            }
        }
    };
    layout(
        &format!("{} round {}", r.pipeline_title, r.epoch),
        Section::Boards,
        &[
            ("Leaderboards", Some("/".into())),
            (&r.pipeline_title, Some(board_href(&r.pipeline))),
            (&format!("Round {}", r.epoch), None),
        ],
        false,
        body,
    )
}

/// The live part of the operator's page.
pub fn operator_region(o: &OperatorPage) -> Markup {
    html! {
        section aria-labelledby="queue-h" {
            h2 #queue-h { "Queue" }
            dl.facts {
                dt { "Waiting" } dd #queue-depth { (o.queue_depth) }
                @for (state, n) in &o.jobs_by_state { dt { "Jobs " (state) } dd { (n) } }
                @if let Some(b) = o.latest_block { dt { "Latest block" } dd { (b) } }
            }
        }
        section aria-labelledby="workers-h" {
            h2 #workers-h { "Workers" }
            @if o.workers.is_empty() {
                p { "No worker has been seen." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Table of workers" {
                    table {
                        thead { tr {
                            th scope="col" { "Worker" } th scope="col" { "Devices" } th scope="col" { "Job" }
                            th scope="col" { "Submission" } th scope="col" { "Last seen" }
                        } }
                        tbody {
                            @for w in &o.workers {
                                tr {
                                    th scope="row" { (w.name) }
                                    td { (w.devices) }
                                    td.num { @if let Some(j) = w.job { (j) } @else { "idle" } }
                                    td { @if let Some(s) = &w.submission_id { a href=(submission_href(s)) { code { (s) } } } @else { "–" } }
                                    td { @if let Some(t) = w.last_seen_ms { (time(t)) } @else { "–" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="failures-h" {
            h2 #failures-h { "Recent failures" }
            @if o.failures.is_empty() {
                p { "No failures." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Table of failures" {
                    table {
                        thead { tr {
                            th scope="col" { "When" } th scope="col" { "Job" } th scope="col" { "Kind" }
                            th scope="col" { "Submission" } th scope="col" { "Whose fault" } th scope="col" { "What happened" }
                        } }
                        tbody {
                            @for f in &o.failures {
                                tr {
                                    td { (time(f.at_ms)) }
                                    td.num { (f.job) }
                                    td { (f.kind) }
                                    td { @if let Some(s) = &f.submission_id { a href=(submission_href(s)) { code { (s) } } } @else { "–" } }
                                    td { (f.blame) }
                                    td { (scrub(&f.message)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The operator's page.
pub fn operator_page(o: &OperatorPage) -> Markup {
    let body = html! {
        h1 { "Operator" }
        (live_region("/operator/events", operator_region(o)))
    };
    layout(
        "Operator",
        Section::Operator,
        &[("Operator", None)],
        true,
        body,
    )
}

/// A page saying what went wrong (never the source's own message).
pub fn error_page(title: &str, message: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (message) }
        p { a href="/" { "Back to the leaderboards" } }
    };
    layout(title, Section::Boards, &[(title, None)], false, body)
}
