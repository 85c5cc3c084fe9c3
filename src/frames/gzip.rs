//! gzip files of one or more members (`gzip -c b >> a.gz` makes a valid
//! file of two, and `gzip -d` and Python's `gzip` read both), decoded
//! member by member with flate2's single-member decoder so that what
//! follows the last member is known for what it is.
//!
//! flate2's `MultiGzDecoder` starts a new member on any byte after one and
//! fails in the header parser: 7 junk bytes read as "unexpected end of
//! file" (the words of a file cut short), longer junk as an invalid header.
//! Here, bytes after a member that do not start another (`1f`) are
//! [`AfterLastMember`], counted; a next member cut short still ends early.

use flate2::bufread::GzDecoder;
use std::io::{BufRead, Read};

/// gzip's magic number.
pub(super) const GZIP: [u8; 2] = [0x1f, 0x8b];

/// The error (inside an `io::Error`) for bytes after the last member that
/// do not start another: how many there are, and whether all are zero.
#[derive(Debug)]
pub(super) struct AfterLastMember {
    pub bytes: u64,
    pub zeros: bool,
}

impl std::fmt::Display for AfterLastMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.zeros {
            true => "all zeros: a file preallocated and still being written looks so",
            false => "`gzip -t` says \"trailing garbage\"",
        };
        write!(
            f,
            "{} after the last gzip member ({what}); recompress the frames (gunzip, then gzip)",
            super::count(usize::try_from(self.bytes).unwrap_or(usize::MAX), "byte", "bytes")
        )
    }
}

impl std::error::Error for AfterLastMember {}

/// The decompressed bytes of every member of a gzip stream, then an
/// [`AfterLastMember`] error if other bytes follow the last.
pub(super) struct Members<R: BufRead> {
    /// The member being read; `None` once the stream is done.
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> Members<R> {
    /// The members of `r`, which starts with a gzip header (or errors).
    pub fn new(r: R) -> Members<R> {
        Members {
            member: Some(GzDecoder::new(r)),
        }
    }

    /// After a member ended (its checksum checked): the next member, or
    /// `None` at the end of the stream, or the bytes that follow counted.
    fn next_member(mut r: R) -> std::io::Result<Option<GzDecoder<R>>> {
        let (zeros, len) = {
            let buf = r.fill_buf()?;
            match buf.first() {
                None => return Ok(None),
                Some(&b) if b == GZIP[0] => return Ok(Some(GzDecoder::new(r))),
                Some(_) => (buf.iter().all(|&b| b == 0), buf.len()),
            }
        };
        r.consume(len);
        let mut zeros = zeros;
        let mut bytes = len as u64;
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk)? {
                0 => break,
                n => {
                    zeros &= chunk[..n].iter().all(|&b| b == 0);
                    bytes += n as u64;
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            AfterLastMember { bytes, zeros },
        ))
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
        while let Some(member) = &mut self.member {
            match member.read(into)? {
                0 if !into.is_empty() => {
                    let r = self.member.take().expect("a member").into_inner();
                    self.member = Members::next_member(r)?;
                }
                n => return Ok(n),
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Members::new(bytes).read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn members_are_read_and_what_follows_the_last_is_counted() {
        let two = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(gunzip(&two).unwrap(), b"abcd");
        for (tail, says) in [
            (&b"GARBAGE"[..], "7 bytes after the last gzip member (`gzip -t`"),
            (&[0u8; 1][..], "1 byte after the last gzip member (all zeros"),
            (
                &[0u8; 20000][..],
                "20000 bytes after the last gzip member (all zeros",
            ),
        ] {
            let e = gunzip(&[&two[..], tail].concat()).unwrap_err();
            assert!(e.to_string().starts_with(says), "{e}");
            assert!(e.get_ref().is_some_and(|e| e.is::<AfterLastMember>()));
        }
        // A next member cut short ends early, as a first one does.
        let cut = [&two[..], &gzip(b"ef")[..6]].concat();
        assert_eq!(
            gunzip(&cut).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            gunzip(&two[..two.len() - 3]).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }
}
