//! OpenPGP packet framing (RFC 9580 §4.2) and a bounds-checked byte reader. Only the
//! packets that keys and detached signatures consist of are expected, so partial body
//! lengths (used for streamed data packets) are refused.

pub(crate) const TAG_SIGNATURE: u8 = 2;
pub(crate) const TAG_SECRET_KEY: u8 = 5;
pub(crate) const TAG_PUBLIC_KEY: u8 = 6;
pub(crate) const TAG_SECRET_SUBKEY: u8 = 7;
pub(crate) const TAG_PUBLIC_SUBKEY: u8 = 14;

pub(crate) struct Packet<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

/// Splits `data` into packets.
pub(crate) fn split(data: &[u8]) -> Result<Vec<Packet<'_>>, String> {
    let mut reader = Reader::new(data);
    let mut packets = Vec::new();
    while !reader.is_empty() {
        let (tag, len) = header(&mut reader)?;
        let body = match len {
            Some(len) => reader.take(len)?,
            None => reader.rest(),
        };
        packets.push(Packet { tag, body });
    }
    Ok(packets)
}

/// Reads a packet header: the tag and the body length (`None`: to the end of the data).
fn header(reader: &mut Reader<'_>) -> Result<(u8, Option<usize>), String> {
    let first = reader.u8()?;
    if first & 0x80 == 0 {
        return Err(format!("not an OpenPGP packet (first octet {first:#04x})"));
    }
    if first & 0x40 != 0 {
        return Ok((first & 0x3f, Some(new_length(reader)?)));
    }
    let tag = (first >> 2) & 0x0f;
    let len = match first & 0x03 {
        0 => Some(usize::from(reader.u8()?)),
        1 => Some(usize::from(reader.u16()?)),
        2 => Some(reader.u32()? as usize),
        _ => None,
    };
    Ok((tag, len))
}

fn new_length(reader: &mut Reader<'_>) -> Result<usize, String> {
    let first = usize::from(reader.u8()?);
    match first {
        0..=191 => Ok(first),
        192..=223 => Ok(((first - 192) << 8) + usize::from(reader.u8()?) + 192),
        255 => Ok(reader.u32()? as usize),
        _ => Err("partial body lengths are not used by keys or signatures".to_owned()),
    }
}

/// A cursor over bytes whose every read is bounds-checked.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.data.len() {
            return Err(format!(
                "truncated: needs {len} more bytes, {} left",
                self.data.len()
            ));
        }
        let (head, tail) = self.data.split_at(len);
        self.data = tail;
        Ok(head)
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A multiprecision integer: a 16-bit bit count then the big-endian magnitude.
    /// Returns the magnitude without leading zero octets.
    pub(super) fn mpi(&mut self) -> Result<&'a [u8], String> {
        let bits = usize::from(self.u16()?);
        let bytes = self.take(bits.div_ceil(8))?;
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        Ok(&bytes[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_old_and_new_format_packets() {
        // old format, tag 2, one-octet length 3; new format, tag 13, length 2
        let data = [0x88, 3, 1, 2, 3, 0xCD, 2, b'h', b'i'];
        let packets = split(&data).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!((packets[0].tag, packets[0].body), (2, &[1u8, 2, 3][..]));
        assert_eq!((packets[1].tag, packets[1].body), (13, &b"hi"[..]));
    }

    #[test]
    fn two_octet_new_lengths() {
        let mut data = vec![0xC2, 192, 8];
        data.extend(std::iter::repeat_n(7u8, 200));
        let packets = split(&data).unwrap();
        assert_eq!(packets[0].body.len(), 200);
    }

    #[test]
    fn refuses_garbage_and_truncation() {
        assert!(split(b"hello").is_err());
        assert!(split(&[0x88, 10, 1]).is_err());
        assert!(split(&[0xC2, 230]).is_err());
    }

    #[test]
    fn mpi_strips_leading_zeros() {
        let mut reader = Reader::new(&[0, 9, 0x01, 0xff]);
        assert_eq!(reader.mpi().unwrap(), &[0x01, 0xff]);
        assert!(Reader::new(&[0, 64, 1]).mpi().is_err());
    }

    #[test]
    fn never_panics_on_random_input() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let len = (state % 40) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = split(&data);
        }
    }
}
