//! An optional LLM judge over any OpenAI-compatible `/chat/completions` endpoint.
//!
//! Plain `http://` only (a local server or proxy): the workspace carries no TLS stack. The judge
//! is asked for a 0-10 rating at temperature 0 and the first number of its answer is used.
//! `OPENAI_API_KEY`, when set, is sent as a bearer token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{FtError, Result};
use crate::grade::Judge;

/// A judge reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpJudge {
    host_port: String,
    path: String,
    model: String,
}

const TIMEOUT: Duration = Duration::from_secs(120);

impl HttpJudge {
    /// A judge at `url` (`http://host[:port]/v1`) using `model`.
    pub fn new(url: &str, model: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            FtError::Setting(format!("--judge-url `{url}`: only http:// endpoints are supported (put a local proxy in front of https)"))
        })?;
        let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host_port.is_empty() {
            return Err(FtError::Setting(format!("--judge-url `{url}` has no host")));
        }
        let host_port = if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:80")
        };
        let path = format!("/{}/chat/completions", path.trim_matches('/')).replace("//", "/");
        Ok(Self {
            host_port,
            path,
            model: model.to_string(),
        })
    }

    fn post(&self, body: &str) -> Result<String> {
        let err = |e: std::io::Error| FtError::Judge(format!("{}: {e}", self.host_port));
        let mut stream = TcpStream::connect(&self.host_port).map_err(err)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(err)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(err)?;
        let auth = std::env::var("OPENAI_API_KEY")
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
            self.path,
            self.host_port,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(err)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(err)?;
        parse_http_response(&raw)
    }
}

/// The body of an HTTP/1.1 response (plain or chunked); a non-2xx status is an error.
pub fn parse_http_response(raw: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| FtError::Judge("truncated HTTP response".into()))?;
    let status = head.lines().next().unwrap_or("");
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !(200..300).contains(&code) {
        return Err(FtError::Judge(format!(
            "the endpoint answered `{status}`: {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_string())
    }
}

fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| FtError::Judge("bad chunked body".into()))?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| FtError::Judge(format!("bad chunk size `{size_line}`")))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| FtError::Judge("truncated chunk".into()))?;
        out.push_str(chunk);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// The first number in a judge's answer, read as a 0-10 rating and scaled to [0, 1].
pub fn rating_from_answer(answer: &str) -> Option<f64> {
    let start = answer.find(|c: char| c.is_ascii_digit())?;
    let number: String = answer[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .trim_end_matches('.')
        .parse::<f64>()
        .ok()
        .map(|n| (n / 10.0).clamp(0.0, 1.0))
}

impl Judge for HttpJudge {
    fn name(&self) -> String {
        format!("{} at {}{}", self.model, self.host_port, self.path)
    }

    fn rate(&mut self, ideal: &str, prediction: &str) -> Result<f64> {
        let prompt = format!(
            "Rate from 0 to 10 how well the candidate support reply matches the reference reply in meaning and correctness. Answer with the number only.\n\nReference reply:\n{ideal}\n\nCandidate reply:\n{prediction}"
        );
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": prompt}],
        });
        let answer = self.post(&body.to_string())?;
        let value: Value = serde_json::from_str(&answer)
            .map_err(|e| FtError::Judge(format!("answer is not JSON ({e})")))?;
        let content = value["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| FtError::Judge("answer has no choices[0].message.content".into()))?;
        rating_from_answer(content)
            .ok_or_else(|| FtError::Judge(format!("no rating in the judge's answer `{content}`")))
    }
}
