//! What goes to standard output: aligned tables and key/value lines for people, or exactly one JSON
//! document with `--json`.
//!
//! Everything is written through [`Output`], which returns write errors instead of panicking as
//! `println!` does, so `main` can treat a closed pipe (`coalition ... | head`) as a normal end.

use anyhow::{Context as _, Result};
use coalition_core::genesis::Genesis;
use coalition_core::record::{PartnerId, Timestamp};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Where results go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// Whether `--json` was given.
    pub json: bool,
}

impl Output {
    /// Writes `text` to standard output as is.
    pub(crate) fn raw(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("writing to standard output")
    }

    /// Writes one line.
    pub(crate) fn line(&self, text: impl AsRef<str>) -> Result<()> {
        let mut s = String::from(text.as_ref());
        s.push('\n');
        self.raw(&s)
    }

    /// Writes `value` as the one JSON document of this run.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut s = serde_json::to_string_pretty(value).context("encoding the JSON output")?;
        s.push('\n');
        self.raw(&s)
    }

    /// Writes `label  value` lines with the labels aligned.
    pub(crate) fn fields(&self, rows: &[(&str, String)]) -> Result<()> {
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut s = String::new();
        for (k, v) in rows {
            s.push_str(&pad(k, width, Align::Left));
            s.push_str("  ");
            s.push_str(v);
            s.push('\n');
        }
        self.raw(&s)
    }

    /// Writes a table.
    pub(crate) fn table(&self, table: &Table) -> Result<()> {
        self.raw(&table.render())
    }
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A plain text table: a header row and aligned columns, two spaces apart.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub(crate) fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra cells are dropped).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, no trailing spaces.
    pub(crate) fn render(&self) -> String {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (h, _))| {
                self.rows
                    .iter()
                    .map(|r| cell(r, i).chars().count())
                    .chain([h.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(&pad(cell(row, i), *width, *align));
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

fn cell(row: &[String], i: usize) -> &str {
    row.get(i).map(String::as_str).unwrap_or("")
}

fn pad(text: &str, width: usize, align: Align) -> String {
    let fill = " ".repeat(width.saturating_sub(text.chars().count()));
    match align {
        Align::Left => format!("{text}{fill}"),
        Align::Right => format!("{fill}{text}"),
    }
}

/// Last second `humantime` can format (end of year 9999).
const MAX_FORMATTABLE: u64 = 253_402_300_799;

/// A ledger timestamp as RFC 3339 UTC (`2025-03-01T12:00:00Z`); absurd ones as raw seconds.
pub(crate) fn time(ts: Timestamp) -> String {
    if ts > MAX_FORMATTABLE {
        return format!("@{ts}");
    }
    match UNIX_EPOCH.checked_add(Duration::from_secs(ts)) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => format!("@{ts}"),
    }
}

/// A partner's display name if the genesis is known, else its short id.
pub(crate) fn partner_name(genesis: Option<&Genesis>, id: &PartnerId) -> String {
    genesis
        .and_then(|g| g.partner(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| id.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_unicode_and_numbers() {
        let mut t = Table::new(&[("NAME", Align::Left), ("POINTS", Align::Right)]);
        t.row(vec!["Café Lumière".into(), "5".into()]);
        t.row(vec!["B".into(), "1200".into()]);
        assert_eq!(
            t.render(),
            "NAME          POINTS\nCafé Lumière       5\nB               1200\n"
        );
    }

    #[test]
    fn times() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(u64::MAX), format!("@{}", u64::MAX));
    }
}
