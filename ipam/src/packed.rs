//! Strings kept in fewer bytes, for the million allocations a pool may hold: lowercase hex
//! (container ids) as its bytes, a lowercase UUID (pod UIDs) as its 16 bytes, anything else as
//! text. Every string has exactly one packed form, so packed forms compare and hash as the strings
//! they stand for do, and a lookup packs its query instead of unpacking every candidate.
//!
//! A packed string is a kind byte, then (text and hex) its length as a LEB128 varint and its
//! bytes, or (UUID) its 16 bytes. Several are stored back to back; [`split`] reads the first.

const TEXT: u8 = 0;
const HEX: u8 = 1;
const UUID: u8 = 2;

/// One packed string, borrowed, in the form it is stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// Neither hex nor a UUID.
    Text(&'a str),
    /// Lowercase hex of an even, non-zero number of digits, as bytes.
    Hex(&'a [u8]),
    /// A lowercase UUID (8-4-4-4-12 hex digits).
    Uuid(&'a [u8; 16]),
}

impl Part<'_> {
    /// Length of the string this part stands for.
    pub fn unpacked_len(&self) -> usize {
        match self {
            Part::Text(s) => s.len(),
            Part::Hex(b) => b.len() * 2,
            Part::Uuid(_) => 36,
        }
    }
}

fn is_lower_hex_digit(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(is_lower_hex_digit)
}

const UUID_DASHES: [usize; 4] = [8, 13, 18, 23];

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| if UUID_DASHES.contains(&i) { *c == b'-' } else { is_lower_hex_digit(*c) })
}

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

fn push_digits(out: &mut Vec<u8>, digits: impl Iterator<Item = u8>) {
    let mut high = None;
    for d in digits {
        match high.take() {
            None => high = Some(nibble(d)),
            Some(h) => out.push(h << 4 | nibble(d)),
        }
    }
}

fn push_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn read_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut len = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((len, &bytes[i + 1..]));
        }
    }
    None
}

/// Appends the packed form of `s` to `out`.
pub fn push(out: &mut Vec<u8>, s: &str) {
    if is_uuid(s) {
        out.push(UUID);
        push_digits(out, s.bytes().filter(|c| *c != b'-'));
    } else if is_hex(s) {
        out.push(HEX);
        push_len(out, s.len() / 2);
        push_digits(out, s.bytes());
    } else {
        out.push(TEXT);
        push_len(out, s.len());
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends `part` to `out` in its one packed form: a part read from elsewhere (a snapshot) that
/// is not in the form [`push`] gives its string is converted, so lookups still find it.
pub fn push_part(out: &mut Vec<u8>, part: Part<'_>) {
    match part {
        Part::Text(s) => push(out, s),
        Part::Hex([]) => push(out, ""),
        Part::Hex(bytes) => {
            out.push(HEX);
            push_len(out, bytes.len());
            out.extend_from_slice(bytes);
        }
        Part::Uuid(bytes) => {
            out.push(UUID);
            out.extend_from_slice(bytes);
        }
    }
}

/// The packed form of `s`, alone.
pub fn pack(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    push(&mut out, s);
    out
}

/// Splits the first packed string off `bytes`: (that string's packed form, the rest).
///
/// # Panics
/// If `bytes` does not start with a packed string (only [`push`] and [`push_part`] write them).
pub fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    let body = match bytes.first() {
        Some(&UUID) => 16,
        Some(&(TEXT | HEX)) => {
            let (len, rest) = read_len(&bytes[1..]).expect("a packed length");
            len + (bytes.len() - 1 - rest.len())
        }
        _ => panic!("not a packed string"),
    };
    bytes.split_at(1 + body)
}

/// The part of one packed string (as [`split`] returns it).
pub fn part(packed: &[u8]) -> Part<'_> {
    match packed[0] {
        UUID => Part::Uuid(packed[1..17].try_into().expect("16 bytes")),
        kind => {
            let (_, body) = read_len(&packed[1..]).expect("a packed length");
            if kind == HEX {
                Part::Hex(body)
            } else {
                Part::Text(std::str::from_utf8(body).expect("packed text is UTF-8"))
            }
        }
    }
}

/// Appends `bytes` as lowercase hex. A table, not `format!`: a snapshot of a million
/// allocations unpacks a million container ids when a node starts.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

impl Part<'_> {
    /// The string this part stands for.
    pub fn unpacked(&self) -> String {
        let mut out = String::with_capacity(self.unpacked_len());
        match self {
            Part::Text(s) => out.push_str(s),
            Part::Hex(bytes) => push_hex(&mut out, bytes),
            Part::Uuid(b) => {
                for (i, group) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]].into_iter().enumerate() {
                    if i > 0 {
                        out.push('-');
                    }
                    push_hex(&mut out, group);
                }
            }
        }
        out
    }
}

/// The string of one packed form.
pub fn unpack(packed: &[u8]) -> String {
    part(packed).unpacked()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &[&str] = &[
        "",
        "eth0",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "abc",                                  // odd hex: text
        "ABCDEF",                               // upper case: text
        "6f1c2a9e-4b7d-4c3e-a1f0-9d8e7c6b5a43", // UUID
        "6F1C2A9E-4B7D-4C3E-A1F0-9D8E7C6B5A43", // upper-case UUID: text
        "6f1c2a9e-4b7d-4c3e-a1f0-9d8e7c6b5a4",  // short: text
        "checkout-41-7d9f8b6c5d-x2kq9",
        "ünïcode/名前",
    ];

    #[test]
    fn every_string_round_trips() {
        for s in CASES {
            let p = pack(s);
            assert_eq!(split(&p), (&p[..], &[][..]), "{s:?}");
            assert_eq!(unpack(&p), *s);
            assert_eq!(part(&p).unpacked_len(), s.len(), "{s:?}");
        }
        let long = "x".repeat(300);
        assert_eq!(unpack(&pack(&long)), long, "a length over 127 takes two bytes");
    }

    #[test]
    fn hex_and_uuids_take_half_the_bytes_or_less() {
        assert_eq!(pack(CASES[2]).len(), 1 + 1 + 32);
        assert_eq!(pack(CASES[5]).len(), 1 + 16);
        assert!(matches!(part(&pack(CASES[3])), Part::Text("abc")));
    }

    #[test]
    fn strings_back_to_back_split_apart() {
        let mut buf = Vec::new();
        for s in CASES {
            push(&mut buf, s);
        }
        let mut rest = &buf[..];
        for s in CASES {
            let (one, more) = split(rest);
            assert_eq!(unpack(one), *s);
            rest = more;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn parts_from_elsewhere_are_stored_in_the_one_form() {
        // A snapshot may say Text for a string that packs as hex: stored as `push` would.
        let mut a = Vec::new();
        push_part(&mut a, Part::Text("abcd"));
        assert_eq!(a, pack("abcd"));
        let mut b = Vec::new();
        push_part(&mut b, Part::Hex(&[]));
        assert_eq!(b, pack(""));
        let packed = pack(CASES[5]);
        let mut c = Vec::new();
        push_part(&mut c, part(&packed));
        assert_eq!(c, packed);
    }
}
