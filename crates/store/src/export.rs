//! The delivery export: a ZIP with `signatures.csv` (no number, no key), the recordings of
//! counted signatures as `recordings/<id>.wav`, and `summary.csv` (per day, per country, per
//! Belgian region against the campaign's thresholds).

use std::fmt::Write as _;
use std::io::{Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::prelude::*;
use crate::registry::summarise;
use crate::{BelgianRegion, StoreError};

fn zip_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Export(e.to_string())
}

fn io_err(source: std::io::Error) -> StoreError {
    StoreError::Io {
        what: "write the export",
        source,
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Writes the campaign's export ZIP to `out`, reading one recording at a time. Returns the
/// number of signatures listed.
pub fn export<W: Write + Seek>(store: &dyn Store, slug: &str, out: W) -> Result<u64, StoreError> {
    let settings = store.campaign_settings(slug)?;
    let rows = store.signature_rows(slug)?;
    let mut zip = ZipWriter::new(out);
    let deflate = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o600);
    // WAV barely compresses; storing it saves time.
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(0o600);

    let mut sigs = String::from(
        "id,time,country,region,number_type,state,trust,verified,flow_version,recording\n",
    );
    for r in &rows {
        let recording = if r.has_recording && r.state.is_counted(settings.count_policy) {
            format!("recordings/{}.wav", r.id)
        } else {
            String::new()
        };
        let _ = writeln!(
            sigs,
            "{},{},{},{},{},{},{},{},{},{}",
            r.id,
            csv(&r.created_at),
            csv(r.country.as_deref().unwrap_or("")),
            r.be_region.map(BelgianRegion::as_str).unwrap_or(""),
            r.kind.map(|k| k.as_str()).unwrap_or(""),
            r.state.as_str(),
            r.trust.as_str(),
            r.verified,
            csv(r.flow_version.as_deref().unwrap_or("")),
            recording,
        );
    }
    zip.start_file("signatures.csv", deflate).map_err(zip_err)?;
    zip.write_all(sigs.as_bytes()).map_err(io_err)?;

    for r in rows
        .iter()
        .filter(|r| r.has_recording && r.state.is_counted(settings.count_policy))
    {
        // A recording erased between the listing and now is simply absent.
        if let Some(wav) = store.recording(slug, r.id)? {
            zip.start_file(format!("recordings/{}.wav", r.id), stored)
                .map_err(zip_err)?;
            zip.write_all(&wav).map_err(io_err)?;
        }
    }

    let s = summarise(&rows, settings.count_policy);
    let mut sum = String::from("section,key,verified,unverified,threshold,reached\n");
    let _ = writeln!(sum, "total,all,{},{},,", s.total.0, s.total.1);
    for (day, (v, u)) in &s.days {
        let _ = writeln!(sum, "day,{},{v},{u},,", csv(day));
    }
    for (country, (v, u)) in &s.countries {
        let _ = writeln!(sum, "country,{},{v},{u},,", csv(country));
    }
    for region in [
        BelgianRegion::Flanders,
        BelgianRegion::Wallonia,
        BelgianRegion::Brussels,
    ] {
        let n = s.regions.get(region.as_str()).copied().unwrap_or(0);
        let threshold = settings.region_thresholds.of(region);
        let reached = if n >= threshold { "yes" } else { "no" };
        let _ = writeln!(
            sum,
            "be_region,{},{n},0,{threshold},{reached}",
            region.as_str()
        );
    }
    zip.start_file("summary.csv", deflate).map_err(zip_err)?;
    zip.write_all(sum.as_bytes()).map_err(io_err)?;
    zip.finish().map_err(zip_err)?;
    Ok(rows.len() as u64)
}
