//! The rollups file, `<history>.rollups`: a magic line, then length-prefixed postcard frames
//! (a header with the history position folded up to, then one frame per target). Saved
//! whole to a temporary file beside it, fsynced and renamed, so a crash leaves the old or the
//! new file, never a mix; the position inside it says which results the rollups hold.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sketch::Packed;
use super::{Counts, DAYS_KEPT, Day, HOURS_KEPT, Hour, Rollups, SKETCH_DAYS, Series, Slot};
use crate::history::Position;
use crate::outcome::Freshness;

const MAGIC: &[u8] = b"ferrostack-rollups 1\n";
/// No honest frame is near this (a target's year is tens of KiB); a larger length means a
/// damaged file, not an allocation to attempt.
const MAX_FRAME: u32 = 64 << 20;

/// Where the rollups are kept.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Header {
    /// The history position every result before which is folded.
    position: Option<Position>,
}

#[derive(Serialize, Deserialize)]
struct DiskSeries {
    name: String,
    freshness: Freshness,
    last_folded: i128,
    hours: Vec<(i64, Counts, Packed)>,
    days: Vec<(i64, Counts)>,
    day_sketches: Vec<(i64, Packed)>,
    weeks: Vec<(i64, Packed)>,
}

// === impl Store ===

impl Store {
    /// The rollups kept beside `history`: `<history>.rollups`.
    pub fn beside(history: &Path) -> Self {
        let mut p = history.as_os_str().to_owned();
        p.push(".rollups");
        Self { path: p.into() }
    }

    /// The rollups file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file into `rollups` (targets no longer configured are dropped); returns the
    /// position saved with it. No file: nothing folded yet.
    pub fn load(&self, rollups: &mut Rollups) -> io::Result<Option<Position>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut r = BufReader::new(file);
        let mut magic = vec![0u8; MAGIC.len()];
        r.read_exact(&mut magic)
            .map_err(|_| invalid("not a rollups file"))?;
        if magic != MAGIC {
            return Err(invalid("not a rollups file (or another version)"));
        }
        let mut buf = Vec::new();
        let header: Header = read_frame(&mut r, &mut buf)?.ok_or_else(|| invalid("no header"))?;
        while let Some(disk) = read_frame::<DiskSeries>(&mut r, &mut buf)? {
            if let Some(s) = rollups.series_mut().get_mut(&disk.name) {
                s.restore(disk);
            }
        }
        Ok(header.position)
    }

    /// Replaces the file with `rollups` and `position`, atomically and durably.
    pub fn save(&self, rollups: &Rollups, position: Option<Position>) -> io::Result<()> {
        let tmp = self.temp_path();
        let written = (|| {
            let mut w = BufWriter::new(File::create(&tmp)?);
            w.write_all(MAGIC)?;
            write_frame(&mut w, &Header { position })?;
            for (name, s) in rollups.series() {
                write_frame(&mut w, &s.to_disk(name))?;
            }
            w.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()
        })();
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }

    fn temp_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map_or_else(|| "rollups".into(), |n| n.to_string_lossy().into_owned());
        self.path
            .with_file_name(format!(".{name}.tmp-{}", std::process::id()))
    }
}

fn with_room<T>(n: i64) -> VecDeque<T> {
    VecDeque::with_capacity(usize::try_from(n).unwrap_or(0))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn write_frame(w: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(|e| invalid(e.to_string()))?;
    let len = u32::try_from(bytes.len()).map_err(|_| invalid("frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&bytes)
}

/// The next frame; None at a clean end of file.
fn read_frame<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(invalid(format!("damaged: a frame of {len} bytes")));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf)
        .map_err(|_| invalid("damaged: truncated frame"))?;
    postcard::from_bytes(buf)
        .map(Some)
        .map_err(|e| invalid(format!("damaged: {e}")))
}

// === impl Series ===

impl Series {
    fn to_disk(&self, name: &str) -> DiskSeries {
        let packed = |l: &std::collections::VecDeque<(i64, Slot)>| {
            l.iter().map(|(at, k)| (*at, k.packed())).collect()
        };
        DiskSeries {
            name: name.to_owned(),
            freshness: self.freshness,
            last_folded: self.last_folded,
            hours: self
                .hours
                .iter()
                .map(|h| (h.hour, h.counts, h.sketch.packed()))
                .collect(),
            days: self.days.iter().map(|d| (d.at(), d.counts())).collect(),
            day_sketches: packed(&self.day_sketches),
            weeks: packed(&self.weeks),
        }
    }

    fn restore(&mut self, disk: DiskSeries) {
        self.cache.invalidate();
        self.freshness = disk.freshness;
        self.last_folded = disk.last_folded;
        // Room for one period more than kept, so that the next hour or day, added before the
        // oldest is dropped, does not double the allocation.
        self.hours = with_room(HOURS_KEPT + 1);
        self.hours
            .extend(disk.hours.into_iter().map(|(hour, counts, p)| Hour {
                hour,
                counts,
                sketch: Slot::from_packed(p),
            }));
        self.days = with_room(DAYS_KEPT);
        self.days.extend(
            disk.days
                .into_iter()
                .map(|(day, counts)| Day::with(day, counts)),
        );
        let slots = |l: Vec<(i64, Packed)>, room: i64| {
            let mut out = with_room(room);
            out.extend(l.into_iter().map(|(at, p)| (at, Slot::from_packed(p))));
            out
        };
        self.day_sketches = slots(disk.day_sketches, SKETCH_DAYS + 1);
        self.weeks = slots(disk.weeks, DAYS_KEPT / 7 + 3);
    }
}
