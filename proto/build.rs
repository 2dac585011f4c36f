//! Compiles `protos/banter/v1/*.proto` into OUT_DIR with a vendored protoc, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "protos/banter/v1/journal.proto",
        "protos/banter/v1/cluster.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    prost_build::Config::new()
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        .bytes(["."])
        .compile_protos(&protos, &["protos"])?;
    Ok(())
}
