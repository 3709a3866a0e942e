//! Recovery on open: segments left `.open-` by a writer that is gone (their lock is free) are
//! terminated with a newline if torn and sealed, so that they get shipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use crate::seal::{OpenSegment, seal_file};
use crate::segment::open_id;

/// Seals the open segments of dead writers in `dir`; a live writer's segment is left alone.
pub(crate) fn recover_open_segments(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(open_id) else {
            continue;
        };
        let mut file = OpenOptions::new().append(true).open(entry.path())?;
        if file.try_lock().is_err() {
            continue; // a live writer owns it
        }
        let written = file.metadata()?.len();
        if written > 0 && !ends_with_newline(&entry.path())? {
            // A torn last line (power loss) is kept whole-or-terminated, never merged with
            // the first line of another segment.
            file.write_all(b"\n")?;
        }
        let written = file.metadata()?.len();
        let open = OpenSegment {
            file,
            id,
            path: entry.path(),
            opened: Instant::now(),
            written,
            on_disk: written,
            lines: 0,
        };
        seal_file(dir, open)?;
    }
    Ok(())
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    let mut last = [0u8; 1];
    let mut reader = File::open(path)?;
    reader.seek(SeekFrom::End(-1))?;
    reader.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use ulid::Ulid;

    use super::*;
    use crate::segment::{open_name, sealed_name};

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_torn_segment_is_terminated_and_sealed_under_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = Ulid::generate();
        fs::write(dir.path().join(open_name(id)), "{\"a\":1}\n{\"torn\":").unwrap();
        recover_open_segments(dir.path()).unwrap();
        assert_eq!(names(dir.path()), [sealed_name(id)]);
        let text = fs::read_to_string(dir.path().join(sealed_name(id))).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"torn\":\n");
    }

    #[test]
    fn a_whole_segment_is_sealed_unchanged_and_an_empty_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, empty) = (Ulid::generate(), Ulid::generate());
        fs::write(dir.path().join(open_name(whole)), "{\"a\":1}\n").unwrap();
        fs::write(dir.path().join(open_name(empty)), "").unwrap();
        fs::write(dir.path().join("other.jsonl"), "x").unwrap();
        recover_open_segments(dir.path()).unwrap();
        assert_eq!(
            names(dir.path()),
            [sealed_name(whole), "other.jsonl".into()]
        );
        let text = fs::read_to_string(dir.path().join(sealed_name(whole))).unwrap();
        assert_eq!(text, "{\"a\":1}\n");
    }

    #[test]
    fn a_locked_segment_belongs_to_a_live_writer() {
        let dir = tempfile::tempdir().unwrap();
        let id = Ulid::generate();
        let path = dir.path().join(open_name(id));
        fs::write(&path, "{\"a\":1}\n").unwrap();
        let live = OpenOptions::new().append(true).open(&path).unwrap();
        live.try_lock().unwrap();
        recover_open_segments(dir.path()).unwrap();
        assert_eq!(names(dir.path()), [open_name(id)]);
    }
}
