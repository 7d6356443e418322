//! Compiles `proto/**/*.proto` with the vendored `protoc` (a fresh machine needs no system
//! protoc), writes a descriptor set for gRPC reflection, and generates the proto3 JSON mapping.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut protos = Vec::new();
    for entry in std::fs::read_dir(root.join("gryning/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            protos.push(path);
        }
    }
    protos.sort();
    println!(
        "cargo:rerun-if-changed={}",
        root.join("gryning/v1").display()
    );

    // SAFETY: build scripts are single-threaded; protoc-bin-vendored gives an absolute path.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("gryning_descriptor.bin");
    // Servers for the services, clients for the CLI's `--server` and the tests. The codec is
    // prost's, except that an undecodable message is INVALID_ARGUMENT (`src/codec.rs`).
    tonic_prost_build::configure()
        .codec_path("crate::codec::GrynCodec")
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(&descriptor_path)
        .compile_protos(&protos, &[root])?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".gryning"])?;
    Ok(())
}
