//! A check of an audio file's headers before the decoder reads them.
//!
//! The decoder allocates each Vorbis comment (FLAC, Ogg Vorbis) and each FLAC picture at the
//! length the file states (a 32-bit number) before it reads a byte of it, so an 8 KB file can
//! make it ask for gigabytes. A length that runs past the end of its block (FLAC, or what there
//! is of the block) or packet (Ogg) is refused here instead. A WAV file whose format chunk
//! states no sample rate, no channels or no block size (which the decoder divides by) is
//! refused too. Other formats pass untouched: the decoder judges everything else.
#![warn(clippy::arithmetic_side_effects)]

/// Why a file's headers were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadHeader {
    #[error("a Vorbis comment states a length past the end of its block")]
    Comment,
    #[error("a FLAC picture states a length past the end of its block")]
    Picture,
    #[error("the WAV format chunk states no sample rate, no channels or no block size")]
    WavFormat,
}

/// Checks the Vorbis comment and picture blocks of a FLAC file, the comment header of an Ogg
/// Vorbis file, or the format chunk of a WAV file. The format probe finds a file's marker
/// wherever it starts, after any junk, so the check starts at the first of the markers it
/// knows.
pub fn check_comment_lengths(bytes: &[u8]) -> Result<(), BadHeader> {
    let start = bytes
        .windows(4)
        .position(|w| w == b"fLaC" || w == b"OggS" || w == b"RIFF")
        .unwrap_or(0);
    let bytes = bytes.get(start..).unwrap_or_default();
    if let Some(rest) = bytes.strip_prefix(b"fLaC") {
        return check_flac(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"RIFF") {
        return check_wav(rest);
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
/// length) and checks every VORBIS_COMMENT (type 4) and PICTURE (type 6) block within its own
/// length, or within what there is of it when the file ends first.
fn check_flac(mut rest: &[u8]) -> Result<(), BadHeader> {
    const VORBIS_COMMENT: u8 = 4;
    const PICTURE: u8 = 6;
    while let Some((&[kind, a, b, c], after)) = rest.split_first_chunk::<4>() {
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        let (block, next) = after.split_at_checked(len).unwrap_or((after, &[]));
        match kind & 0x7f {
            VORBIS_COMMENT => check_comment(block)?,
            PICTURE => check_picture(block)?,
            _ => {}
        }
        if kind & 0x80 != 0 || next.is_empty() {
            break;
        }
        rest = next;
    }
    Ok(())
}

/// A FLAC picture: type, MIME type (length and bytes), description (length and bytes), width,
/// height, depth, colours, then the data (length and bytes); 32-bit big-endian numbers, and
/// every length must fit in what is left of `block`.
fn check_picture(block: &[u8]) -> Result<(), BadHeader> {
    let bad = BadHeader::Picture;
    let (_, rest) = block.split_first_chunk::<4>().ok_or(bad)?;
    let (mime_len, rest) = read_u32_be(rest).ok_or(bad)?;
    let (_, rest) = rest.split_at_checked(mime_len).ok_or(bad)?;
    let (desc_len, rest) = read_u32_be(rest).ok_or(bad)?;
    let (_, rest) = rest.split_at_checked(desc_len).ok_or(bad)?;
    let (_, rest) = rest.split_first_chunk::<16>().ok_or(bad)?;
    let (data_len, rest) = read_u32_be(rest).ok_or(bad)?;
    rest.split_at_checked(data_len).ok_or(bad)?;
    Ok(())
}

/// Walks a RIFF WAVE file's chunks (id, 32-bit little-endian size, body padded to an even
/// length) and checks its `fmt ` chunk: channels, sample rate and block size all non-zero.
fn check_wav(rest: &[u8]) -> Result<(), BadHeader> {
    // The RIFF size, then the form type.
    let Some((_, rest)) = rest.split_first_chunk::<4>() else {
        return Ok(());
    };
    let Some(mut rest) = rest.strip_prefix(b"WAVE") else {
        return Ok(());
    };
    while let Some((id, after)) = rest.split_first_chunk::<4>() {
        let Some((len, after)) = read_u32(after) else {
            return Ok(());
        };
        if id == b"fmt " {
            // format tag (2), channels (2), sample rate (4), byte rate (4), block align (2).
            let Some(fmt) = after.get(..14) else {
                return Ok(());
            };
            let u16_at = |i: usize| {
                fmt.get(i..i.saturating_add(2))
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u16::from_le_bytes)
            };
            let rate = fmt
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes);
            if u16_at(2) == 0 || rate == 0 || u16_at(12) == 0 {
                return Err(BadHeader::WavFormat);
            }
            return Ok(());
        }
        let padded = len.saturating_add(len & 1);
        let Some((_, next)) = after.split_at_checked(padded) else {
            return Ok(());
        };
        rest = next;
    }
    Ok(())
}

/// A Vorbis comment: vendor length and vendor, a count, then each comment's length and bytes,
/// all lengths 32-bit little-endian; every length must fit in what is left of `block`.
fn check_comment(block: &[u8]) -> Result<(), BadHeader> {
    let bad = BadHeader::Comment;
    let (vendor_len, rest) = read_u32(block).ok_or(bad)?;
    let (_, rest) = rest.split_at_checked(vendor_len).ok_or(bad)?;
    let (count, mut rest) = read_u32(rest).ok_or(bad)?;
    for _ in 0..count {
        let (len, after) = read_u32(rest).ok_or(bad)?;
        let (_, after) = after.split_at_checked(len).ok_or(bad)?;
        rest = after;
    }
    Ok(())
}

fn read_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (word, rest) = bytes.split_first_chunk::<4>()?;
    Some((usize::try_from(u32::from_le_bytes(*word)).ok()?, rest))
}

