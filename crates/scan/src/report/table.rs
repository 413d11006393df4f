//! The human-readable report: a summary line, then one block per package with its findings
//! (severity, installed and fixed versions, layer), most severe first.

use std::fmt::Write as _;

use crate::matcher::{Finding, FindingStatus};
use crate::report::{Counts, Report};

pub fn render(report: &Report<'_>) -> String {
    let mut out = String::new();
    let inv = report.inventory;
    let distro = inv
        .distro
        .as_ref()
        .map(|d| {
            d.pretty_name
                .clone()
                .unwrap_or_else(|| format!("{} {}", d.id, d.version_id))
        })
        .unwrap_or_else(|| "no distribution detected".to_owned());
    let _ = writeln!(out, "{} ({distro})", report.image.name);
    if let Some(digest) = &report.image.manifest_digest {
        let _ = writeln!(out, "manifest {digest}");
    }
    let _ = writeln!(
        out,
        "{} packages in {} layers",
        inv.packages.len(),
        inv.layers.len()
    );
    let Some(findings) = report.findings else {
        return out;
    };
    if let Some(db) = report.db {
        let _ = writeln!(out, "vulnerability DB {}", db.version);
    }
    let c = Counts::of(findings);
    let _ = writeln!(
        out,
        "Total: {} (CRITICAL: {}, HIGH: {}, MEDIUM: {}, LOW: {}, UNKNOWN: {}), {} fixable",
        c.total, c.critical, c.high, c.medium, c.low, c.unknown, c.fixable
    );
    for note in &inv.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if findings.is_empty() {
        return out;
    }
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut order: Vec<&Finding> = findings.iter().collect();
    order.sort_by(|a, b| {
        (a.package, std::cmp::Reverse(a.severity), &a.id).cmp(&(
            b.package,
            std::cmp::Reverse(b.severity),
            &b.id,
        ))
    });
    let mut last_package = None;
    for f in order {
        let Some(p) = inv.packages.get(f.package) else {
            continue;
        };
        let first = last_package != Some(f.package);
        last_package = Some(f.package);
        let fixed = match (f.status, &f.fixed_version) {
            (FindingStatus::Fixed, Some(v)) => v.clone(),
            (status, _) => status.as_str().replace('_', " "),
        };
        let layer = p
            .layer
            .and_then(|l| {
                inv.layers
                    .get(l)
                    .map(|info| format!("{l} {}", short(&info.digest)))
            })
            .unwrap_or_default();
        let vex = if f.vex.is_some() { " (VEX)" } else { "" };
        rows.push([
            if first { p.name.clone() } else { String::new() },
            if first {
                p.version.clone()
            } else {
                String::new()
            },
            f.severity.as_str().to_owned(),
            format!("{}{vex}", f.id),
            fixed,
            if first { layer } else { String::new() },
        ]);
    }
    let header = [
        "PACKAGE",
        "INSTALLED",
        "SEVERITY",
        "VULNERABILITY",
        "FIXED IN",
        "LAYER",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                let _ = write!(out, "{cell}");
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.to_owned(),
    }
}
