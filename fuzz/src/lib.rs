//! What the fuzz targets share: splitting one input into fields, and the filters for findings
//! that are known and being fixed (so that a run keeps looking for new ones).

/// Splits `data` at NUL bytes into exactly `N` fields (missing ones empty, the last takes the
/// rest), so one input can stand for a request's headers and body.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N - 1) {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                *slot = &rest[..i];
                rest = &rest[i + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out[N - 1] = rest;
    out
}

/// Regions the caller-number targets try: the ones campaigns use, one the parser does not
/// know, and an empty one.
pub const REGIONS: &[&str] = &["BE", "NL", "FR", "US", "GB", "XX", ""];
