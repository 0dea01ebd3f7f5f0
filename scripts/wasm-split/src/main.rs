//! `herald-wasm-split INPUT.wasm OUT_DIR NAME`
//!
//! Splits the browser bundle rustc built (linked with `--emit-relocs`) at its lazy routes,
//! with the splitter cargo-leptos uses (`wasm_split_cli_support`, vendored with one change: code
//! two or more page groups share goes to the main module, vendor/README.md). Writes into OUT_DIR:
//! - `NAME.wasm`: the main module, for wasm-bindgen to process next;
//! - one `.wasm` file per chunk, loaded on demand;
//! - the loader module, under the name Leptos' `HydrationScripts` preloads;
//! - `__wasm_split_manifest.json`: for each lazy function, the chunks it needs, from which the
//!   server adds `<link rel="preload">` for the chunks of the page it renders.

use std::{error::Error, path::PathBuf, process::ExitCode};

use wasm_split_cli_support::{transform, Options};

/// The loader module, as the main module imports it: the file name is the one Leptos'
/// `HydrationScripts` preloads, and the `./` makes it a relative import for the browser.
const LOADER: &str = "./__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir, name] = args.as_slice() else {
        eprintln!("usage: herald-wasm-split INPUT.wasm OUT_DIR NAME");
        return ExitCode::from(2);
    };
    match split(input.into(), out_dir.into(), name) {
        Ok(chunks) => {
            eprintln!("wasm-split: {chunks} chunks written to {out_dir}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-split: {e}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: PathBuf, out_dir: PathBuf, name: &str) -> Result<usize, Box<dyn Error>> {
    let wasm = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let main_out = out_dir.join(format!("{name}.wasm"));
    let main_module = format!("./{name}.js");
    let mut opts = Options::new(&wasm);
    opts.output_dir = &out_dir;
    opts.main_out_path = &main_out;
    opts.main_module = &main_module;
    opts.link_name = LOADER;
    let split = transform(opts)?;
    std::fs::write(out_dir.join(MANIFEST), serde_json::to_string_pretty(&split.prefetch_map)?)?;
    Ok(split.split_modules.len())
}
