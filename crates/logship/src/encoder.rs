//! Streaming batch encoder: concatenates the batch's files as JSON lines (a file not ending in a
//! newline gets one) through zstd or gzip into a staging file, hashing the compressed bytes
//! with sha256 on the way; memory stays bounded by the codec window and a 256 KiB buffer.
//! The output is deterministic for the same input, so a re-encode after a crash yields the
//! same object.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::libc;
use sha2::{Digest, Sha256};

use crate::batch::Stamp;
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
    /// The files included (a file that vanished or was replaced before it was read is left
    /// out; a later scan sees it anew).
    pub files: Vec<FileRef>,
    /// Files that could not be opened (not included), with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Compressed size.
    pub size: u64,
    /// sha256 of the compressed bytes.
    pub sha256: String,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
    /// Lines in the object: newline-terminated records (a file's missing last newline is
    /// added, so its last line counts).
    pub lines: u64,
}

/// A file to encode: its path and, if known, the file (device, inode) it must still be.
#[derive(Clone, Debug)]
pub struct Input {
    /// The path.
    pub path: PathBuf,
    /// The expected identity; a different file at the path is left out.
    pub expect: Option<Stamp>,
}

/// Encode errors: either a source file failed mid-read or the staged object failed to write.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Reading a source file failed after part of it was encoded.
    #[error("reading {path}: {source}")]
    Source {
        /// The source file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing the staged object failed (it has been removed).
    #[error("writing {path}: {source}")]
    Output {
        /// The staged object.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
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

/// Why one file's copy stopped.
enum CopyError {
    Source(PathBuf, io::Error),
    Output(io::Error),
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

/// Encodes `files` into `out` (written, fsynced). Files not found are skipped. On any error
/// `out` is removed, so a full disk leaves no partial staging file behind.
pub fn encode(
    files: &[Input],
    out: &Path,
    compression: Compression,
) -> Result<Encoded, EncodeError> {
    let result = encode_into(files, out, compression);
    if result.is_err() {
        let _ = remove_staged(out);
    }
    result.map_err(|e| match e {
        CopyError::Source(path, source) => EncodeError::Source { path, source },
        CopyError::Output(source) => EncodeError::Output {
            path: out.to_path_buf(),
            source,
        },
    })
}

fn encode_into(
    files: &[Input],
    out: &Path,
    compression: Compression,
) -> Result<Encoded, CopyError> {
    let file = File::create(out)?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        written: 0,
    };
    let (copied, sink) = match compression {
        Compression::Zstd(level) => {
            let mut enc = zstd::stream::write::Encoder::new(sink, level)?;
            enc.include_checksum(true)?;
            let copied = copy_files(files, &mut enc)?;
            (copied, enc.finish()?)
        }
        Compression::Gzip(level) => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(sink, flate2::Compression::new(level));
            let copied = copy_files(files, &mut enc)?;
            (copied, enc.finish()?)
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
        files: copied.files,
        unreadable: copied.unreadable,
        size: written,
        sha256: hex(&hasher.finalize()),
        raw_bytes: copied.raw,
        lines: copied.lines,
    })
}

#[derive(Default)]
struct Copied {
    files: Vec<FileRef>,
    unreadable: Vec<(PathBuf, String)>,
    raw: u64,
    lines: u64,
}

/// Opens a source file without following a symlink and without blocking on a FIFO, and checks
/// it is a regular file and, if given, the expected one. `Ok(None)`: vanished or replaced.
fn open_source(input: &Input) -> io::Result<Option<(File, Stamp)>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&input.path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let stamp = Stamp::of(&meta);
    let same = input.expect.is_none_or(|x| x.same_file(&stamp));
    Ok((meta.file_type().is_file() && same).then_some((file, stamp)))
}

fn copy_files(files: &[Input], out: &mut impl Write) -> Result<Copied, CopyError> {
    let mut copied = Copied::default();
    let mut buf = vec![0u8; 128 * 1024];
    for input in files {
        let (mut file, stamp) = match open_source(input) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            // Nothing of it was written: leave it out, the rest of the batch ships.
            Err(e) => {
                copied.unreadable.push((input.path.clone(), e.to_string()));
                continue;
            }
        };
        let mut size = 0u64;
        let mut last = b'\n';
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Source(input.path.clone(), e)),
            };
            out.write_all(&buf[..n])?;
            size += n as u64;
            copied.lines += count_newlines(&buf[..n]);
            last = buf[n - 1];
        }
        copied.raw += size;
        if last != b'\n' {
            out.write_all(b"\n")?;
            copied.raw += 1;
            copied.lines += 1;
        }
        copied.files.push(FileRef {
            path: input.path.clone(),
            size,
            stamp: Some(stamp),
        });
    }
    Ok(copied)
}

/// Newlines in `bytes` (the line count of the manifests; `verify` counts the same way).
pub fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A streaming decompressor for an object, by its key's extension (`.zst`, `.gz`, else as
/// is). Memory stays bounded by the codec window (zstd's default limit, 128 MiB) whatever the
/// object expands to; callers bound what they keep.
pub fn decoder<'a, R: Read + 'a>(key: &str, data: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(if key.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(data)?)
    } else if key.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(data))
    } else {
        Box::new(data)
    })
}

/// Decompresses an object into memory, failing once it expands beyond `max` bytes.
pub fn decode(key: &str, data: &[u8], max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(key, data)?
        .take(max.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::other(format!(
            "decompresses to more than {max} bytes"
        )));
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

    fn inputs(paths: &[&Path]) -> Vec<Input> {
        paths
            .iter()
            .map(|p| Input {
                path: p.to_path_buf(),
                expect: None,
            })
            .collect()
    }

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
            let enc = encode(&inputs(&[&a, &gone, &b]), &out, c).unwrap();
            assert_eq!(enc.files.len(), 2);
            assert_eq!(enc.raw_bytes, 24);
            assert_eq!(enc.lines, 3, "the added last newline counts");
            let data = fs::read(&out).unwrap();
            assert_eq!(enc.size, data.len() as u64);
            assert_eq!(enc.sha256, sha256_file(&out).unwrap());
            let plain = decode(key, &data, 1 << 20).unwrap();
            assert_eq!(plain, b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
            // Deterministic: the same input encodes to the same bytes.
            let again = encode(&inputs(&[&a, &b]), &dir.path().join("again"), c).unwrap();
            assert_eq!(again.sha256, enc.sha256);
        }
    }

    #[test]
    fn corrupt_object_fails_to_decode() {
        assert!(decode("x.zst", b"not zstd", 100).is_err());
        assert!(decode("x.gz", b"not gzip", 100).is_err());
    }
}
