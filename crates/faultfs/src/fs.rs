//! The passthrough: every operation is done on the backing directory with std's file API;
//! inodes are the backing files' own (the root is 1), mapped to their paths. Before a write,
//! fsync, rename, fsyncdir, unlink, create or mkdir, the rules may fail it with their errno.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::rules::Rules;

mod ops;

/// Attributes are not cached by the kernel: the backing files change under the tests.
const TTL: Duration = Duration::ZERO;

/// The filesystem.
#[derive(Debug)]
pub(crate) struct FaultFs {
    backing: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Inode → path relative to the backing directory ("" is the root).
    paths: HashMap<u64, PathBuf>,
    files: HashMap<u64, File>,
    next_fh: u64,
    rules: Rules,
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn attr(ino: u64, m: &fs::Metadata) -> FileAttr {
    let kind = FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile);
    let time = |s: i64, ns: i64| {
        SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(s).unwrap_or(0),
                u32::try_from(ns).unwrap_or(0),
            )
    };
    FileAttr {
        ino: INodeNo(ino),
        size: m.len(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind,
        perm: u16::try_from(m.mode() & 0o7777).unwrap_or(0o644),
        nlink: u32::try_from(m.nlink()).unwrap_or(1),
        uid: m.uid(),
        gid: m.gid(),
        rdev: u32::try_from(m.rdev()).unwrap_or(0),
        blksize: u32::try_from(m.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

impl FaultFs {
    pub(crate) fn new(backing: PathBuf, control: PathBuf) -> io::Result<Self> {
        if !fs::metadata(&backing)?.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(Self {
            backing,
            state: Mutex::new(State {
                paths: HashMap::from([(1, PathBuf::new())]),
                files: HashMap::new(),
                next_fh: 1,
                rules: Rules::new(control),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The relative path of `ino`.
    fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.state().paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    /// The relative path of `name` in directory `parent`.
    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(parent)?.join(name))
    }

    /// Fails if a rule says so.
    fn fault(&self, op: &str, rel: &Path) -> Result<(), Errno> {
        match self.state().rules.check(op, rel) {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(()),
        }
    }

    /// lstat of `rel`, registering its inode.
    fn stat(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let m = fs::symlink_metadata(self.backing.join(rel)).map_err(|e| errno(&e))?;
        let ino = if rel.as_os_str().is_empty() {
            1
        } else {
            m.ino()
        };
        self.state().paths.insert(ino, rel.to_path_buf());
        Ok(attr(ino, &m))
    }

    fn keep(&self, file: File) -> FileHandle {
        let mut s = self.state();
        let fh = s.next_fh;
        s.next_fh += 1;
        s.files.insert(fh, file);
        FileHandle(fh)
    }

    fn with_file<T>(
        &self,
        fh: FileHandle,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> Result<T, Errno> {
        let s = self.state();
        let file = s.files.get(&fh.0).ok_or(Errno::EBADF)?;
        f(file).map_err(|e| errno(&e))
    }

    fn setattr_inner(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        size: Option<u64>,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr, Errno> {
        let rel = self.rel(ino)?;
        let path = self.backing.join(&rel);
        if let Some(size) = size {
            self.fault("write", &rel)?;
            match fh {
                Some(fh) => self.with_file(fh, |f| f.set_len(size))?,
                None => OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(size))
                    .map_err(|e| errno(&e))?,
            }
        }
        if let Some(mode) = mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| errno(&e))?;
        }
        self.stat(&rel)
    }

    fn create_inner(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, FileHandle), Errno> {
        let rel = self.child(parent, name)?;
        self.fault("create", &rel)?;
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).mode(mode);
        opts.custom_flags(flags & (libc::O_EXCL | libc::O_APPEND | libc::O_TRUNC));
        let file = opts.open(self.backing.join(&rel)).map_err(|e| errno(&e))?;
        let attr = self.stat(&rel)?;
        Ok((attr, self.keep(file)))
    }

    fn open_inner(&self, ino: INodeNo, flags: OpenFlags) -> Result<FileHandle, Errno> {
        let rel = self.rel(ino)?;
        let acc = flags.0 & libc::O_ACCMODE;
        let mut opts = OpenOptions::new();
        opts.read(acc != libc::O_WRONLY)
            .write(acc != libc::O_RDONLY)
            .custom_flags(flags.0 & (libc::O_APPEND | libc::O_TRUNC));
        let file = opts.open(self.backing.join(&rel)).map_err(|e| errno(&e))?;
        Ok(self.keep(file))
    }

    fn write_inner(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        self.fault("write", &self.rel(ino)?)?;
        self.with_file(fh, |f| f.write_all_at(data, offset))?;
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    fn readdir_inner(
        &self,
        ino: INodeNo,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), Errno> {
        let rel = self.rel(ino)?;
        let mut entries = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for e in fs::read_dir(self.backing.join(&rel)).map_err(|e| errno(&e))? {
            let e = e.map_err(|e| errno(&e))?;
            let Ok(m) = e.metadata() else { continue };
            let kind = FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile);
            entries.push((m.ino(), kind, e.file_name()));
        }
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        Ok(())
    }

    fn rename_inner(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
    ) -> Result<(), Errno> {
        let (from, to) = (self.child(parent, name)?, self.child(newparent, newname)?);
        self.fault("rename", &from)?;
        fs::rename(self.backing.join(&from), self.backing.join(&to)).map_err(|e| errno(&e))?;
        self.stat(&to).map(|_| ())
    }
}

fn done(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn entry(reply: ReplyEntry, r: Result<FileAttr, Errno>) {
    match r {
        Ok(a) => reply.entry(&TTL, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}
