//! Streaming batch encoder: concatenates the batch's files as JSON lines (a file not ending in a
//! newline gets one) through zstd or gzip into a staging file, hashing the compressed bytes
//! with sha256 on the way; memory stays bounded by the codec window and a 256 KiB buffer.
//! The output is deterministic for the same input, so a re-encode after a crash yields the
//! same object.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::journal::FileRef;

/// Object compression (`--compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd at the given level (default 3).
    Zstd(i32),
    /// gzip at the given level (default 6).
    Gzip(u32),
}

impl Compression {
    /// The `{ext}` of keys: `jsonl.zst` or `jsonl.gz`.
    pub fn ext(self) -> &'static str {
        match self {
            Self::Zstd(_) => "jsonl.zst",
            Self::Gzip(_) => "jsonl.gz",
        }
    }
}

/// What an encode produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The files included (a file that vanished before it was read is left out).
    pub files: Vec<FileRef>,
    /// Compressed size.
    pub size: u64,
    /// sha256 of the compressed bytes.
    pub sha256: String,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encodes `files` into `out` (written, fsynced). Files not found are skipped.
pub fn encode(files: &[&Path], out: &Path, compression: Compression) -> io::Result<Encoded> {
    let file = File::create(out)?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        written: 0,
    };
    let (included, raw_bytes, sink) = match compression {
        Compression::Zstd(level) => {
            let mut enc = zstd::stream::write::Encoder::new(sink, level)?;
            enc.include_checksum(true)?;
            let (included, raw) = copy_files(files, &mut enc)?;
            (included, raw, enc.finish()?)
        }
        Compression::Gzip(level) => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(sink, flate2::Compression::new(level));
            let (included, raw) = copy_files(files, &mut enc)?;
            (included, raw, enc.finish()?)
        }
    };
    let HashingWriter {
        inner,
        hasher,
        written,
    } = sink;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Encoded {
        files: included,
        size: written,
        sha256: hex(&hasher.finalize()),
        raw_bytes,
    })
}

fn copy_files(files: &[&Path], out: &mut impl Write) -> io::Result<(Vec<FileRef>, u64)> {
    let mut included = Vec::with_capacity(files.len());
    let mut raw = 0u64;
    let mut buf = vec![0u8; 128 * 1024];
    for path in files {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut size = 0u64;
        let mut last = b'\n';
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
            size += n as u64;
            last = buf[n - 1];
        }
        raw += size;
        if last != b'\n' {
            out.write_all(b"\n")?;
            raw += 1;
        }
        included.push(FileRef {
            path: path.to_path_buf(),
            size,
        });
    }
    Ok((included, raw))
}

/// Decompresses an object by its key's extension (`.zst`, `.gz`, else as is).
pub fn decode(key: &str, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if key.ends_with(".zst") {
        zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
    } else if key.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    } else {
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Removes a staging file if present.
pub fn remove_staged(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_adds_missing_newlines_and_skips_vanished_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, "{\"n\":1}\n{\"n\":2}\n").unwrap();
        fs::write(&b, "{\"n\":3}").unwrap();
        let gone = dir.path().join("gone");
        for (c, key) in [
            (Compression::Zstd(3), "o.zst"),
            (Compression::Gzip(6), "o.gz"),
        ] {
            let out = dir.path().join(key);
            let enc = encode(&[&a, &gone, &b], &out, c).unwrap();
            assert_eq!(enc.files.len(), 2);
            assert_eq!(enc.raw_bytes, 24);
            let data = fs::read(&out).unwrap();
            assert_eq!(enc.size, data.len() as u64);
            assert_eq!(enc.sha256, sha256_file(&out).unwrap());
            let plain = decode(key, &data).unwrap();
            assert_eq!(plain, b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
            // Deterministic: the same input encodes to the same bytes.
            let again = encode(&[&a, &b], &dir.path().join("again"), c).unwrap();
            assert_eq!(again.sha256, enc.sha256);
        }
    }

    #[test]
    fn corrupt_object_fails_to_decode() {
        assert!(decode("x.zst", b"not zstd").is_err());
        assert!(decode("x.gz", b"not gzip").is_err());
    }
}
