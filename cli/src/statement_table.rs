//! A settlement statement as people read it (`coalition settlement show`): the gross matrices
//! (rows pay columns), net positions, who pays whom, and each issuer's points. Partners are named
//! from the genesis (a key prefix if absent); money is shown from integer minor units with two
//! decimals and the currency code. Rendering is the CLI's job; the statement itself is protocol
//! (`coalition_core::settlement`).

use coalition_core::genesis::Genesis;
use coalition_core::record::PartnerId;
use coalition_core::settlement::SettlementStatement;
use std::fmt::Write as _;

/// The whole report.
pub(crate) fn render(s: &SettlementStatement, genesis: &Genesis) -> String {
    let t = Table::new(s, genesis);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = t
        .header(&mut out)
        .and_then(|()| t.matrices(&mut out))
        .and_then(|()| t.net_positions(&mut out))
        .and_then(|()| t.transfers(&mut out))
        .and_then(|()| t.per_issuer(&mut out));
    out
}

/// A statement with its partners' names, being written out section by section.
struct Table<'a> {
    s: &'a SettlementStatement,
    genesis: &'a Genesis,
    names: Vec<String>,
}

impl<'a> Table<'a> {
    fn new(s: &'a SettlementStatement, genesis: &'a Genesis) -> Table<'a> {
        let names = s.partners.iter().map(|p| name(genesis, p)).collect();
        Table { s, genesis, names }
    }

    fn money(&self, minor_units: i128) -> String {
        format_money(minor_units, &self.s.currency)
    }

    fn header(&self, out: &mut String) -> std::fmt::Result {
        let (s, pv) = (self.s, self.s.point_value);
        writeln!(out, "Settlement statement — epoch {}", s.epoch)?;
        writeln!(
            out,
            "Point value {} per {} point{}; fee {} bps ({}%) conceded by the redeemer",
            self.money(i128::from(pv.minor_units)),
            pv.per_points,
            if pv.per_points == 1 { "" } else { "s" },
            s.fee_bps,
            format_minor(i128::from(s.fee_bps)),
        )?;
        writeln!(out, "Statement hash {}", s.hash())
    }

    /// One row per issuer, one column per redeemer, `-` on the diagonal.
    fn matrix(&self, cells: &[Vec<u64>], show: impl Fn(u64) -> String) -> String {
        let header: Vec<String> = std::iter::once("issuer \\ redeemer".to_string())
            .chain(self.names.iter().cloned())
            .collect();
        let rows: Vec<Vec<String>> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let row = cells.get(i);
                std::iter::once(n.clone())
                    .chain(
                        (0..self.names.len()).map(|j| match row.and_then(|r| r.get(j)) {
                            _ if i == j => "-".to_string(),
                            Some(&v) => show(v),
                            None => show(0),
                        }),
                    )
                    .collect()
            })
            .collect();
        grid(&header, &rows, &[0])
    }

    fn matrices(&self, out: &mut String) -> std::fmt::Result {
        let s = self.s;
        writeln!(
            out,
            "\nGross points owed (each row's issuer owes each column's redeemer)"
        )?;
        out.push_str(&self.matrix(&s.gross_points, |v| v.to_string()));
        writeln!(out, "\nGross money owed after the fee, {}", s.currency)?;
        out.push_str(&self.matrix(&s.gross_money, |v| format_minor(i128::from(v))));
        let transferred = s
            .transfers
            .iter()
            .map(|t| i128::from(t.amount))
            .fold(0, i128::saturating_add);
        writeln!(
            out,
            "Total gross {} settled by {} in transfers",
            self.money(i128::try_from(s.gross_total()).unwrap_or(i128::MAX)),
            self.money(transferred),
        )
    }

    fn net_positions(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "\nNet positions (received − paid)")?;
        let rows: Vec<Vec<String>> = self
            .names
            .iter()
            .zip(&self.s.net)
            .map(|(n, &v)| {
                let sign = if v > 0 { "+" } else { "" };
                let what = match v.signum() {
                    1 => "receives",
                    -1 => "pays",
                    _ => "even",
                };
                vec![
                    n.clone(),
                    format!("{sign}{}", self.money(i128::from(v))),
                    what.into(),
                ]
            })
            .collect();
        out.push_str(&grid(
            &["partner".into(), "net".into(), String::new()],
            &rows,
            &[0, 2],
        ));
        Ok(())
    }

    fn transfers(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "\nWho pays whom")?;
        if self.s.transfers.is_empty() {
            return writeln!(out, "  nothing to pay: every net position is zero");
        }
        let rows: Vec<Vec<String>> = self
            .s
            .transfers
            .iter()
            .map(|t| {
                let account = self
                    .genesis
                    .partner(&t.to)
                    .map(|g| g.settlement_account.clone())
                    .unwrap_or_default();
                vec![
                    name(self.genesis, &t.from),
                    "pays".into(),
                    name(self.genesis, &t.to),
                    self.money(i128::from(t.amount)),
                    account,
                ]
            })
            .collect();
        let header = ["payer", "", "payee", "amount", "to account"].map(String::from);
        out.push_str(&grid(&header, &rows, &[0, 1, 2, 4]));
        Ok(())
    }

    fn per_issuer(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "\nPoints per issuer")?;
        let rows: Vec<Vec<String>> = self
            .names
            .iter()
            .zip(&self.s.per_issuer)
            .map(|(n, t)| {
                let figures = [
                    t.opening,
                    t.issued,
                    t.redeemed,
                    t.expired,
                    t.restored,
                    t.outstanding,
                ];
                std::iter::once(n.clone())
                    .chain(figures.map(|v| v.to_string()))
                    .collect()
            })
            .collect();
        let header = [
            "issuer",
            "opening",
            "issued",
            "redeemed",
            "expired",
            "restored",
            "outstanding",
        ]
        .map(String::from);
        out.push_str(&grid(&header, &rows, &[0]));
        Ok(())
    }
}

