//! ASCII armor (RFC 9580 §6): `-----BEGIN PGP ...-----`, optional headers, base64 body,
//! optional `=XXXX` CRC-24, `-----END PGP ...-----`. Several blocks in one file (a
//! keyring exported key by key) are decoded and concatenated.

use base64::Engine;

const BEGIN: &str = "-----BEGIN PGP ";

/// Binary OpenPGP data from either armored or binary input.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(BEGIN.as_bytes()) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(trimmed).map_err(|_| "armor is not valid UTF-8".to_owned())?;
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        if line.starts_with(BEGIN) {
            out.extend(decode_block(&mut lines)?);
        }
    }
    Ok(out)
}

/// Decodes one block after its BEGIN line, consuming lines through its END line.
/// Armor headers (`Key: value`) come first and end with a blank line; a block without
/// that blank line is read leniently as body text.
fn decode_block<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Result<Vec<u8>, String> {
    let mut in_headers = true;
    let mut body = String::new();
    let mut crc = None;
    for line in lines.by_ref() {
        if in_headers {
            if line.trim().is_empty() || line.contains(": ") {
                in_headers = !line.trim().is_empty();
                continue;
            }
            in_headers = false;
        }
        if line.starts_with("-----END PGP ") {
            let data = base64_decode(&body)?;
            check_crc(&data, crc)?;
            return Ok(data);
        }
        match line.strip_prefix('=') {
            Some(sum) if sum.len() == 4 => crc = Some(sum.to_owned()),
            _ => body.push_str(line.trim()),
        }
    }
    Err("armor has no END line".to_owned())
}

fn base64_decode(body: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("armor body is not base64: {e}"))
}

fn check_crc(data: &[u8], crc: Option<String>) -> Result<(), String> {
    let Some(text) = crc else { return Ok(()) };
    let expected = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|_| "armor checksum is not base64".to_owned())?;
    let actual = crc24(data).to_be_bytes();
    if expected[..] != actual[1..] {
        return Err("armor checksum does not match its body".to_owned());
    }
    Ok(())
}

/// CRC-24 as defined for OpenPGP armor.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor(data: &[u8], headers: &str) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(data);
        let crc = base64::engine::general_purpose::STANDARD.encode(&crc24(data).to_be_bytes()[1..]);
        format!("-----BEGIN PGP SIGNATURE-----\n{headers}\n{body}\n={crc}\n-----END PGP SIGNATURE-----\n")
    }

    #[test]
    fn binary_passes_through() {
        assert_eq!(decode(&[0x88, 1, 2]).unwrap(), vec![0x88, 1, 2]);
    }

    #[test]
    fn decodes_with_and_without_headers() {
        let data = b"\x88\x01\x02hello";
        assert_eq!(decode(armor(data, "").as_bytes()).unwrap(), data);
        let with = armor(data, "Comment: test\nVersion: x\n");
        assert_eq!(decode(with.as_bytes()).unwrap(), data);
    }

    #[test]
    fn detects_corruption() {
        let text = armor(b"\x88\x01\x02hello", "");
        let flipped = text.replacen("iAEC", "iAED", 1);
        assert_ne!(text, flipped);
        assert!(decode(flipped.as_bytes()).is_err());
        assert!(decode(b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n").is_err());
    }
}
