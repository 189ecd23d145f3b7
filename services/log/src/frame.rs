//! The on-disk frame of one record in the embedded log. Pure: bytes in, values out.
//!
//! ```text
//! u32 body length | u32 CRC-32 of body | body
//! body = u64 offset | i64 timestamp ms | u32 key len | key | u16 header count
//!        | (u16 name len | name | u32 value len | value)* | u32 value len | value
//! ```
//! All integers little-endian. A frame whose length or CRC does not check is a torn write.

use crate::Record;

/// Bytes before the body.
pub const HEADER_LEN: usize = 8;
/// Largest body accepted (a frame claiming more is corrupt).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends before the frame does (a torn write at the tail).
    Incomplete,
    /// The frame is damaged.
    Corrupt(String),
}

/// Appends the frame of `record` at `offset` to `out`.
pub fn encode(offset: u64, record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.key);
    out.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for (name, value) in &record.headers {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.value);
    let body_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Size of the frame of `record`.
pub fn encoded_len(record: &Record) -> usize {
    HEADER_LEN
        + 8
        + 8
        + 4
        + record.key.len()
        + 2
        + record
            .headers
            .iter()
            .map(|(n, v)| 2 + n.len() + 4 + v.len())
            .sum::<usize>()
        + 4
        + record.value.len()
}

/// Decodes the frame at the start of `buf`: its offset, record and total length.
pub fn decode(buf: &[u8]) -> Result<(u64, Record, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Incomplete);
    }
    let body_len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    if body_len > MAX_BODY {
        return Err(FrameError::Corrupt(format!(
            "body length {body_len} exceeds {MAX_BODY}"
        )));
    }
    let total = HEADER_LEN + body_len;
    if buf.len() < total {
        return Err(FrameError::Incomplete);
    }
    let body = &buf[HEADER_LEN..total];
    if crc32fast::hash(body) != crc {
        return Err(FrameError::Corrupt("checksum mismatch".into()));
    }
    let mut r = Reader { buf: body, at: 0 };
    let offset = r.u64()?;
    let timestamp_ms = r.u64()? as i64;
    let key_len = r.u32()? as usize;
    let key = r.bytes(key_len)?.to_vec();
    let n = r.u16()?;
    let mut headers = Vec::with_capacity(usize::from(n).min(64));
    for _ in 0..n {
        let nl = usize::from(r.u16()?);
        let name = String::from_utf8(r.bytes(nl)?.to_vec())
            .map_err(|_| FrameError::Corrupt("header name is not UTF-8".into()))?;
        let vl = r.u32()? as usize;
        headers.push((name, r.bytes(vl)?.to_vec()));
    }
    let vl = r.u32()? as usize;
    let value = r.bytes(vl)?.to_vec();
    if r.at != body.len() {
        return Err(FrameError::Corrupt("trailing bytes in frame body".into()));
    }
    Ok((
        offset,
        Record {
            key,
            value,
            headers,
            timestamp_ms,
        },
        total,
    ))
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| FrameError::Corrupt("field runs past the frame".into()))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.bytes(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            key: b"69091".to_vec(),
            value: "événement ☎".as_bytes().to_vec(),
            headers: vec![("contacthub-tenant".into(), b"69091".to_vec())],
            timestamp_ms: -12,
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(7, &sample(), &mut buf);
        assert_eq!(buf.len(), encoded_len(&sample()));
        assert_eq!(decode(&buf), Ok((7, sample(), buf.len())));
    }

    #[test]
    fn torn_and_damaged_frames_are_told_apart() {
        let mut buf = Vec::new();
        encode(7, &sample(), &mut buf);
        for cut in 0..buf.len() {
            assert_eq!(
                decode(&buf[..cut]),
                Err(FrameError::Incomplete),
                "cut at {cut}"
            );
        }
        let mut bad = buf.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(decode(&bad), Err(FrameError::Corrupt(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x1234_5678u32;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