fn name(genesis: &Genesis, p: &PartnerId) -> String {
    genesis
        .partner(p)
        .map_or_else(|| p.short(), |g| g.name.clone())
}

/// `minor_units` as a decimal with two places and the currency code: `-1462` → `"-14.62 EUR"`.
pub(crate) fn format_money(minor_units: i128, currency: &str) -> String {
    format!("{} {currency}", format_minor(minor_units))
}

/// `minor_units` as a decimal with two places: `-1462` → `"-14.62"`, `5` → `"0.05"`.
fn format_minor(minor_units: i128) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let abs = minor_units.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A text table, two spaces between columns, indented. Columns listed in `left` are left-aligned
/// (names, words); the others are right-aligned (numbers).
fn grid(header: &[String], rows: &[Vec<String>], left: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (k, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(k) {
                Some(slot) => *slot = (*slot).max(w),
                None => widths.push(w),
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from(" ");
        for (k, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(if k == 0 { " " } else { "  " });
            if left.contains(&k) {
                s.push_str(&format!("{cell:<w$}"));
            } else {
                s.push_str(&format!("{cell:>w$}"));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalition_core::settlement::{compute_statement, EpochActivity};
    use coalition_core::test_util::{high_street_epochs, test_genesis};

    #[test]
    fn hand_worked_example_renders_for_people() {
        let (g, _, s1) = high_street_epochs();
        let text = render(&s1, &g);
        for needle in [
            "epoch 1",
            "Point value 0.01 EUR per 1 point;",
            "fee 250 bps (2.50%)",
            "Café",
            "Bookshop",
            "39.00",
            "14.63",
            "-14.62 EUR",
            "+15.59 EUR",
            "receives",
            "0.97 EUR",
            "ACCT-4",
            "outstanding",
            "4300",
            "Total gross 126.76 EUR settled by 24.37 EUR in transfers",
            &s1.hash().to_hex(),
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let pays: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(" pays "))
            .collect();
        assert_eq!(pays.len(), 3, "{text}");
        assert!(
            pays[0].contains("Café") && pays[0].contains("Fuel") && pays[0].contains("14.62 EUR")
        );
        // Columns line up: every row of the gross matrix has the same width as its header.
        let matrix: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Gross points"))
            .skip(1)
            .take(5)
            .collect();
        let width = |l: &str| l.chars().count();
        assert!(
            matrix.iter().all(|l| width(l) == width(matrix[0])),
            "{text}"
        );
    }

    #[test]
    fn a_quiet_epoch_has_nothing_to_pay() {
        let (g, _) = test_genesis(1);
        let s = compute_statement(&g, &EpochActivity::default(), None).unwrap();
        assert!(render(&s, &g).contains("nothing to pay"));
    }

    #[test]
    fn format_money_uses_integers() {
        assert_eq!(format_money(-1462, "EUR"), "-14.62 EUR");
        assert_eq!(format_money(5, "EUR"), "0.05 EUR");
        assert_eq!(format_money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
        assert_eq!(
            format_money(i128::from(u64::MAX), "EUR"),
            "184467440737095516.15 EUR"
        );
        assert_eq!(
            format_minor(i128::MIN),
            "-1701411834604692317316873037158841057.28"
        );
    }
}
