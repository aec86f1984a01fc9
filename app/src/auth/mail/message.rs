//! A mail's content, as one plain-text part and one simple HTML part of the same words.

use lettre::message::{Mailbox, MultiPart};

/// What a mail says: the use cases fill it in (see `notices`), this turns it into a message.
pub(crate) struct Letter {
    /// What it is about (`reset_link`, `new_sign_in` …): the logs and the queue name it, never
    /// the message.
    pub kind: &'static str,
    pub subject: String,
    pub paragraphs: Vec<String>,
    /// A button in HTML, a line of its own in text: (label, URL).
    pub action: Option<(String, String)>,
    /// After the action: what to do if this was not the reader.
    pub closing: Vec<String>,
}

impl Letter {
    pub(crate) fn text(&self) -> String {
        let mut parts: Vec<String> = self.paragraphs.clone();
        if let Some((label, url)) = &self.action {
            parts.push(format!("{label}:\n{url}"));
        }
        parts.extend(self.closing.iter().cloned());
        parts.push("-- \nBaton".into());
        parts.join("\n\n") + "\n"
    }

    pub(crate) fn html(&self) -> String {
        let paragraph = |p: &String| format!("<p>{}</p>", escape(p));
        let mut body: Vec<String> = self.paragraphs.iter().map(paragraph).collect();
        if let Some((label, url)) = &self.action {
            body.push(format!(
                "<p><a href=\"{url}\" style=\"display:inline-block;padding:10px 18px;background:#3b5bdb;color:#fff;\
                 border-radius:6px;text-decoration:none\">{label}</a></p>\
                 <p style=\"font-size:13px;color:#555\">Or open this address: {url}</p>",
                url = escape(url),
                label = escape(label)
            ));
        }
        body.extend(self.closing.iter().map(paragraph));
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#222;max-width:560px\">\
             {body}<p style=\"color:#555\">Baton</p></body></html>",
            title = escape(&self.subject),
            body = body.join("")
        )
    }

    /// The whole RFC 5322 message, from `from` to `to`.
    pub(crate) fn message(&self, from: &str, to: &str) -> Result<Vec<u8>, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("MAIL_FROM: {e}"))?;
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(&self.subject)
            .multipart(MultiPart::alternative_plain_html(self.text(), self.html()))
            .map(|message| message.formatted())
            .map_err(|e| e.to_string())
    }
}

/// Text into HTML: what a user typed (a username) must not become markup in a mail client.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Letter;

    fn letter() -> Letter {
        Letter {
            kind: "test",
            subject: "Reset <your> password".into(),
            paragraphs: vec!["Hello <b>alice</b>,".into(), "Someone asked.".into()],
            action: Some(("Choose a new password".into(), "https://baton.example/reset?token=abc&x=1".into())),
            closing: vec!["Not you? Ignore this mail.".into()],
        }
    }

    #[test]
    fn text_and_html_say_the_same_and_html_is_escaped() {
        let l = letter();
        let (text, html) = (l.text(), l.html());
        assert!(text.contains("Hello <b>alice</b>,") && text.contains("https://baton.example/reset?token=abc&x=1"));
        assert!(html.contains("Hello &lt;b&gt;alice&lt;/b&gt;,"), "{html}");
        assert!(html.contains("href=\"https://baton.example/reset?token=abc&amp;x=1\""), "{html}");
        assert!(!html.contains("<b>"));
        for words in ["Someone asked.", "Not you? Ignore this mail.", "Choose a new password"] {
            assert!(text.contains(words) && html.contains(words), "{words}");
        }
    }

    #[test]
    fn a_message_has_both_parts() {
        let bytes = letter().message("Baton <baton@localhost>", "alice@example.com").unwrap();
        let message = String::from_utf8(bytes).unwrap();
        assert!(message.contains("multipart/alternative"), "{message}");
        assert!(message.contains("text/plain") && message.contains("text/html"), "{message}");
        assert!(message.contains("To: alice@example.com"), "{message}");
        assert!(letter().message("Baton <baton@localhost>", "not an address").is_err());
    }
}
