//! Policy files for tests: a TOML snippet, plus the lines or replacements a test adds.
//!
//! Most tests need a few lines (`mode = "enforce"`, a notification contact, a section
//! switched on); [`PolicyText`] builds exactly that text, writes it to a temporary file for
//! the `keyrotor` binary, or parses it for a step called in-process.

use std::io::Write;

use keyrotor::domain::policy::Policy;

/// The notification contact IAM tests need (a warning has to go somewhere).
pub const CONTACT: &str = "[notifications]\ndefault_contact = \"security@example.com\"\n";

/// Migrations switched on.
pub const MIGRATION: &str = "[migration]\nenabled = true\n";

/// The text of a policy file under construction.
#[derive(Clone, Debug)]
pub struct PolicyText {
    text: String,
}

impl PolicyText {
    /// The policy given by `toml` (a snippet; every omitted setting takes its default).
    pub fn toml(toml: &str) -> PolicyText {
        PolicyText {
            text: toml.to_owned(),
        }
    }

    /// Only `mode = "<mode>"`.
    pub fn mode(mode: &str) -> PolicyText {
        PolicyText::toml(&format!("mode = \"{mode}\"\n"))
    }

    /// `lines` added at the end (on a line of their own).
    pub fn with(mut self, lines: &str) -> PolicyText {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.push_str(lines);
        self
    }

    /// `from` replaced by `to`; `from` must be in the text.
    pub fn replace(mut self, from: &str, to: &str) -> PolicyText {
        assert!(self.text.contains(from), "the policy has no {from:?}");
        self.text = self.text.replace(from, to);
        self
    }

    /// The text as written to the file.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The policy as keyrotor parses it (the test fails if it does not).
    pub fn parse(&self) -> Policy {
        Policy::from_toml(&self.text, "test").expect("the test policy parses")
    }

    /// The text in a temporary file, for `keyrotor --config`.
    pub fn file(&self) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("a temporary policy file");
        file.write_all(self.text.as_bytes())
            .expect("write the policy file");
        if !self.text.ends_with('\n') {
            file.write_all(b"\n").expect("write the policy file");
        }
        file
    }
}
