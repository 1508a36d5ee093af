//! The drop-in as data: blocks of evidence comments and directive lines, and the directives
//! left open with the reason. `Display` writes the unit file; scoring, diffing and reporting
//! read the value, never the text.

use std::fmt;

/// One `Directive=value` line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Setting {
    pub directive: String,
    /// As written in the unit file (already quoted where needed); empty resets a list.
    pub value: String,
}

impl Setting {
    pub fn new(directive: impl Into<String>, value: impl Into<String>) -> Self {
        Self { directive: directive.into(), value: value.into() }
    }

    /// `ProtectSystem=strict` as one string, split at the first `=`.
    pub fn parse(line: &str) -> Self {
        let (directive, value) = line.split_once('=').unwrap_or((line, ""));
        Self::new(directive, value)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.directive, self.value)
    }
}

/// A line of a block, in the order it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Evidence: written as `# text`.
    Comment(String),
    Setting(Setting),
}

/// Directive lines and the evidence they rest on, written together and followed by a blank
/// line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    pub entries: Vec<Entry>,
}

impl Block {
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.entries.push(Entry::Comment(text.into()));
        self
    }

    pub fn set(&mut self, directive: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push(Entry::Setting(Setting::new(directive, value)));
        self
    }

    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Setting(s) => Some(s),
            Entry::Comment(_) => None,
        })
    }

    /// The evidence comments, in order.
    pub fn comments(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Comment(c) => Some(c.as_str()),
            Entry::Setting(_) => None,
        })
    }
}

/// A directive not written, and the observation (or missing evidence) that prevented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOpen {
    pub directive: String,
    pub why: String,
}

/// A whole `[Service]` drop-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropIn {
    /// Comment lines above `[Service]`: what it is for and what it was made from.
    pub header: Vec<String>,
    pub blocks: Vec<Block>,
    /// Advice that is not a directive, written after the blocks.
    pub notes: Vec<String>,
    pub left_open: Vec<LeftOpen>,
}

/// The comment that introduces the list of directives left open.
pub const LEFT_OPEN_TITLE: &str = "Left open, with the observation that prevented each:";

impl DropIn {
    /// Every directive line, in the order systemd reads them.
    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.blocks.iter().flat_map(Block::settings)
    }
}

impl fmt::Display for DropIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.header {
            writeln!(f, "# {line}")?;
        }
        f.write_str("\n[Service]\n")?;
        for block in &self.blocks {
            for entry in &block.entries {
                match entry {
                    Entry::Comment(text) => writeln!(f, "# {text}")?,
                    Entry::Setting(setting) => writeln!(f, "{setting}")?,
                }
            }
            f.write_str("\n")?;
        }
        for note in &self.notes {
            writeln!(f, "# {note}")?;
        }
        if !self.left_open.is_empty() {
            writeln!(f, "# {LEFT_OPEN_TITLE}")?;
            for open in &self.left_open {
                writeln!(f, "#   {}=: {}", open.directive, open.why)?;
            }
        }
        Ok(())
    }
}
