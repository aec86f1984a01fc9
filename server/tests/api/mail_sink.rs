//! A real SMTP server for the tests: `scripts/smtp_sink.py` (Debian's aiosmtpd) on a loopback
//! port, keeping what it receives; the tests read the mails, decoded, as [`Mail`]s.

use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MailSink {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Mail {
    /// The token of the link to `path` (`/reset`, `/verify`) in the text part.
    pub fn link_token(&self, path: &str) -> String {
        let marker = format!("{path}?token=");
        let start = self.text.find(&marker).unwrap_or_else(|| panic!("no {path} link in {}", self.text)) + marker.len();
        self.text[start..].split(|c: char| c.is_whitespace()).next().unwrap().to_owned()
    }

    /// The whole link, as a person would open it.
    pub fn link(&self, path: &str) -> String {
        let token = self.link_token(path);
        let end = self.text.find(&token).unwrap() + token.len();
        let start = self.text[..end].rfind("http").expect("an absolute link");
        self.text[start..end].to_owned()
    }
}

impl MailSink {
    pub fn start() -> Self {
        Self::start_on(super::common::temp_dir(), 0)
    }

    fn start_on(dir: PathBuf, port: u16) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/smtp_sink.py");
        // Debian's python3, where apt put aiosmtpd (another python3 may come first on the PATH).
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&dir)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink (scripts/setup.sh --tests installs python3-aiosmtpd)");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP sink did not start: {line:?}"));
        Self { child: Some(child), port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far, in order.
    pub fn received(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }

    /// The mails to `to` so far.
    pub fn to(&self, to: &str) -> Vec<Mail> {
        self.received().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits (up to `within`) for the `n`th mail to `to` whose subject holds `subject`.
    pub async fn wait_for_nth(&self, to: &str, subject: &str, n: usize, within: Duration) -> Mail {
        let start = Instant::now();
        loop {
            let found: Vec<Mail> = self.to(to).into_iter().filter(|m| m.subject.contains(subject)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(start.elapsed() < within, "no mail {n} to {to} about {subject:?} within {within:?}: {found:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first mail to `to` whose subject holds `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Mail {
        self.wait_for_nth(to, subject, 1, Duration::from_secs(20)).await
    }

    /// Stops the server (a mail server that is down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, keeping what it received.
    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start_on(self.dir.clone(), self.port);
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.stop();
    }
}