fn read_u32_be(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (word, rest) = bytes.split_first_chunk::<4>()?;
    Some((usize::try_from(u32::from_be_bytes(*word)).ok()?, rest))
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
        assert_eq!(check_comment_lengths(&file), Err(BadHeader::Comment));
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
        assert_eq!(check_comment_lengths(&flac(&c)), Err(BadHeader::Comment));
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
        assert_eq!(check_comment_lengths(&file), Err(BadHeader::Comment));
    }

    fn picture(mime: &[u8], data_len: u32, data: &[u8]) -> Vec<u8> {
        let mut out = 3u32.to_be_bytes().to_vec();
        out.extend_from_slice(&(mime.len() as u32).to_be_bytes());
        out.extend_from_slice(mime);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&data_len.to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    fn flac_block(kind: u8, block: &[u8], stated: usize) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        out.extend_from_slice(&[
            kind,
            (stated >> 16) as u8,
            (stated >> 8) as u8,
            stated as u8,
        ]);
        out.extend_from_slice(block);
        out
    }

    #[test]
    fn a_flac_picture_longer_than_its_block_is_refused() {
        let honest = picture(b"image/png", 3, b"abc");
        assert_eq!(
            check_comment_lengths(&flac_block(0x86, &honest, honest.len())),
            Ok(())
        );
        let lying = picture(b"image/png", 4_293_075_472, b"abc");
        assert_eq!(
            check_comment_lengths(&flac_block(0x86, &lying, lying.len())),
            Err(BadHeader::Picture)
        );
        // The block itself says it is longer than the file: its picture is checked against
        // what there is (the fuzzer's file: a 4 GB picture in 20 bytes).
        assert_eq!(
            check_comment_lengths(&flac_block(0x86, &lying, 0x86_8686)),
            Err(BadHeader::Picture)
        );
        let fuzzed = b"\x04fLaC\x86\x86\x86\x86\x86\x86\x86\x00\xff\xe3\x22\x10\x00\x00\x07\x00";
        assert_eq!(check_comment_lengths(fuzzed), Err(BadHeader::Picture));
    }

    fn wav(channels: u16, rate: u32, block_align: u16) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        out.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        out.extend_from_slice(b"fmt \x10\0\0\0");
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&block_align.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out
    }

    #[test]
    fn a_wav_format_without_rate_channels_or_block_size_is_refused() {
        assert_eq!(check_comment_lengths(&wav(1, 8000, 2)), Ok(()));
        assert_eq!(
            check_comment_lengths(&wav(1, 0, 2)),
            Err(BadHeader::WavFormat)
        );
        assert_eq!(
            check_comment_lengths(&wav(0, 8000, 2)),
            Err(BadHeader::WavFormat)
        );
        assert_eq!(
            check_comment_lengths(&wav(1, 8000, 0)),
            Err(BadHeader::WavFormat)
        );
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
