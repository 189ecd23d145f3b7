//! Compiles `proto/contacthub/v1/*.proto` with protox (no protoc needed) into Rust types and
//! tonic services, plus a file descriptor set for gRPC server reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "events.proto",
        "projection.proto",
        "desk.proto",
        "ops.proto",
        "courrier.proto",
        "citizen.proto",
        "request.proto",
        "outbound.proto",
        "audit.proto",
        "accueil.proto",
        "appointment.proto",
    ]
    .map(|f| root.join("contacthub/v1").join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("contacthub_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are the caller's fault: INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
