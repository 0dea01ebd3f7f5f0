//! `herald-gzip FILE...`
//!
//! Writes `FILE.gz` beside each file: gzip, compressed with Zopfli, which finds a shorter
//! encoding than `gzip -9` (4–5% smaller on Herald's WASM, measured in BENCHMARKS.md) at the
//! price of a few seconds once per release build. Browsers decompress it like any gzip. The
//! server sends these files to browsers that accept gzip (tower-http's precompressed files).

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    process::ExitCode,
    thread,
};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: herald-gzip FILE...");
        return ExitCode::from(2);
    }
    // One thread per file: the largest file takes most of the time, the others fit beside it.
    let failures: Vec<String> = thread::scope(|s| {
        let jobs: Vec<_> = files.iter().map(|f| (f, s.spawn(move || gzip(Path::new(f))))).collect();
        jobs.into_iter()
            .filter_map(|(f, job)| match job.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{f}: {e}")),
                Err(_) => Some(format!("{f}: compression panicked")),
            })
            .collect()
    });
    for f in &failures {
        eprintln!("herald-gzip: {f}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn gzip(path: &Path) -> std::io::Result<()> {
    let data = std::fs::read(path)?;
    let mut target = path.as_os_str().to_owned();
    target.push(".gz");
    let mut out = BufWriter::new(File::create(&target)?);
    zopfli::compress(zopfli::Options::default(), zopfli::Format::Gzip, data.as_slice(), &mut out)?;
    out.flush()
}
