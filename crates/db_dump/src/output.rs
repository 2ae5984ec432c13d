//! Output files of one `<output>`: plain, gzip or zip, optionally split
//! every `recs_per_file` records into `NAME_0`, `NAME_1`, ... (upstream's
//! numbering), each starting and ending with the wrapper element.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;

use crate::record;
use crate::spec::{Compression, OutputSpec, Table};

/// Bytes gathered before one hand-over to the compressor.
const CHUNK: usize = 128 * 1024;

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
    Zip(Box<zip::ZipWriter<BufWriter<File>>>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
            Sink::Zip(w) => w.write_all(b),
        }
    }

    /// Completes the file and syncs it: a published dump never holds a
    /// file the kernel has not written yet.
    fn finish(self) -> io::Result<u64> {
        let w = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zip(w) => (*w).finish().map_err(io::Error::other)?,
        };
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(f.metadata()?.len())
    }
}

/// What one output produced.
#[derive(Debug, Clone, Default)]
pub struct OutputStats {
    pub files: Vec<String>,
    pub records: u64,
    /// Uncompressed XML bytes.
    pub bytes_xml: u64,
    /// Bytes on disk.
    pub bytes_file: u64,
    pub compress_time: Duration,
}

pub struct FileSet {
    dir: PathBuf,
    filename: String,
    table: Table,
    spec: OutputSpec,
    level: u32,
    sink: Option<Sink>,
    in_file: u64,
    file_no: u64,
    buf: Vec<u8>,
    stats: OutputStats,
}

impl FileSet {
    pub fn new(dir: &Path, filename: &str, table: Table, spec: OutputSpec, level: u32) -> Self {
        Self {
            dir: dir.to_owned(),
            filename: filename.to_owned(),
            table,
            spec,
            level,
            sink: None,
            in_file: 0,
            file_no: 0,
            buf: Vec::with_capacity(CHUNK + 64 * 1024),
            stats: OutputStats::default(),
        }
    }

    pub fn detail(&self) -> bool {
        self.spec.detail
    }

    /// Start a record: opens the first file, or the next one when the
    /// current file holds `recs_per_file` records. Then append the record
    /// to [`FileSet::buf`].
    pub fn begin(&mut self) -> io::Result<()> {
        let full = self.spec.recs_per_file > 0 && self.in_file >= self.spec.recs_per_file;
        if self.sink.is_none() || full {
            if self.sink.is_some() {
                self.close_file()?;
                self.file_no += 1;
            }
            self.open_file()?;
        }
        self.in_file += 1;
        self.stats.records += 1;
        Ok(())
    }

    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Hand the gathered bytes to the compressor once there are enough.
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        match self.sink.as_mut() {
            Some(s) => s.write_all(&self.buf)?,
            None => return Err(io::Error::other("record written with no file open")),
        }
        self.stats.compress_time += t.elapsed();
        self.stats.bytes_xml += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn name(&self) -> String {
        let base = if self.spec.recs_per_file > 0 {
            format!("{}_{}", self.filename, self.file_no)
        } else {
            self.filename.clone()
        };
        match self.spec.compression {
            Compression::None => base,
            Compression::Gzip => format!("{base}.gz"),
            Compression::Zip => format!("{base}.zip"),
        }
    }

    fn open_file(&mut self) -> io::Result<()> {
        let name = self.name();
        let path = self.dir.join(&name);
        let file = File::create(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        let w = BufWriter::with_capacity(256 * 1024, file);
        let level = self.level;
        let sink = match self.spec.compression {
            Compression::None => Sink::Plain(w),
            // mtime 0: the same data gives the same bytes.
            Compression::Gzip => Sink::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(w, flate2::Compression::new(level)),
            ),
            Compression::Zip => {
                let mut z = zip::ZipWriter::new(w);
                let entry = name.strip_suffix(".zip").unwrap_or(&name).to_owned();
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .compression_level(Some(level as i64))
                    .last_modified_time(zip::DateTime::default())
                    .large_file(true);
                z.start_file(entry, opts).map_err(io::Error::other)?;
                Sink::Zip(Box::new(z))
            }
        };
        self.sink = Some(sink);
        self.stats.files.push(name);
        self.in_file = 0;
        record::file_header(&mut self.buf, self.table);
        Ok(())
    }

    fn close_file(&mut self) -> io::Result<()> {
        record::file_footer(&mut self.buf, self.table);
        self.flush_buf()?;
        if let Some(s) = self.sink.take() {
            let t = Instant::now();
            self.stats.bytes_file += s.finish()?;
            self.stats.compress_time += t.elapsed();
        }
        Ok(())
    }

    /// Close the last file. An output with no records still gets one
    /// (empty) file, so a stats site always finds what the spec promises.
    pub fn finish(mut self) -> io::Result<OutputStats> {
        if self.sink.is_none() {
            self.open_file()?;
        }
        self.close_file()?;
        Ok(self.stats)
    }
}
