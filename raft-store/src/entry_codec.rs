//! The bytes of a log entry, the same on disk and on the wire: format 1 is openraft's payload in
//! postcard exactly as release 0.1.0 wrote it; format 2 and later are [`ipam::format::ENTRY_MARKER`],
//! the format version (varint), then the payload (see [`ipam::format`]). A normal entry is written
//! in its batch's format ([`Batch::format`], chosen by the leader from the cluster version) and
//! a follower stores it in the format it received, so a member rolled back to an older binary
//! reads its own log. Blank and membership entries are openraft's own and always format 1.
//!
//! On disk an entry is its log id followed by these bytes, which is what postcard made of a whole
//! openraft `Entry` in format 1: the logs release 0.1.0 wrote are read unchanged.

use ipam::format::{is_supported, UnsupportedFormat, ENTRY_MARKER, FORMAT_MIN};
use openraft::EntryPayload;

use crate::types::{typ, Batch, TypeConfig};

/// Why entry bytes could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A format this build does not read.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedFormat),
    /// A batch holds a command its format cannot carry (a leader bug: never written).
    #[error("{what}: a {command} event cannot be written in format {format} (it needs format {needs})")]
    NotInFormat {
        /// The entry.
        what: String,
        /// The command kind.
        command: &'static str,
        /// The batch's format.
        format: u32,
        /// The oldest format that carries it.
        needs: u32,
    },
    /// Not an entry of the format it claims.
    #[error("{what} does not decode: {source}")]
    Decode {
        /// The entry.
        what: String,
        /// postcard's error.
        source: postcard::Error,
    },
}

/// The format an entry payload is written in.
pub fn payload_format(payload: &EntryPayload<TypeConfig>) -> u32 {
    match payload {
        EntryPayload::Normal(batch) => batch.format.max(FORMAT_MIN),
        _ => FORMAT_MIN,
    }
}

/// Encodes `payload` in its format (`what` names the entry in errors).
pub fn encode_payload(payload: &EntryPayload<TypeConfig>, what: impl Fn() -> String) -> Result<Vec<u8>, CodecError> {
    let format = payload_format(payload);
    if !is_supported(format) {
        return Err(UnsupportedFormat { what: what(), found: format }.into());
    }
    if let EntryPayload::Normal(batch) = payload {
        check_batch(batch, format, &what)?;
    }
    let mut out = Vec::new();
    if format > FORMAT_MIN {
        out.push(ENTRY_MARKER);
        out.extend(postcard::to_stdvec(&format).expect("a u32 encodes"));
    }
    postcard::to_io(payload, &mut out).map_err(|source| CodecError::Decode { what: what(), source })?;
    Ok(out)
}

/// Decodes payload bytes written by [`encode_payload`] (or by release 0.1.0).
pub fn decode_payload(bytes: &[u8], what: impl Fn() -> String) -> Result<EntryPayload<TypeConfig>, CodecError> {
    let (format, body) = split_format(bytes, &what)?;
    let mut payload: EntryPayload<TypeConfig> =
        postcard::from_bytes(body).map_err(|source| CodecError::Decode { what: what(), source })?;
    if let EntryPayload::Normal(batch) = &mut payload {
        batch.format = format;
        check_batch(batch, format, &what)?;
    }
    Ok(payload)
}

/// The format of payload bytes, from their first bytes alone.
pub fn peek_format(bytes: &[u8]) -> Result<u32, CodecError> {
    split_format(bytes, &|| "log entry".to_string()).map(|(format, _)| format)
}

fn split_format<'a>(bytes: &'a [u8], what: &dyn Fn() -> String) -> Result<(u32, &'a [u8]), CodecError> {
    match bytes.split_first() {
        Some((&ENTRY_MARKER, rest)) => {
            let (format, body): (u32, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|source| CodecError::Decode { what: what(), source })?;
            if format <= FORMAT_MIN || !is_supported(format) {
                return Err(UnsupportedFormat { what: what(), found: format }.into());
            }
            Ok((format, body))
        }
        _ => Ok((FORMAT_MIN, bytes)),
    }
}

fn check_batch(batch: &Batch, format: u32, what: &dyn Fn() -> String) -> Result<(), CodecError> {
    match batch.events.iter().find(|e| e.command.min_format() > format) {
        Some(e) => Err(CodecError::NotInFormat {
            what: what(),
            command: e.command.kind(),
            format,
            needs: e.command.min_format(),
        }),
        None => Ok(()),
    }
}

/// An entry as the log stores it: its log id, then its payload bytes.
pub fn encode_entry(entry: &typ::Entry) -> Result<Vec<u8>, CodecError> {
    let what = || format!("log entry {}", entry.log_id.index);
    let mut out = postcard::to_stdvec(&entry.log_id).map_err(|source| CodecError::Decode { what: what(), source })?;
    out.extend(encode_payload(&entry.payload, what)?);
    Ok(out)
}

/// Reads an entry stored by [`encode_entry`] (or by release 0.1.0).
pub fn decode_entry(bytes: &[u8]) -> Result<typ::Entry, CodecError> {
    let (log_id, rest): (typ::LogId, &[u8]) = postcard::take_from_bytes(bytes)
        .map_err(|source| CodecError::Decode { what: "a log entry's id".into(), source })?;
    let payload = decode_payload(rest, || format!("log entry {}", log_id.index))?;
    Ok(typ::Entry { log_id, payload })
}

/// The log id and format of a stored entry, without decoding its payload.
pub fn peek_entry(bytes: &[u8]) -> Result<(typ::LogId, u32), CodecError> {
    let (log_id, rest): (typ::LogId, &[u8]) = postcard::take_from_bytes(bytes)
        .map_err(|source| CodecError::Decode { what: "a log entry's id".into(), source })?;
    Ok((log_id, split_format(rest, &|| format!("log entry {}", log_id.index))?.0))
}

#[cfg(test)]
mod tests;
