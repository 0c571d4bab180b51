//! A check of an audio file's Vorbis comments (FLAC and Ogg Vorbis) before the decoder reads them.
//!
//! The decoder allocates each comment at the length the file states (a 32-bit number) before
//! it reads a byte of it, so an 8 KB file can make it ask for gigabytes. A length that runs past
//! the end of its block (FLAC) or packet (Ogg) is refused here instead. Other formats, and files
//! without comments, pass untouched: the decoder judges everything else.
#![warn(clippy::arithmetic_side_effects)]

/// Why a file's comments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Vorbis comment states a length past the end of its block")]
pub struct BadComment;

/// Checks the Vorbis comment block of a FLAC file or the comment header of an Ogg Vorbis file.
/// The format probe finds a file's marker wherever it starts, after any junk, so the check
/// starts at the first of the markers it knows.
pub fn check_comment_lengths(bytes: &[u8]) -> Result<(), BadComment> {
    let start = bytes
        .windows(4)
        .position(|w| w == b"fLaC" || w == b"OggS" || w == b"RIFF")
        .unwrap_or(0);
    let bytes = bytes.get(start..).unwrap_or_default();
    if let Some(rest) = bytes.strip_prefix(b"fLaC") {
        return check_flac(rest);
    }
    if bytes.starts_with(b"OggS") {
        if let Some(packet) = ogg_second_packet(bytes) {
            if let Some(comment) = packet.strip_prefix(b"\x03vorbis") {
                return check_comment(comment);
            }
        }
    }
    Ok(())
}

/// Walks FLAC's metadata blocks (a header byte with the last-block flag and the type, a 24-bit
/// length) and checks every VORBIS_COMMENT block (type 4) within its own length.
fn check_flac(mut rest: &[u8]) -> Result<(), BadComment> {
    const VORBIS_COMMENT: u8 = 4;
    while let Some((&[kind, a, b, c], after)) = rest.split_first_chunk::<4>() {
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        let Some((block, next)) = after.split_at_checked(len) else {
            // A block cut short: the decoder says what is wrong.
            return Ok(());
        };
        if kind & 0x7f == VORBIS_COMMENT {
            check_comment(block)?;
        }
        if kind & 0x80 != 0 {
            break;
        }
        rest = next;
    }
    Ok(())
}

/// A Vorbis comment: vendor length and vendor, a count, then each comment's length and bytes,
/// all lengths 32-bit little-endian; every length must fit in what is left of `block`.
fn check_comment(block: &[u8]) -> Result<(), BadComment> {
    let (vendor_len, rest) = read_u32(block).ok_or(BadComment)?;
    let (_, rest) = rest.split_at_checked(vendor_len).ok_or(BadComment)?;
    let (count, mut rest) = read_u32(rest).ok_or(BadComment)?;
    for _ in 0..count {
        let (len, after) = read_u32(rest).ok_or(BadComment)?;
        let (_, after) = after.split_at_checked(len).ok_or(BadComment)?;
        rest = after;
    }
    Ok(())
}

fn read_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (word, rest) = bytes.split_first_chunk::<4>()?;
    Some((usize::try_from(u32::from_le_bytes(*word)).ok()?, rest))
}

/// The second packet of the file's first logical stream (Vorbis's comment header), put
/// together from its pages' lacing; `None` when the pages end or break off before it does.
fn ogg_second_packet(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut serial = None;
    let mut packets = 0usize;
    let mut packet = Vec::new();
    let mut rest = bytes;
    while let Some(after_magic) = rest.strip_prefix(b"OggS") {
        // version, flags, granule (8), serial (4), sequence (4), CRC (4), segment count.
        let (header, after) = after_magic.split_first_chunk::<23>()?;
        let [.., n_segments] = *header;
        let this_serial = header.get(10..14)?;
        let (lacing, mut body) = after.split_at_checked(usize::from(n_segments))?;
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let (page_body, next) = body.split_at_checked(body_len)?;
        body = page_body;
        let ours = *serial.get_or_insert(this_serial) == this_serial;
        if ours {
            for &len in lacing {
                let (segment, more) = body.split_at_checked(usize::from(len))?;
                body = more;
                if packets == 1 {
                    packet.extend_from_slice(segment);
                }
                if len < 255 {
                    packets = packets.checked_add(1)?;
                    if packets == 2 {
                        return Some(packet);
                    }
                }
            }
        }
        rest = next;
    }
    None
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn comment(vendor: &[u8], comments: &[&[u8]], lie: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        out.extend_from_slice(vendor);
        out.extend_from_slice(&(comments.len() as u32).to_le_bytes());
        for (i, c) in comments.iter().enumerate() {
            let len = match lie {
                Some(l) if i + 1 == comments.len() => l,
                _ => c.len() as u32,
            };
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    fn flac(comment: &[u8]) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        // STREAMINFO (34 bytes of zeros), then the comment as the last block.
        out.extend_from_slice(&[0, 0, 0, 34]);
        out.extend_from_slice(&[0; 34]);
        let len = comment.len();
        out.extend_from_slice(&[0x84, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.extend_from_slice(comment);
        out
    }

    fn ogg_page(serial: u32, lacing: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = b"OggS".to_vec();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(lacing);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn junk_before_the_marker_does_not_hide_a_lie() {
        let c = comment(b"encoder", &[b"TITLE=story"], Some(2_400_000_000));
        let file = [b"\x04junk".as_slice(), &flac(&c)].concat();
        assert_eq!(check_comment_lengths(&file), Err(BadComment));
        let wav = [b"RIFF".as_slice(), &flac(&c)].concat();
        assert_eq!(check_comment_lengths(&wav), Ok(()));
    }

    #[test]
    fn honest_flac_comments_pass() {
        let c = comment(b"encoder", &[b"TITLE=story", b"ARTIST=x"], None);
        assert_eq!(check_comment_lengths(&flac(&c)), Ok(()));
    }

    #[test]
    fn a_flac_comment_longer_than_its_block_is_refused() {
        let c = comment(b"encoder", &[b"TITLE=story"], Some(2_400_000_000));
        assert_eq!(check_comment_lengths(&flac(&c)), Err(BadComment));
    }

    #[test]
    fn an_ogg_comment_header_across_pages_is_put_together() {
        let mut header = b"\x03vorbis".to_vec();
        header.extend_from_slice(&comment(b"v", &[&[b'a'; 300], b"B=c"], None));
        // The identification packet (30 bytes), then the comment header over two pages.
        let mut file = ogg_page(
            7,
            &[30, 255],
            &[[0u8; 30].as_slice(), &header[..255]].concat(),
        );
        let tail = &header[255..];
        file.extend(ogg_page(7, &[tail.len() as u8], tail));
        assert_eq!(check_comment_lengths(&file), Ok(()));

        let mut lying = b"\x03vorbis".to_vec();
        lying.extend_from_slice(&comment(b"v", &[&[b'a'; 300], b"B=c"], Some(u32::MAX)));
        let mut file = ogg_page(
            7,
            &[30, 255],
            &[[0u8; 30].as_slice(), &lying[..255]].concat(),
        );
        let tail = &lying[255..];
        file.extend(ogg_page(7, &[tail.len() as u8], tail));
        assert_eq!(check_comment_lengths(&file), Err(BadComment));
    }

    #[test]
    fn any_prefix_of_a_file_gives_an_answer() {
        let c = comment(b"encoder", &[b"TITLE=story"], None);
        let f = flac(&c);
        for n in 0..=f.len() {
            let _ = check_comment_lengths(&f[..n]);
        }
    }
}
