//! A minimal, allocation-free DER walker: just enough to find the SubjectPublicKeyInfo of a
//! certificate and to check that bytes are a well-framed certificate, on the hot path where a
//! full X.509 parser would cost too much.

/// One DER element: its tag byte, the whole encoding and the contents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    /// The identifier octet (only single-byte tags are supported, which is all X.509 uses).
    pub(crate) tag: u8,
    /// Tag, length and contents.
    pub(crate) raw: &'a [u8],
    /// The contents octets.
    pub(crate) contents: &'a [u8],
}

/// A DER framing problem, with the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER at byte {offset}: {what}")]
pub struct DerError {
    /// Offset into the input where the problem starts.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Reads consecutive elements from a byte slice.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            base: 0,
        }
    }

    fn nested(element: &Element<'a>, base: usize) -> Self {
        Self {
            input: element.contents,
            pos: 0,
            base: base + (element.raw.len() - element.contents.len()),
        }
    }

    /// True when every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn error(&self, what: &'static str) -> DerError {
        DerError {
            offset: self.base + self.pos,
            what,
        }
    }

    /// Reads the next element, whatever its tag.
    pub(crate) fn any(&mut self) -> Result<Element<'a>, DerError> {
        let rest = &self.input[self.pos..];
        let (&tag, after_tag) = rest.split_first().ok_or(self.error("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.error("multi-byte tags are not supported"));
        }
        let (&first, after_len) = after_tag
            .split_first()
            .ok_or(self.error("missing length"))?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(self.error("unsupported length encoding"));
            }
            let bytes = after_len
                .get(..count)
                .ok_or(self.error("truncated length"))?;
            if bytes[0] == 0 {
                return Err(self.error("non-minimal length"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(self.error("non-minimal length"));
            }
            (len, 2 + count)
        };
        let total = header
            .checked_add(len)
            .ok_or(self.error("length overflow"))?;
        let raw = rest
            .get(..total)
            .ok_or(self.error("element runs past its container"))?;
        self.pos += total;
        Ok(Element {
            tag,
            raw,
            contents: &raw[header..],
        })
    }

    /// Reads the next element and requires the given tag.
    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> Result<Element<'a>, DerError> {
        let at = self.pos;
        let element = self.any()?;
        if element.tag != tag {
            self.pos = at;
            return Err(self.error(what));
        }
        Ok(element)
    }

    /// Enters a constructed element (SEQUENCE and friends) to read its children.
    pub(crate) fn enter(&self, element: &Element<'a>) -> Reader<'a> {
        let offset = element.raw.as_ptr() as usize - self.input.as_ptr() as usize;
        Reader::nested(element, self.base + offset)
    }
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const EXPLICIT_0: u8 = 0xa0;

/// The parts of a certificate that the hot path needs, borrowed from the DER.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CertificateParts<'a> {
    /// The DER of the SubjectPublicKeyInfo (what RFC 7469 pins hash).
    pub(crate) spki: &'a [u8],
}

/// Checks the X.509 framing of `der` (Certificate ::= SEQUENCE { tbs, algorithm, signature })
/// and returns the SubjectPublicKeyInfo. Trailing bytes are an error.
pub(crate) fn certificate_parts(der: &[u8]) -> Result<CertificateParts<'_>, DerError> {
    let mut top = Reader::new(der);
    let cert = top.expect(SEQUENCE, "certificate is not a SEQUENCE")?;
    if !top.is_empty() {
        return Err(top.error("trailing bytes after the certificate"));
    }
    let mut cert_reader = top.enter(&cert);
    let tbs = cert_reader.expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    cert_reader.expect(SEQUENCE, "signatureAlgorithm is not a SEQUENCE")?;
    cert_reader.expect(BIT_STRING, "signature is not a BIT STRING")?;
    if !cert_reader.is_empty() {
        return Err(cert_reader.error("unexpected element after the signature"));
    }

    let mut tbs_reader = cert_reader.enter(&tbs);
    let first = tbs_reader.any()?;
    if first.tag == EXPLICIT_0 {
        tbs_reader.expect(INTEGER, "serialNumber is not an INTEGER")?;
    } else if first.tag != INTEGER {
        return Err(tbs_reader.error("serialNumber is not an INTEGER"));
    }
    tbs_reader.expect(SEQUENCE, "signature algorithm is not a SEQUENCE")?;
    tbs_reader.expect(SEQUENCE, "issuer is not a SEQUENCE")?;
    tbs_reader.expect(SEQUENCE, "validity is not a SEQUENCE")?;
    tbs_reader.expect(SEQUENCE, "subject is not a SEQUENCE")?;
    let spki = tbs_reader.expect(SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
    Ok(CertificateParts { spki: spki.raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_and_trailing_input() {
        assert!(certificate_parts(&[]).is_err());
        assert!(certificate_parts(&[0x30, 0x05, 0x01]).is_err());
        assert!(certificate_parts(&[0x30, 0x00, 0x00]).is_err());
        assert!(certificate_parts(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn rejects_non_minimal_lengths() {
        let mut reader = Reader::new(&[0x04, 0x81, 0x01, 0x00]);
        assert_eq!(reader.any().unwrap_err().what, "non-minimal length");
    }
}
